"""The mult-probe CLI (repro_core conventions, `data`, `train`, `eval`) and the quick reproduction's records."""

from __future__ import annotations

import json
import math
import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import mult_probe
from mult_probe import reproduction
from mult_probe.cli import build_parser, main
from mult_probe.data import cot_line, generate_split, read_examples
from mult_probe.reproduction import QuickBudget, quick
from repro_core.optional import has_module
from repro_core.report import Verdict
from repro_core.testing import check_package_cli, check_reproduction, run_cli

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def small_quick(monkeypatch: pytest.MonkeyPatch) -> None:
    """The conventions, not the phenomenon: a few steps instead of the real budget (see benchmarks/)."""
    monkeypatch.setattr(reproduction, "QUICK", QuickBudget(k=2, steps=4, batch_size=16, eval_size=20, probe_size=50))


@pytest.mark.usefixtures("small_quick")
def test_cli_conventions(tmp_path: Path) -> None:
    check_package_cli("mult-probe", main, tmp_path)


@pytest.mark.usefixtures("small_quick")
def test_quick_reproduction_records(tmp_path: Path) -> None:
    results = check_reproduction("mult-probe", quick, tmp_path)
    assert len(results) == 7 and mult_probe.PAPER.startswith("arXiv:")
    assert all(r.verdict is not Verdict.PENDING and r.our_value is not None for r in results)
    assert [r.paper_value for r in results[:4]] == [1.0, 1.0, 0.1, 0.01]
    assert all(r.verdict is Verdict.MEASURED for r in results[4:])
    if has_module("matplotlib"):
        assert (tmp_path / "per_position_accuracy.png").is_file()


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_data_generate_and_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "train.txt"
    info = _json(
        capsys,
        [
            "data",
            "--k",
            "4",
            "--n",
            "30",
            "--seed",
            "1",
            "--exclude",
            str(FIXTURES / "deng_4x4_valid_sample.txt"),
            "--out",
            str(out),
            "--json",
        ],
    )
    assert info["lines"] == 30 and len(out.read_text().splitlines()) == 30
    excluded = [(e.a, e.b) for e in read_examples(FIXTURES / "deng_4x4_valid_sample.txt")]
    assert out.read_text().splitlines() == generate_split(4, n=30, seed=1, exclude=excluded)
    assert _json(capsys, ["data", "--check", str(out), "--json"])["byte_identical"] is True
    check = _json(capsys, ["data", "--check", str(FIXTURES / "deng_4x4_test_sample.txt"), "--json"])
    assert check == {
        "path": str(FIXTURES / "deng_4x4_test_sample.txt"),
        "lines": 4,
        "k": 4,
        "l": 4,
        "cot": True,
        "byte_identical": True,
    }
    nocot = tmp_path / "nocot.txt"
    _json(capsys, ["data", "--k", "2", "--l", "3", "--n", "5", "--no-cot", "--out", str(nocot), "--json"])
    assert all("|| ####" in line for line in nocot.read_text().splitlines())


def test_train_then_eval(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    trained = _json(
        capsys,
        [
            "train",
            "--k",
            "2",
            "--steps",
            "3",
            "--batch-size",
            "8",
            "--eval-size",
            "10",
            "--method",
            "aux",
            "--aux-heads",
            "2",
            "3",
            "--run-dir",
            str(run),
            "--json",
        ],
    )
    assert trained["config"]["aux_heads"] == [2, 3] and len(trained["final"]["digit_accuracy"]) == 4
    evaluated = _json(capsys, ["eval", "--run-dir", str(run), "--n", "7", "--json"])
    assert evaluated["step"] == 3 and evaluated["n"] == 7 and evaluated["method"] == "aux"
    assert main(["eval", "--run-dir", str(run), "--n", "5"]) == 0
    assert "exact match" in capsys.readouterr().out  # results on stdout, like --json


@pytest.mark.parametrize(
    "argv",
    [
        ["data", "--k", "0", "--out", "x.txt"],
        ["data", "--k", "3"],
        ["data", "--check", "/nonexistent/file.txt"],
        ["train", "--steps", "0"],
        ["train", "--preset", "huge"],
        ["train", "--method", "aux", "--aux-heads", "7"],
        ["eval", "--run-dir", "/nonexistent/run"],
        ["train", "--lr", "5"],
        ["train", "--smoothing-lambda", "nan"],
        ["train", "--k", "10", "--l", "9"],
        ["train", "--device", "tpu"],
        ["data", "--k", "19", "--out", "x.txt"],
        ["train", "--lr", "inf"],  # issue 15.6: accepted before
        ["train", "--aux-lambda", "nan"],
        ["train", "--aux-lambda", "inf"],
        ["train", "--resume", "/nonexistent/run"],
        ["dynamics", "plot", "/nonexistent/run"],
    ],
)
def test_bad_input_exits_2(argv: list[str]) -> None:
    code, out, err = run_cli(main, argv)
    assert code == 2 and not out and len(err.splitlines()) == 1 and "error:" in err, err


def test_smoothing_lambda_inf_means_no_smoothing() -> None:
    args = build_parser().parse_args(["train", "--smoothing-lambda", "inf"])
    assert math.isinf(args.smoothing_lambda)


def _write_deng(path: Path, pairs: list[tuple[int, int]], k: int) -> Path:
    path.write_text("".join(cot_line(a, b, k) + "\n" for a, b in pairs))
    return path


def test_valid_file_of_another_layout_is_refused_before_training(tmp_path: Path) -> None:
    valid = _write_deng(tmp_path / "valid3.txt", [(123, 456)], 3)
    run = tmp_path / "run"
    argv = ["train", "--k", "2", "--steps", "2", "--batch-size", "4", "--valid", str(valid), "--run-dir", str(run)]
    code, out, err = run_cli(main, argv)
    assert code == 2 and not out and f"{valid}:1 field 'input'" in err and "2x2" in err, err
    assert not run.exists()  # refused before any training (it used to fail in the final evaluation)


def test_empty_or_non_utf8_deng_files_are_one_line_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes(cot_line(12, 34, 2).encode() + b"\ncaf\xe9\n")
    code, out, err = run_cli(main, ["data", "--check", str(empty)])
    assert code == 2 and not out and f"{empty}: no examples" in err, err  # used to pass as "byte identical"
    code, out, err = run_cli(main, ["data", "--check", str(latin1)])
    assert code == 2 and not out and f"{latin1}:2 field 'line': not UTF-8" in err, err
    out_file = tmp_path / "out.txt"
    code, _, err = run_cli(main, ["data", "--k", "2", "--n", "3", "--exclude", str(empty), "--out", str(out_file)])
    assert code == 2 and "no examples" in err and not out_file.exists(), err


def test_data_check_counts_lines_with_excluded_operands(tmp_path: Path) -> None:
    checked = _write_deng(tmp_path / "train.txt", [(12, 34), (56, 78)], 2)
    held_out = _write_deng(tmp_path / "valid.txt", [(56, 78)], 2)
    code, out, _ = run_cli(main, ["data", "--check", str(checked), "--exclude", str(held_out), "--json"])
    assert code == 1 and json.loads(out)["excluded_pairs_found"] == 1
    code, out, _ = run_cli(main, ["data", "--check", str(checked)])
    assert code == 0 and "follows the rule" in out


def test_eval_of_a_foreign_checkpoint_is_an_input_error(tmp_path: Path) -> None:
    import torch

    run = tmp_path / "run"
    run.mkdir()
    torch.save({"step": 1}, run / "ckpt-000000001.pt")  # a checkpoint, but not of mult-probe
    code, out, err = run_cli(main, ["eval", "--run-dir", str(run)])
    assert code == 2 and not out and "not a mult-probe checkpoint" in err and "Traceback" not in err, err


class _Clock:
    """tqdm's clock, advancing `step` seconds per reading: progress timing without sleeping."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 1000.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


TINY_TRAIN = ["train", "--k", "2", "--steps", "4", "--batch-size", "4", "--eval-size", "4"]


def test_training_reports_progress_off_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Off a terminal (`2> log`, run_cli's StringIO) training prints progress lines; with -q nothing on stderr."""
    import tqdm.std

    monkeypatch.setenv("REPRO_PROGRESS_INTERVAL", "0.5")
    monkeypatch.setattr(tqdm.std, "time", _Clock(step=1.0))  # every step "lasts" longer than the interval
    code, out, err = run_cli(main, TINY_TRAIN)
    assert code == 0 and "exact match" in out, err
    lines = [line for line in err.splitlines() if line.startswith("sft 2x2:")]
    assert lines and "/4 [" in lines[-1] and "loss=" in lines[-1], err
    code, out, err = run_cli(main, [*TINY_TRAIN, "-q"])
    assert code == 0 and "exact match" in out and err == "", err


def test_short_training_prints_no_progress_line_per_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """Within one interval, a non-terminal gets no progress line at all (it used to get one per step)."""
    import tqdm.std

    monkeypatch.setenv("REPRO_PROGRESS_INTERVAL", "5")
    monkeypatch.setattr(tqdm.std, "time", _Clock(step=0.0))
    code, out, err = run_cli(main, TINY_TRAIN)
    assert code == 0 and "exact match" in out and "sft 2x2" not in err, err


def test_bad_line_names_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("1 2 * 3 4|| #### 3 0 9 0\n1 2 * 3 4|| #### 3 0 9 1\n")
    assert main(["data", "--check", str(bad)]) == 2
    assert f"{bad}:2 field 'answer'" in capsys.readouterr().err


SMALL_RUN = ["--k", "2", "--batch-size", "8", "--eval-size", "5", "-q"]


def _weights(run: Path) -> dict[str, Any]:
    from repro_core.checkpoint import CheckpointManager, load_checkpoint

    latest = CheckpointManager(run, keep=None).latest()
    assert latest is not None
    return load_checkpoint(latest)["model"]


def test_resume_grows_a_finished_run_to_more_steps(tmp_path: Path) -> None:
    """Issue 15.4: `train --resume RUN --steps M` = a run asked for M steps at first, bit for bit."""
    import torch

    whole, grown = tmp_path / "whole", tmp_path / "grown"
    assert run_cli(main, ["train", *SMALL_RUN, "--steps", "6", "--run-dir", str(whole)]).code == 0
    assert run_cli(main, ["train", *SMALL_RUN, "--steps", "3", "--run-dir", str(grown)]).code == 0
    code, out, err = run_cli(main, ["train", "--resume", str(grown), "--steps", "6", "--json"])
    assert code == 0 and json.loads(out)["resumed_from"] == 3, err
    a, b = _weights(whole), _weights(grown)
    assert a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)
    for argv, message in [
        (["--steps", "4"], "--steps: .* has already trained 6 steps"),
        (["--lr", "0.01"], "--lr: taken from the run being resumed"),
        (["--method", "sft", "--seed", "3"], "--method, --seed: taken from the run"),
        (["--run-dir", str(whole)], "--run-dir: taken from the run"),  # --resume continues RUN in place
    ]:
        code, out, err = run_cli(main, ["train", "--resume", str(grown), *argv])
        assert code == 2 and not out and len(err.splitlines()) == 1, err
        assert re.search(message, err), err
    # plain `--run-dir` with more steps extends too; other options must then match the run
    code, _, err = run_cli(main, ["train", *SMALL_RUN, "--steps", "7", "--run-dir", str(whole)])
    assert code == 0, err
    code, _, err = run_cli(main, ["train", *SMALL_RUN, "--steps", "8", "--lr", "0.01", "--run-dir", str(whole)])
    assert code == 2 and "different lr" in err, err


def _train_tiny(run: Path, *extra: str) -> None:
    code, _, err = run_cli(main, ["train", *SMALL_RUN, "--steps", "2", "--run-dir", str(run), *extra])
    assert code == 0, err


def test_bad_files_and_checkpoints_are_refused_before_work(tmp_path: Path) -> None:
    """Issue 15.6: each case once an error at the end or a traceback, now one line and exit 2 before any work."""
    import torch

    run = tmp_path / "run"
    _train_tiny(run)
    one_digit = tmp_path / "one_digit.txt"
    one_digit.write_text(cot_line(3, 45, 1, 2) + "\n")  # a 1x2 line: used to be zero-padded into the 2x2 run
    code, out, err = run_cli(main, ["eval", "--run-dir", str(run), "--data", str(one_digit)])
    assert code == 2 and not out and f"{one_digit}:1 field 'input'" in err and "1x2 line" in err, err
    blocker = tmp_path / "a_file"
    blocker.write_text("keep me")
    code, out, err = run_cli(main, ["train", *SMALL_RUN, "--steps", "2", "--run-dir", str(blocker)])
    assert code == 2 and "is not a directory" in err and blocker.read_text() == "keep me", err
    text = tmp_path / "notes.pt"
    text.write_text("hello, this is not a checkpoint\n")
    code, out, err = run_cli(main, ["analyze", "dag", "--checkpoint", str(text)])
    assert code == 2 and "not a torch checkpoint (a text file" in err and "KeyError" not in err, err
    state = torch.load(next(run.glob("ckpt-*.pt")), weights_only=True)
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    first = next(iter(state["model"]))
    state["model"][first] = torch.zeros(3, 3)
    torch.save(state, wrong / "ckpt-000000002.pt")
    code, out, err = run_cli(main, ["eval", "--run-dir", str(wrong)])
    assert code == 2 and "cannot restore the model" in err and "Traceback" not in err, err
    state["model"] = {key: torch.full_like(value, float("nan")) for key, value in _weights(run).items()}
    torch.save(state, wrong / "ckpt-000000002.pt")
    code, out, err = run_cli(main, ["eval", "--run-dir", str(wrong)])
    assert code == 2 and not out and "NaN or inf" in err, err  # used to report digit accuracies with exit 0


def test_data_check_refuses_mixed_layouts_and_names_the_first_difference(tmp_path: Path) -> None:
    mixed = tmp_path / "mixed.txt"
    mixed.write_text(cot_line(1234, 5678, 4) + "\n" + cot_line(12345, 67890, 5) + "\n")
    code, out, err = run_cli(main, ["data", "--check", str(mixed)])
    assert code == 2 and not out and f"{mixed}:2 field 'input'" in err and "5x5" in err, err
    crlf = tmp_path / "crlf.txt"
    crlf.write_bytes((cot_line(12, 34, 2) + "\r\n" + cot_line(56, 78, 2) + "\r\n").encode())
    code, out, _ = run_cli(main, ["data", "--check", str(crlf), "--json"])
    assert code == 1 and json.loads(out)["first_difference"] == {
        "line": 1,
        "reason": "CRLF line ending (the rule writes LF)",
    }
    code, out, _ = run_cli(main, ["data", "--check", str(crlf)])
    assert code == 1 and "DIFFERS from the rule at line 1: CRLF" in out
    unterminated = tmp_path / "unterminated.txt"
    unterminated.write_text(cot_line(12, 34, 2) + "\n" + cot_line(56, 78, 2))
    code, out, _ = run_cli(main, ["data", "--check", str(unterminated)])
    assert code == 1 and "at line 2: no newline at the end" in out


def test_a_diverging_cli_run_exits_2_and_keeps_its_last_good_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mult_probe.train as train_module

    real_losses, calls = train_module.losses, []

    def nan_from_step_three(*args: Any, **kwargs: Any) -> Any:
        total, parts = real_losses(*args, **kwargs)
        calls.append(1)
        return (total * float("nan") if len(calls) >= 3 else total), parts

    monkeypatch.setattr(train_module, "losses", nan_from_step_three)
    run = tmp_path / "run"
    argv = ["train", *SMALL_RUN, "--steps", "4", "--checkpoint-every", "2", "--run-dir", str(run)]
    code, out, err = run_cli(main, argv)
    assert code == 2 and not out and len(err.strip().splitlines()) == 1, err
    assert "loss became nan at step 3" in err and "ckpt-000000002.pt (step 2) is kept" in err, err
    assert sorted(p.name for p in run.glob("ckpt-*.pt")) == ["ckpt-000000002.pt"]


def test_log_every_prints_loss_and_throughput_lines(tmp_path: Path) -> None:
    """Issue 15.7: one stderr line per N steps (and at the end), with loss and throughput; -q silences them."""
    argv = ["train", "--k", "2", "--steps", "5", "--batch-size", "4", "--eval-size", "4", "--log-every", "2"]
    code, out, err = run_cli(main, argv)
    lines = [line for line in err.splitlines() if line.startswith("step ")]
    assert code == 0 and "exact match" in out, err
    assert [line.split()[1] for line in lines] == ["2/5", "4/5", "5/5"], err
    assert all(re.search(r"loss \d+\.\d{4} .*steps/s [\d,]+ tokens/s$", line) for line in lines), err
    assert "sft 2x2:" not in err  # off a terminal the step lines replace the timed bar lines
    code, out, err = run_cli(main, [*argv, "-q"])
    assert code == 0 and err == "", err


def test_files_are_written_with_the_users_umask(tmp_path: Path) -> None:
    run = tmp_path / "run"
    old = os.umask(0o027)
    try:
        _train_tiny(run, "--dynamics-every", "1")
        data = tmp_path / "lines.txt"
        assert run_cli(main, ["data", "--k", "2", "--n", "3", "--out", str(data)]).code == 0
    finally:
        os.umask(old)
    for path in [*run.glob("ckpt-*.pt"), run / "dynamics.csv", data]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o640, path  # 0666 & ~027, not a private 0600


def test_json_into_a_closed_pipe_exits_141_without_a_traceback(tmp_path: Path) -> None:
    """`mult-probe ... --json | head`: the reader is gone before the write; a quiet exit 141 (128 + SIGPIPE)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "mult_probe.cli",
                "data",
                "--json",
                "--check",
                str(FIXTURES / "deng_4x4_valid_sample.txt"),
            ],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)
    assert proc.returncode == 141 and "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr


def test_icot_training_reports_progress_off_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """An ICoT run off a terminal (a 4-minute one once printed nothing): timed lines, or one per --log-every N."""
    import tqdm.std

    argv = ["train", "--method", "icot", "--k", "2", "--steps", "4", "--batch-size", "4", "--eval-size", "4"]
    argv += ["--steps-per-epoch", "2"]
    monkeypatch.setenv("REPRO_PROGRESS_INTERVAL", "0.5")
    monkeypatch.setattr(tqdm.std, "time", _Clock(step=1.0))
    code, _, err = run_cli(main, argv)
    timed = [line for line in err.splitlines() if line.startswith("icot 2x2:")]
    assert code == 0 and timed and re.search(r"step/s|s/step", timed[-1]) and "loss=" in timed[-1], err
    code, _, err = run_cli(main, [*argv, "--log-every", "2"])
    lines = [line for line in err.splitlines() if line.startswith("step ")]
    assert code == 0 and len(lines) == 2 and all("cot_removed" in line and "steps/s" in line for line in lines), err
