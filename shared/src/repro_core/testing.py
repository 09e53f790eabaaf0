"""Conformance checks every repro package runs in its own tests (in the spirit of scikit-learn's `check_estimator`).

The rules of our CLIs and reproductions are stated once, here, as code: each package's test suite calls these
with its own `main` and `quick`, so a package that breaks a convention fails its own tests.

- `run_cli`: run a CLI in-process and capture its exit code, stdout and stderr;
- `check_package_cli`: `--help`, `--version`, `reproduce --json`;
- `check_cli_rejects_bad_input`: every subcommand, fed generated bad arguments and files, answers exit 2 with one
  line on stderr, no traceback, nothing written, and within 10 s (needs `repro-core[testing]`: hypothesis);
- `check_reproduction`, `run_torchrun`.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from importlib.metadata import entry_points, version
from pathlib import Path
from typing import Any

from repro_core.cli import Bounded, InputPath
from repro_core.optional import require
from repro_core.report import ClaimResult, ReproductionContext

__all__ = [
    "CliResult",
    "check_cli_rejects_bad_input",
    "check_package_cli",
    "check_reproduction",
    "run_cli",
    "run_torchrun",
]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class CliResult:
    """What a CLI run gave: its exit code and everything it printed."""

    code: int
    stdout: str
    stderr: str

    def __iter__(self) -> Iterator[Any]:  # `code, out, err = run_cli(...)`
        return iter((self.code, self.stdout, self.stderr))


def run_cli(main: Callable[[Sequence[str]], int], argv: Sequence[str]) -> CliResult:
    """Run a CLI's `main(argv)` in-process, capturing stdout and stderr; SystemExit (argparse) becomes the code."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return CliResult(int(code), out.getvalue(), err.getvalue())


def check_package_cli(dist: str, main: Callable[[Sequence[str]], int], tmp_path: Path) -> None:
    """Assert the CLI conventions for distribution `dist`.

    `--help` exits 0 and lists `reproduce`; `--version` prints `<dist> <installed version> (repro-core ...)`;
    `reproduce --json` writes the report and prints JSON that parses, naming only this package; a bad option value
    exits 2 with a one-line message and no traceback.
    """
    code, out, _ = run_cli(main, ["--help"])
    assert code == 0 and f"usage: {dist}" in out and "reproduce" in out, out
    code, out, _ = run_cli(main, ["--version"])
    assert code == 0 and out.startswith(f"{dist} {version(dist)} (repro-core "), out
    code, out, err = run_cli(main, ["reproduce", "--out", str(tmp_path), "--json"])
    assert code == 0, err
    payload = json.loads(out)
    assert [o["package"] for o in payload["outcomes"]] == [dist], payload
    assert (tmp_path / "index.md").is_file() and (tmp_path / "results.json").is_file()
    code, _, err = run_cli(main, ["reproduce", "--seed", "not-a-number"])
    assert code == 2 and "Traceback" not in err, err


def check_reproduction(
    dist: str, quick: Callable[[ReproductionContext], list[ClaimResult]], tmp_path: Path
) -> list[ClaimResult]:
    """Assert `quick` is registered for `dist` and returns well-formed records; return them for further checks."""
    registered = {ep.name: ep for ep in entry_points(group="repro.reproductions")}
    assert dist in registered, f"{dist} registers no reproduction in 'repro.reproductions'"
    assert registered[dist].load() is quick, f"the entry point of {dist} is not {quick.__module__}.quick"
    results = quick(ReproductionContext(out_dir=tmp_path, seed=0))
    assert isinstance(results, list) and results, "a reproduction returns a non-empty list of ClaimResult"
    for result in results:
        assert isinstance(result, ClaimResult), type(result)
        assert result.claim and result.metric, result
        assert result.verdict is not None
    return results


def run_torchrun(script: Path, *args: str, nproc: int = 2, timeout: float = 240.0) -> subprocess.CompletedProcess[str]:
    """Run `script` under `torchrun --standalone` with `nproc` processes and return the finished process.

    torchrun runs in its own session, so a hung run is killed together with its workers on timeout instead of
    leaving them orphaned; the timeout then raises `TimeoutError`.
    """
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nnodes=1",
        f"--nproc_per_node={nproc}",
        str(script),
        *args,
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise TimeoutError(f"the {nproc}-process torchrun of {script} did not finish in {timeout:g} s") from None
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


# --- the bad-input harness ------------------------------------------------------------------------------------

#: The kinds of bad value the harness feeds an option, by the option's `type=`.
FILE_KINDS = ("missing", "directory", "empty", "truncated", "binary", "non-utf8")
DIRECTORY_KINDS = ("missing", "file", "empty")


class _TooSlow(BaseException):
    """Raised by the alarm inside a CLI that has not answered in time (BaseException: no `except` swallows it)."""


def _subcommands(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, argparse.ArgumentParser]:
    """Every leaf subcommand by its words ("train", "index build") with its parser."""
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                words = f"{prefix} {name}".strip()
                below = _subcommands(sub, words)
                found.update(below or {words: sub})
    return found


def _option_name(action: argparse.Action) -> str:
    return max(action.option_strings, key=len) if action.option_strings else action.dest


def _kinds(action: argparse.Action) -> tuple[str, ...]:
    """The kinds of bad value that apply to an option, from its `type=` and `choices=`."""
    kind = action.type
    if isinstance(kind, InputPath):
        return DIRECTORY_KINDS if kind.directory else FILE_KINDS
    if isinstance(kind, Bounded):
        kinds = ["not-a-number", "nan", "inf", "-inf"]
        kinds += ["below"] if kind.low is not None else []
        kinds += ["above"] if kind.high is not None else []
        kinds += ["fraction"] if kind.kind is int else []
        return tuple(kinds)
    if kind is int:
        return ("not-a-number", "fraction")
    if kind is float:
        return ("not-a-number", "nan", "inf", "-inf")
    if action.choices is not None and not isinstance(action, argparse._SubParsersAction):
        return ("not-a-choice",)
    return ()


def _replace(
    base: Sequence[str], action: argparse.Action, value: str, positionals: Sequence[argparse.Action]
) -> list[str]:
    """`base` with the option's value(s) replaced by `value`, or the option appended when `base` lacks it."""
    argv = list(base)
    if action.option_strings:
        for i, token in enumerate(argv):
            if token in action.option_strings:
                end = i + 1 + (action.nargs if isinstance(action.nargs, int) else 1)
                if action.nargs in ("+", "*"):
                    while end < len(argv) and not _is_option(argv[end]):
                        end += 1
                return [*argv[:i], token, value, *argv[end:]]
            for option in action.option_strings:
                if token.startswith(option + "="):
                    return [*argv[:i], f"{option}={value}", *argv[i + 1 :]]
        return [*argv, action.option_strings[0], value]
    # a positional: the case lists positionals first, in the parser's order, before any option
    index = list(positionals).index(action)
    if index >= len(argv) or _is_option(argv[index]):
        return [*argv, value]
    return [*argv[:index], value, *argv[index + 1 :]]


def _is_option(token: str) -> bool:
    return token.startswith("-") and len(token) > 1 and not _number(token)


def _number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


class _Canonical:
    """The first value of each choice: every (option, kind) pair is tried once this way, without hypothesis."""

    def choice(self, options: Sequence[Any]) -> Any:
        return options[0]

    def word(self) -> str:
        return "xyz"

    def data(self, max_size: int) -> bytes:
        return b"\x00\x01\x02"

    def integer(self, low: int, high: int) -> int:
        return (low + high) // 2


class _Drawn:
    """Values drawn by hypothesis (shrinking to the simplest failing one)."""

    def __init__(self, data: Any, st: Any) -> None:
        self._data, self._st = data, st

    def choice(self, options: Sequence[Any]) -> Any:
        return self._data.draw(self._st.sampled_from(list(options)))

    def word(self) -> str:
        text = self._st.text(self._st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=8)
        return self._data.draw(text.map(lambda t: "x" + t.strip()).filter(lambda t: not _number(t)))

    def data(self, max_size: int) -> bytes:
        return self._data.draw(self._st.binary(min_size=1, max_size=max_size))

    def integer(self, low: int, high: int) -> int:
        return self._data.draw(self._st.integers(min_value=low, max_value=high))


def _bad_number(kind: str, bound: Bounded | None, pick: Any) -> str:
    if kind == "not-a-number":
        return pick.word()
    if kind in ("nan", "inf", "-inf"):
        return pick.choice({"nan": ["nan", "NaN"], "inf": ["inf", "1e999"], "-inf": ["-inf", "-1e999"]}[kind])
    if kind == "fraction":
        return pick.choice(["0.5", "2.5", "1e3"])
    assert bound is not None
    step = pick.choice([1, 7, 10**6]) if bound.kind is int else pick.choice([1e-3, 0.5, 1e6])
    if kind == "below":
        assert bound.low is not None
        value = bound.low - (0 if bound.low_open else step)
    else:
        assert bound.high is not None
        value = bound.high + (0 if bound.high_open else step)
    return str(int(value)) if bound.kind is int else repr(float(value))


def _bad_file(kind: str, original: Path | None, workdir: Path, pick: Any) -> str | None:
    folder = workdir / "bad-input"
    folder.mkdir(exist_ok=True)
    target = folder / (original.name if original is not None else "input.txt")
    if kind == "missing":
        return str(folder / "no-such-file.txt")
    if kind == "directory":
        return str(folder)
    if kind == "file":  # a file where a folder was expected
        target = folder / "not-a-folder.txt"
        target.write_text("a file, not a folder\n")
        return str(target)
    if kind == "empty":
        if original is not None and original.is_dir():
            target = folder / "empty-folder"
            target.mkdir(exist_ok=True)
            return str(target)
        target.write_bytes(b"")
    elif kind == "binary":
        target.write_bytes(b"\x00\x89PNG" + pick.data(64))
    elif kind == "non-utf8":
        target.write_bytes(b"caf\xe9 \xff\xfe " + pick.data(16).replace(b"\n", b" ") + b"\n")
    elif kind == "truncated":
        if original is None or not original.is_file():
            return None
        data = original.read_bytes()
        first_line = data.split(b"\n", 1)[0]
        if len(first_line) < 3:
            return None
        target.write_bytes(data[: pick.integer(1, len(first_line) - 2)])  # cut inside the first line: never valid
    return str(target)


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(path.relative_to(root)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in root.rglob("*")
        if path.is_file() and "bad-input" not in path.relative_to(root).parts
    }


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Interrupt the body after `seconds` (Unix main thread only; elsewhere the time is only measured)."""
    usable = hasattr(signal, "SIGALRM") and _in_main_thread()
    if not usable:
        yield
        return

    def _alarm(signum: int, frame: Any) -> None:
        raise _TooSlow

    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def check_cli_rejects_bad_input(
    parser: argparse.ArgumentParser,
    main: Callable[[Sequence[str]], int],
    cases: Mapping[str, Sequence[str]],
    workdir: Path,
    *,
    skip: Iterable[str] = (),
    max_examples: int = 60,
    time_limit: float = 10.0,
) -> dict[str, int]:
    """Feed every option of every subcommand bad values and files; assert each is refused properly.

    `cases` maps each subcommand ("train", "index build") to arguments that are valid after it (input files
    inside `workdir`, outputs inside it too). The harness finds the options to attack from the parser: numbers
    typed with `Bounded` (or plain int/float), files and folders typed with `InputPath`, options with `choices`.
    Each bad value replaces one option of a valid case: first every (option, kind) pair once, then
    `max_examples` more drawn by hypothesis (other texts, numbers, bytes and cut points). Every run must:
    exit 2, print exactly one line on stderr and nothing on stdout, show no traceback, leave `workdir` as it was,
    and answer within `time_limit` seconds. `skip` names what a command legitimately accepts, as
    "command --option" or "command --option:kind" (keep it short, and say why beside it).

    Returns the number of cases run per subcommand (for the record), and raises AssertionError on the first
    failure with the command line that failed.
    """
    hypothesis = require("hypothesis", "repro_core.testing.check_cli_rejects_bad_input", extra="testing")
    st = hypothesis.strategies
    skipped = set(skip)
    commands = _subcommands(parser)
    targets: list[tuple[str, argparse.Action, str]] = []
    for words, sub in commands.items():
        attackable = [a for a in sub._actions if _kinds(a)]
        if attackable and words not in cases and words not in skipped:
            raise AssertionError(f"no valid case for subcommand {words!r}: give one in `cases` (or skip it)")
        for action in attackable:
            name = _option_name(action)
            if words in skipped or f"{words} {name}" in skipped:
                continue
            targets += [(words, action, k) for k in _kinds(action) if f"{words} {name}:{k}" not in skipped]
    if not targets:
        raise AssertionError("the parser has no option the harness can attack: type numbers and files (see docstring)")
    workdir.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = dict.fromkeys(cases, 0)

    def attempt(words: str, action: argparse.Action, kind: str, pick: Any) -> None:
        base = list(cases[words])
        value: str | None
        if kind in FILE_KINDS or kind in DIRECTORY_KINDS:
            value = _bad_file(kind, _current_path(parser, words, base, action), workdir, pick)
        elif kind == "not-a-choice":
            value = "not-a-choice-" + pick.choice(["x", "0", "all"])
        else:
            value = _bad_number(kind, action.type if isinstance(action.type, Bounded) else None, pick)
        if value is None:
            return
        positionals = [a for a in commands[words]._actions if not a.option_strings]
        argv = [*words.split(), *_replace(base, action, value, positionals)]
        before = _snapshot(workdir)
        start = time.perf_counter()
        old_cwd = os.getcwd()
        os.chdir(workdir)
        shown = f"{' '.join(argv)!r} ({kind} {_option_name(action)})"
        try:
            with _deadline(time_limit):
                result = run_cli(main, argv)
        except _TooSlow:
            raise AssertionError(f"{shown}: no answer within {time_limit:g} s") from None
        except Exception as exc:  # what a user would see as a traceback
            raise AssertionError(f"{shown}: traceback, {type(exc).__name__}: {exc}") from exc
        finally:
            os.chdir(old_cwd)
        seconds = time.perf_counter() - start
        counts[words] = counts.get(words, 0) + 1
        lines = result.stderr.strip().splitlines()
        assert "Traceback" not in result.stderr, f"{shown}: traceback\n{result.stderr}"
        assert result.code == 2, f"{shown}: exit {result.code}, expected 2; stderr:\n{result.stderr}"
        assert len(lines) == 1, f"{shown}: {len(lines)} lines on stderr, expected 1:\n{result.stderr}"
        assert not result.stdout.strip(), f"{shown}: printed on stdout: {result.stdout[:200]!r}"
        assert _snapshot(workdir) == before, f"{shown}: files were written or changed in {workdir}"
        assert seconds < time_limit, f"{shown}: {seconds:.1f} s"

    for words, action, kind in targets:
        attempt(words, action, kind, _Canonical())

    @hypothesis.settings(
        hypothesis.settings.default,
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(st.data())
    def explore(data: Any) -> None:
        words, action, kind = data.draw(st.sampled_from(targets))
        attempt(words, action, kind, _Drawn(data, st))

    explore()
    logger.info("bad-input cases per subcommand: %s", counts)
    return counts


def _current_path(
    parser: argparse.ArgumentParser, words: str, base: Sequence[str], action: argparse.Action
) -> Path | None:
    """The path the valid case gives to `action` (for truncating a copy of it)."""
    try:
        namespace, _ = parser.parse_known_args([*words.split(), *base])
    except SystemExit:
        return None
    value = getattr(namespace, action.dest, None)
    if isinstance(value, list):
        value = value[0] if value else None
    return Path(value) if value is not None else None


__all__ += ["float_tolerance"]  # kept beside the helper it exports


def float_tolerance(dtype: Any, n_terms: int, *, scale: float = 1.0) -> float:
    """The absolute error a test may allow on a result that sums `n_terms` rounded products of size `scale`.

    Why this bound, and not a number that happened to pass: each floating-point addition or multiplication rounds
    with relative error at most u = eps / 2, so a dot product or sum of n terms is off by at most
    gamma_n * sum|terms| with gamma_n = n u / (1 - n u) (Higham, *Accuracy and Stability of Numerical Algorithms*,
    section 3.1). `n_terms * eps * scale` covers gamma_n for every n u < 1/2, whatever the seed or the inputs, so a
    test using it cannot fail by an unlucky draw. `scale` bounds sum|terms| (e.g. |x| |y| for an inner product).
    Chains of operations add their lengths: a matrix-vector product of width d followed by an inner product of
    length m counts d + m terms. Errors that are not rounding (a matrix that is only nearly orthogonal, an
    approximation) must be measured and added by the test itself.

    Args:
        dtype: a floating dtype, as a torch dtype, a numpy dtype or its name ("float32").
        n_terms: the number of rounded operations accumulated (>= 1).
        scale: a bound on the magnitude of the terms summed (> 0).
    """
    import numpy as np

    name = str(dtype).removeprefix("torch.")
    if name == "bfloat16":  # numpy has no bfloat16: 8 significand bits
        eps = 2.0**-7
    else:
        try:
            eps = float(np.finfo(np.dtype(name if str(dtype).startswith("torch.") else dtype)).eps)
        except (TypeError, ValueError):
            raise ValueError(f"dtype: expected a floating dtype, got {dtype!r}") from None
    if isinstance(n_terms, bool) or not isinstance(n_terms, int) or n_terms < 1:
        raise ValueError(f"n_terms: expected an integer >= 1, got {n_terms!r}")
    if not 0 < scale < float("inf"):
        raise ValueError(f"scale: expected a finite value > 0, got {scale!r}")
    return n_terms * eps * scale
