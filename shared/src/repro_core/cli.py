"""Command-line plumbing shared by every repro CLI.

What a user of any of our commands can count on:
- `--help`, `--version`, `-v/--verbose`, `-q/--quiet` and `--json` everywhere, before or after the subcommand;
- results on stdout (human tables, or JSON with `--json`), so `cmd > out.txt` and `cmd --json | jq` both work;
  logs and progress on stderr;
- a bad input is one line on stderr naming the file, line and field (or the option), exit code 2, no traceback;
- progress bars (tqdm, on stderr) on every terminal; where stderr is not a terminal (CI logs, `2> log`), one plain
  progress line every few seconds instead; nothing with `-q`;
- one `--device` (default `auto`) and one `--seed` on every command that computes, validated before any work;
- `cmd --json | head` ends quietly instead of with a `BrokenPipeError` traceback.

This module is the top layer: library code never imports it. `progress` (`repro_core.progress`) and `to_jsonable`
(`repro_core.serialization`) live in library modules and are re-exported here for command-line code.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import math
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from repro_core.__about__ import __version__ as core_version
from repro_core.errors import ConfigError, ReproError
from repro_core.progress import PROGRESS_INTERVAL_ENV, progress
from repro_core.serialization import to_jsonable

__all__ = [
    "EXIT_BROKEN_PIPE",
    "EXIT_INPUT_ERROR",
    "EXIT_INTERRUPTED",
    "PROGRESS_INTERVAL_ENV",
    "Bounded",
    "InputPath",
    "add_command",
    "add_device_option",
    "add_seed_option",
    "common_options",
    "configure_logging",
    "emit",
    "finite_float",
    "make_parser",
    "non_negative_int",
    "positive_float",
    "positive_int",
    "progress",
    "run_main",
    "to_jsonable",
    "value_errors_as_config_errors",
]

#: Exit code for bad input or configuration (argparse uses 2 for usage errors too).
EXIT_INPUT_ERROR = 2
#: Exit code after Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130
#: Exit code when the reader of stdout went away (128 + SIGPIPE), as `yes | head` reports it.
EXIT_BROKEN_PIPE = 141


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line (`prog: error: ... (see prog --help)`), exit 2."""

    def error(self, message: str) -> Any:  # argparse's signature is NoReturn
        self.exit(EXIT_INPUT_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def common_options(*, inherit: bool = False) -> argparse.ArgumentParser:
    """A parent parser with `--json`, `-v` and `-q`, to pass as `parents=[...]` to every (sub)command.

    With `inherit=True` (subcommands) an option that is not given leaves the attribute unset, so the value given
    before the subcommand (`repro --json list`) survives argparse's merge of the subcommand's namespace.
    """
    parent = argparse.ArgumentParser(add_help=False)
    unset: dict[str, Any] = {"default": argparse.SUPPRESS} if inherit else {}
    group = parent.add_argument_group("output")
    group.add_argument("--json", action="store_true", help="print machine-readable JSON on stdout", **unset)
    group.add_argument(
        "-v", "--verbose", action="count", help="more log output (-v info, -vv debug)", **(unset or {"default": 0})
    )
    group.add_argument("-q", "--quiet", action="store_true", help="only errors on stderr; no progress", **unset)
    return parent


def add_command(commands: argparse._SubParsersAction, name: str, **kwargs: Any) -> argparse.ArgumentParser:
    """Add subcommand `name` with the shared output options (`--json`, `-v`, `-q`).

    `description` and `epilog` are printed as written (line breaks kept, for examples); other keyword arguments go
    to `add_parser` (`help`, `aliases`, ...).
    """
    kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
    return commands.add_parser(name, parents=[common_options(inherit=True)], **kwargs)


def make_parser(prog: str, description: str, version: str, *, epilog: str | None = None) -> argparse.ArgumentParser:
    """The top-level parser of a repro CLI, with `--version` reporting the package and repro-core versions."""
    parser = _Parser(
        prog=prog,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common_options()],
    )
    parser.add_argument("--version", action="version", version=f"{prog} {version} (repro-core {core_version})")
    return parser


@dataclasses.dataclass(frozen=True)
class Bounded:
    """An argparse `type=` for a finite number in a range: `Bounded(int, low=1)`, `Bounded(float, 0, 1, ...)`.

    Non-numbers, NaN, infinities and values outside the range are usage errors (exit 2) that state the range.
    The bounds are attributes, so `repro_core.testing.check_cli_rejects_bad_input` can generate values outside them.
    """

    kind: type = float
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    @property
    def __name__(self) -> str:  # argparse names the type in "invalid <name> value" messages
        return self.kind.__name__

    def describe(self) -> str:
        """The accepted values in words: "an integer >= 1", "a finite number in (0, 1)"."""
        noun = "an integer" if self.kind is int else "a finite number"
        low, high = _format_bound(self.low), _format_bound(self.high)
        if self.low is not None and self.high is not None:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            return f"{noun} in {left}{low}, {high}{right}"
        if self.low is not None:
            return f"{noun} {'>' if self.low_open else '>='} {low}"
        if self.high is not None:
            return f"{noun} {'<' if self.high_open else '<='} {high}"
        return noun

    def __call__(self, text: str) -> int | float:
        try:
            value: int | float = int(text, 10) if self.kind is int else float(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"{text!r} is not {self.describe()}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not {self.describe()}")
        too_low = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        too_high = self.high is not None and (value >= self.high if self.high_open else value > self.high)
        if too_low or too_high:
            raise argparse.ArgumentTypeError(f"{text} is out of range: expected {self.describe()}")
        return value


def _format_bound(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e16 else f"{value:g}"


#: Common numeric argument types.
positive_int = Bounded(int, low=1)
non_negative_int = Bounded(int, low=0)
positive_float = Bounded(float, low=0, low_open=True)
finite_float = Bounded(float)


@dataclasses.dataclass(frozen=True)
class InputPath:
    """An argparse `type=` for a file the command reads: it must exist and be a readable file (or a directory).

    `suffixes` documents the formats read; the file's content is checked by the command itself. Marking input
    files this way lets `repro_core.testing.check_cli_rejects_bad_input` feed them missing, empty, truncated,
    binary and non-UTF-8 files.
    """

    directory: bool = False
    suffixes: tuple[str, ...] = ()

    @property
    def __name__(self) -> str:
        return "path"

    def __call__(self, text: str) -> Path:
        path = Path(text)
        if not text:
            raise argparse.ArgumentTypeError("an empty path")
        if not path.exists():
            raise argparse.ArgumentTypeError(f"{text}: no such {'directory' if self.directory else 'file'}")
        if self.directory and not path.is_dir():
            raise argparse.ArgumentTypeError(f"{text}: not a directory")
        if not self.directory and not path.is_file():
            raise argparse.ArgumentTypeError(f"{text}: not a file")
        if not os.access(path, os.R_OK):
            raise argparse.ArgumentTypeError(f"{text}: permission denied")
        return path


_DEVICE_PATTERN = re.compile(r"auto|cpu|mps|cuda(:\d+)?|gpu(:\d+)?")


def _device_name(text: str) -> str:
    if not _DEVICE_PATTERN.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a device: expected auto, cpu, cuda, cuda:N or mps")
    return text


_device_name.__name__ = "device"


def add_device_option(parser: argparse.ArgumentParser, *, help: str | None = None) -> None:
    """Add `--device` (default `auto`): the name is checked at parse time, availability by `pick_device`."""
    parser.add_argument(
        "--device",
        type=_device_name,
        default="auto",
        help=help or "auto (cuda > mps > cpu, or $REPRO_DEVICE), cpu, cuda, cuda:N or mps (default: auto)",
    )


def add_seed_option(parser: argparse.ArgumentParser, *, default: int = 0, help: str | None = None) -> None:
    """Add `--seed`, an integer in [0, 2**32 - 1] (the range every RNG accepts; see `repro_core.seeding`)."""
    parser.add_argument(
        "--seed",
        type=Bounded(int, low=0, high=2**32 - 1),
        default=default,
        help=help or f"random seed, 0 to 2**32 - 1 (default: {default})",
    )


def configure_logging(verbose: int = 0, quiet: bool = False) -> None:
    """Set up logging to stderr for a CLI run (libraries never call this)."""
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr, force=True)


def emit(result: Any, *, as_json: bool, human: Callable[[Any], str] | None = None) -> None:
    """Print `result` on stdout: JSON with `--json`, else the human rendering `human(result)`.

    Logs and progress go to stderr, so `cmd > out.txt` keeps the results and `cmd --json | jq` sees only JSON.
    """
    if as_json:
        json.dump(to_jsonable(result), sys.stdout, indent=2, allow_nan=False)
        sys.stdout.write("\n")
        sys.stdout.flush()
        return
    text = human(result) if human is not None else json.dumps(to_jsonable(result), indent=2)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


@contextlib.contextmanager
def value_errors_as_config_errors(prefix: str = "") -> Iterator[None]:
    """Re-raise a library's `ValueError` as `ConfigError` (one line, exit 2), optionally prefixed with the options.

    Library argument checks raise plain `ValueError`s that name the argument; a CLI wraps the work of a command in
    `with value_errors_as_config_errors():` (or decorates it) so they reach the user as bad configuration, not as a
    traceback. `ReproError`s (`InputError` and `ConfigError` are `ValueError`s too) pass through unchanged.
    """
    try:
        yield
    except ReproError:
        raise
    except ValueError as exc:
        raise ConfigError(f"{prefix}{exc}") from exc


def run_main(
    main: Callable[[argparse.Namespace], int | None],
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None = None,
) -> int:
    """Parse `argv`, configure logging, run `main(args)` and map failures to exit codes.

    `ReproError` (bad input, config, a missing extra) and `OSError` on files print one line
    `<prog>: error: <message>` and return 2; Ctrl-C returns 130; a closed stdout (`cmd --json | head`) returns 141
    quietly. Any other exception is a bug and keeps its traceback.
    """
    args = parser.parse_args(argv)
    configure_logging(getattr(args, "verbose", 0), getattr(args, "quiet", False))
    try:
        code = main(args)
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except (ReproError, FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as exc:
        message = str(exc) if isinstance(exc, ReproError) else f"{exc.filename}: {exc.strerror}"
        print(f"{parser.prog}: error: {' '.join(message.split())}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0 if code is None else int(code)


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush does not raise BrokenPipeError again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout is not a real file (tests capture it): nothing to flush
        pass
