"""Command-line plumbing shared by every repro CLI.

What a user of any of our commands can count on:
- `--help`, `--version`, `-v/--verbose`, `-q/--quiet` and `--json` everywhere;
- machine-readable results on stdout with `--json`; human tables, progress bars and logs on stderr;
- a bad input is one line on stderr naming the file, line and field, exit code 2, no traceback;
- progress bars (tqdm, to stderr) that switch themselves off when stderr is not a terminal or with `-q`.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import json
import logging
import math
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from repro_core.__about__ import __version__ as core_version
from repro_core.errors import ReproError

__all__ = [
    "EXIT_INPUT_ERROR",
    "EXIT_INTERRUPTED",
    "add_command",
    "common_options",
    "configure_logging",
    "emit",
    "make_parser",
    "progress",
    "run_main",
    "to_jsonable",
]

T = TypeVar("T")

#: Exit code for bad input or configuration (argparse uses 2 for usage errors too).
EXIT_INPUT_ERROR = 2
#: Exit code after Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130


def common_options() -> argparse.ArgumentParser:
    """A parent parser with `--json`, `-v` and `-q`, to pass as `parents=[...]` to every subcommand."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("output")
    group.add_argument("--json", action="store_true", help="print machine-readable JSON on stdout")
    group.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-v info, -vv debug)")
    group.add_argument("-q", "--quiet", action="store_true", help="only errors on stderr; no progress bars")
    return parent


def add_command(commands: argparse._SubParsersAction, name: str, **kwargs: Any) -> argparse.ArgumentParser:
    """Add subcommand `name` with the shared output options (`--json`, `-v`, `-q`).

    `description` and `epilog` are printed as written (line breaks kept, for examples); other keyword arguments go
    to `add_parser` (`help`, `aliases`, ...).
    """
    kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
    return commands.add_parser(name, parents=[common_options()], **kwargs)


def make_parser(prog: str, description: str, version: str, *, epilog: str | None = None) -> argparse.ArgumentParser:
    """The top-level parser of a repro CLI, with `--version` reporting the package and repro-core versions."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common_options()],
    )
    parser.add_argument("--version", action="version", version=f"{prog} {version} (repro-core {core_version})")
    return parser


def configure_logging(verbose: int = 0, quiet: bool = False) -> None:
    """Set up logging to stderr for a CLI run (libraries never call this)."""
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr, force=True)


def progress(
    iterable: Iterable[T] | None = None,
    *,
    total: int | None = None,
    desc: str | None = None,
    unit: str = "it",
    disable: bool | None = None,
    leave: bool = False,
) -> Any:
    """A tqdm progress bar on stderr.

    `disable=None` hides it when stderr is not a terminal (CI logs, pipes) or when logging is quieter than INFO
    (`-q`). Works as an iterable wrapper or, without `iterable`, as a context manager with `.update(n)`.
    """
    from tqdm.auto import tqdm

    if disable is None:
        disable = not sys.stderr.isatty() or logging.getLogger().getEffectiveLevel() > logging.INFO
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, leave=leave, file=sys.stderr)


def to_jsonable(value: Any) -> Any:
    """Convert results to JSON-ready values: dataclasses, enums, paths, numpy/torch scalars and arrays.

    Non-finite floats become None (JSON has no NaN), so `--json` output always parses with a strict parser.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str | int | bool) or value is None:
        return value
    if hasattr(value, "tolist"):  # numpy arrays and scalars, torch tensors
        if hasattr(value, "detach"):
            value = value.detach().cpu()
        return to_jsonable(value.tolist())
    raise TypeError(f"cannot convert {type(value).__name__} to JSON")


def emit(result: Any, *, as_json: bool, human: Callable[[Any], str] | None = None) -> None:
    """Print `result`: JSON on stdout with `--json`, else the human rendering `human(result)` on stderr.

    Keeping stdout for JSON only means `cmd --json | jq` never sees a table or a log line.
    """
    if as_json:
        json.dump(to_jsonable(result), sys.stdout, indent=2, allow_nan=False)
        sys.stdout.write("\n")
        sys.stdout.flush()
        return
    text = human(result) if human is not None else json.dumps(to_jsonable(result), indent=2)
    sys.stderr.write(text if text.endswith("\n") else text + "\n")
    sys.stderr.flush()


def run_main(
    main: Callable[[argparse.Namespace], int | None],
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None = None,
) -> int:
    """Parse `argv`, configure logging, run `main(args)` and map failures to exit codes.

    `ReproError` (bad input, config, a missing extra) and `OSError` on files print `<prog>: error: <message>` and
    return 2; Ctrl-C returns 130. Any other exception is a bug and keeps its traceback.
    """
    args = parser.parse_args(argv)
    configure_logging(getattr(args, "verbose", 0), getattr(args, "quiet", False))
    try:
        code = main(args)
    except (ReproError, FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        message = str(exc) if isinstance(exc, ReproError) else f"{exc.filename}: {exc.strerror}"
        print(f"{parser.prog}: error: {message}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0 if code is None else int(code)
