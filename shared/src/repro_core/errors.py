"""The exception hierarchy shared by every repro distribution.

Library code raises these; the CLIs (`repro_core.cli.run_main`) turn them into one line on stderr and exit code 2,
with no traceback. Bad input names its file, line and field so the user can go straight to the problem.
"""

from __future__ import annotations

from os import PathLike

__all__ = ["ConfigError", "InputError", "MissingExtraError", "ReproError"]


class ReproError(Exception):
    """Base class of every error a repro library raises on purpose."""


class InputError(ReproError, ValueError):
    """Bad user input: a file, a record or a value that cannot be used.

    Args:
        message: what is wrong, in words a user can act on.
        path: the file the input came from, if any.
        line: its 1-based line number, if known.
        field: the field, column or key at fault, if known.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | PathLike[str] | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.path = None if path is None else str(path)
        self.line = line
        self.field = field
        super().__init__(self._render())

    def _render(self) -> str:
        where = ""
        if self.path is not None:
            where = self.path + (f":{self.line}" if self.line is not None else "")
        elif self.line is not None:
            where = f"line {self.line}"
        if self.field is not None:
            where = f"{where} field {self.field!r}" if where else f"field {self.field!r}"
        return f"{where}: {self.message}" if where else self.message


class ConfigError(ReproError, ValueError):
    """An invalid configuration value; the message names the field."""


class MissingExtraError(ReproError, ImportError):
    """An optional dependency is missing; the message says which extra installs it."""

    def __init__(self, module: str, extra: str, feature: str, distribution: str = "repro-core") -> None:
        self.module = module
        self.extra = extra
        super().__init__(
            f"{feature} needs {module!r}, which is not installed: pip install '{distribution}[{extra}]'",
            name=module,
        )
