"""The conventions every repro command shares (issue #13), checked on small parsers built with repro_core.cli."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from repro_core import umbrella
from repro_core.checkpoint import atomic_write_text
from repro_core.cli import (
    EXIT_BROKEN_PIPE,
    PROGRESS_INTERVAL_ENV,
    Bounded,
    InputPath,
    add_command,
    add_device_option,
    add_seed_option,
    emit,
    make_parser,
    positive_int,
    progress,
    run_main,
)
from repro_core.errors import InputError
from repro_core.testing import check_cli_rejects_bad_input, run_cli


def _demo() -> argparse.ArgumentParser:
    parser = make_parser("demo", "a demo", "1.0")
    commands = parser.add_subparsers(dest="command", required=True)
    show = add_command(commands, "show")
    show.add_argument("--k", type=positive_int, default=1)
    add_device_option(show)
    add_seed_option(show)
    return parser


def _echo(args: argparse.Namespace) -> int:
    emit({"json": args.json, "verbose": args.verbose, "quiet": args.quiet}, as_json=True)
    return 0


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--json", "show"], {"json": True, "verbose": 0, "quiet": False}),
        (["show", "--json"], {"json": True, "verbose": 0, "quiet": False}),
        (["-q", "show"], {"json": False, "verbose": 0, "quiet": True}),
        (["-vv", "show"], {"json": False, "verbose": 2, "quiet": False}),
        (["-v", "show", "-q"], {"json": False, "verbose": 1, "quiet": True}),
    ],
)
def test_shared_flags_work_before_and_after_the_subcommand(argv: list[str], expected: dict, capsys) -> None:
    # before #13, flags given before the subcommand were silently reset by the subcommand's defaults
    assert run_main(_echo, _demo(), argv) == 0
    assert json.loads(capsys.readouterr().out) == expected


def test_umbrella_json_before_the_subcommand(capsys) -> None:
    assert umbrella.main(["--json", "list"]) == 0
    assert isinstance(json.loads(capsys.readouterr().out), dict)


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["show", "--k", "0"], "argument --k: 0 is out of range: expected an integer >= 1"),
        (["show", "--k", "nan"], "'nan' is not an integer >= 1"),
        (["show", "--device", "bogus"], "'bogus' is not a device"),
        (["show", "--seed", "-1"], "expected an integer in [0, 4294967295]"),
        (["show", "--seed", "2.5"], "'2.5' is not an integer"),
        (["nope"], "invalid choice"),
    ],
)
def test_usage_errors_are_one_line_with_exit_2(argv: list[str], fragment: str) -> None:
    code, out, err = run_cli(lambda a: run_main(_echo, _demo(), a), argv)
    assert code == 2 and out == ""
    assert (
        len(err.splitlines()) == 1
        and fragment in err
        and err.startswith("demo show: error:" if argv[0] == "show" else "demo: error:")
    ), err


def test_bounded_types() -> None:
    unit = Bounded(float, 0, 1, low_open=True)
    assert unit("1") == 1.0 and unit("0.25") == 0.25
    for bad in ["0", "1.5", "inf", "-inf", "nan", "x", ""]:
        with pytest.raises(argparse.ArgumentTypeError):
            unit(bad)
    assert unit.describe() == "a finite number in (0, 1]"
    assert Bounded(int, high=10, high_open=True).describe() == "an integer < 10"


def test_input_path(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("x")
    assert InputPath()(str(tmp_path / "f.txt")) == tmp_path / "f.txt"
    assert InputPath(directory=True)(str(tmp_path)) == tmp_path
    for kind, text in [(InputPath(), str(tmp_path)), (InputPath(), str(tmp_path / "no")), (InputPath(), "")]:
        with pytest.raises(argparse.ArgumentTypeError):
            kind(text)
    with pytest.raises(argparse.ArgumentTypeError, match="not a directory"):
        InputPath(directory=True)(str(tmp_path / "f.txt"))


def test_progress_prints_lines_on_a_non_terminal(monkeypatch, capsys) -> None:
    monkeypatch.setenv(PROGRESS_INTERVAL_ENV, "0.1")
    for _ in progress(range(4), desc="slow step", unit="item"):
        time.sleep(0.06)
    lines = capsys.readouterr().err.splitlines()
    assert lines and all("slow step" in line and "\r" not in line for line in lines), lines


def test_progress_shows_by_default_on_a_terminal_and_never_with_q(monkeypatch) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    import logging

    monkeypatch.setattr(logging.getLogger(), "level", logging.WARNING)
    assert not progress(range(2)).disable  # before #13 a bar needed -v
    monkeypatch.setattr(logging.getLogger(), "level", logging.ERROR)  # -q
    assert progress(range(2)).disable


def test_broken_pipe_is_quiet_and_exits_141() -> None:
    def writes_into_a_closed_pipe(args: argparse.Namespace) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    code, _, err = run_cli(lambda a: run_main(writes_into_a_closed_pipe, _demo(), a), ["show"])
    assert code == EXIT_BROKEN_PIPE and err == ""


def test_json_piped_into_head_has_no_traceback() -> None:
    script = (
        "from repro_core.cli import emit, make_parser, run_main\n"
        "run_main(lambda a: emit(list(range(200000)), as_json=True), make_parser('big', 'd', '1'), [])\n"
    )
    pipeline = f'{sys.executable} -c "{script}" | head -c 10'
    proc = subprocess.run(["bash", "-c", pipeline], capture_output=True, text=True, timeout=60)
    assert proc.stdout == "[\n  0,\n  1,"[:10] and "Traceback" not in proc.stderr and "Broken" not in proc.stderr


@pytest.mark.skipif(os.name == "nt", reason="POSIX permission bits")
@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_write_honours_the_umask(tmp_path: Path, umask: int, mode: int) -> None:
    previous = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "report.md", "x")
    finally:
        os.umask(previous)
    assert (tmp_path / "report.md").stat().st_mode & 0o777 == mode  # was always 0600 through mkstemp


def test_repro_with_no_package_installed_says_so(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(umbrella, "discover", dict)
    code, out, err = run_cli(umbrella.main, ["list"])
    assert code == 0 and "no package registers a reproduction" in out
    code, out, err = run_cli(umbrella.main, ["reproduce", "--out", str(tmp_path / "r")])
    assert code == 2 and "no package registers a reproduction" in err and not (tmp_path / "r").exists()


def test_repro_reproduce_help_speaks_of_every_package() -> None:
    _, out, _ = run_cli(umbrella.main, ["reproduce", "--help"])
    assert "every installed package" in out and "this package" not in out
    _, out, _ = run_cli(umbrella.main, ["--help"])
    assert "run every installed package's quick reproduction" in out


def test_bad_input_harness_on_the_repro_cli(tmp_path: Path) -> None:
    counts = check_cli_rejects_bad_input(
        umbrella._build_parser(),
        umbrella.main,
        {"reproduce": ["--out", str(tmp_path / "report"), "--only", "ntk-permute"]},
        tmp_path,
        max_examples=20,
    )
    assert counts["reproduce"] >= 20


def _sloppy_cli(tmp_out: Path):
    """A CLI that breaks each rule the harness enforces, one per option."""
    parser = make_parser("sloppy", "d", "1")
    commands = parser.add_subparsers(dest="command", required=True)
    run = add_command(commands, "run")
    run.add_argument("--rate", type=float, default=1.0)  # accepts nan and inf
    run.add_argument("--data", type=InputPath(), default=None)
    run.add_argument("--n", type=positive_int, default=1)

    def body(args: argparse.Namespace) -> int:
        if args.data is not None:
            text = args.data.read_text(encoding="utf-8")  # UnicodeDecodeError: a traceback
            if not text:
                (tmp_out / "partial.txt").write_text("half")  # writes, then fails
                raise InputError("empty", path=args.data)
        return 0

    return parser, lambda argv: run_main(body, parser, argv)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        (["--rate", "1"], "exit 0, expected 2"),
        (["--data", "GOOD"], "were written"),
        (["--data", "GOOD", "--n", "2"], "traceback, UnicodeDecodeError"),
    ],
)
def test_the_harness_catches_what_it_should(tmp_path: Path, case: list[str], message: str) -> None:
    good = tmp_path / "good.txt"
    good.write_text("fine\n")
    parser, main = _sloppy_cli(tmp_path)
    argv = [str(good) if token == "GOOD" else token for token in case]
    skip = ["run --n"] + (["run --data"] if "--rate" in case else ["run --rate"])
    skip += ["run --data:" + k for k in ("empty", "missing", "directory", "truncated")] if "--n" in case else []
    with pytest.raises(AssertionError, match=message):
        check_cli_rejects_bad_input(parser, main, {"run": argv}, tmp_path, skip=skip, max_examples=5)


def test_the_harness_requires_a_case_for_every_subcommand(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="no valid case for subcommand 'show'"):
        check_cli_rejects_bad_input(_demo(), lambda a: run_main(_echo, _demo(), a), {}, tmp_path)
