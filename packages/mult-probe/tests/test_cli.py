"""The mult-probe CLI (repro_core conventions, `data`, `train`, `eval`) and the quick reproduction's records."""

from __future__ import annotations

import json
import math
from pathlib import Path

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
    assert check == {"path": str(FIXTURES / "deng_4x4_test_sample.txt"), "lines": 4, "byte_identical": True}
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
