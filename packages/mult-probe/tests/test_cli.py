"""The mult-probe CLI (repro_core conventions, `data`, `train`, `eval`) and the quick reproduction's records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import mult_probe
from mult_probe import reproduction
from mult_probe.cli import main
from mult_probe.reproduction import QuickBudget, quick
from repro_core._optional import has_module
from repro_core.report import Verdict
from repro_core.testing import check_package_cli, check_reproduction

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
    assert "exact match" in capsys.readouterr().err


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
    ],
)
def test_bad_input_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "error:" in err


def test_bad_line_names_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("1 2 * 3 4|| #### 3 0 9 0\n1 2 * 3 4|| #### 3 0 9 1\n")
    assert main(["data", "--check", str(bad)]) == 2
    assert f"{bad}:2 field 'answer'" in capsys.readouterr().err
