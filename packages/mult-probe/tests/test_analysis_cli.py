"""`mult-probe probe` and `mult-probe analyze` on a few-step checkpoint: JSON, figures, exit code 2 on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mult_probe.cli import main
from repro_core.optional import has_module
from repro_core.testing import run_cli

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("analysis") / "run"
    argv = ["train", "--k", "2", "--steps", "2", "--batch-size", "8", "--eval-size", "10", "--run-dir", str(run)]
    assert main([*argv, "-q"]) == 0
    return run


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_probe_command(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "figs"
    result = _json(capsys, ["probe", "--checkpoint", str(run_dir), "--n", "60", "--out", str(out), "--json"])
    assert result["step"] == 2 and result["k"] == 2 and result["n"] == 60
    probe = result["analyses"]["probe"]
    assert len(probe["hooks"]) == 4 and all(len(v) == 4 for v in probe["mae"].values())
    assert json.loads((out / "probe.json").read_text())["n_val"] == 12
    if has_module("matplotlib"):
        assert (out / "probe.png").is_file()
    one = _json(
        capsys, ["probe", "--checkpoint", str(run_dir), "--n", "30", "--hooks", "blocks.1.hook_resid_mid", "--json"]
    )
    assert one["analyses"]["probe"]["hooks"] == ["blocks.1.hook_resid_mid"]


def test_analyze_all_writes_figures(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    checkpoint = next(run_dir.glob("ckpt-*.pt"))  # a checkpoint file works as well as the run directory
    out = tmp_path / "figs"
    result = _json(
        capsys, ["analyze", "all", "--checkpoint", str(checkpoint), "--n", "40", "--out", str(out), "--json"]
    )
    names = ["attrib", "dla", "probe", "dag", "fourier", "prism", "minkowski"]
    assert list(result["analyses"]) == names
    assert len(result["analyses"]["attrib"]["delta"]) == 4 and result["analyses"]["dla"]["max_abs_error"] < 1e-3
    assert all((out / f"{name}.json").is_file() for name in names)
    if has_module("matplotlib"):
        assert sorted(p.name for p in out.glob("*.png")) == sorted(f"{name}.png" for name in names)
    assert main(["analyze", "fourier", "prism", "--checkpoint", str(run_dir), "--n", "20"]) == 0
    assert "fourier median R^2" in capsys.readouterr().out  # results on stdout, like --json


@pytest.mark.parametrize(
    "argv",
    [
        ["analyze", "dag", "--checkpoint", "/nonexistent/run"],
        ["probe", "--checkpoint", "/nonexistent/ckpt-1.pt"],
        ["analyze", "dag", "--checkpoint", "EMPTY"],
        ["analyze", "dag", "--checkpoint", "GARBAGE"],
        ["probe", "--checkpoint", "EMPTY_FILE"],
        ["analyze", "dag", "--checkpoint", "RUN", "--data", str(FIXTURES / "deng_4x4_valid_sample.txt")],
        ["analyze", "dag", "--checkpoint", "RUN", "--n", "2"],
        ["probe", "--checkpoint", "RUN", "--hooks", "blocks.9.hook_resid_mid", "--n", "20"],
    ],
)
def test_bad_checkpoint_or_input_exits_2(argv: list[str], run_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    (tmp_path / "empty.pt").write_bytes(b"")  # torch's error has no message: this used to be a traceback
    paths = {
        "EMPTY": tmp_path / "empty",
        "GARBAGE": tmp_path / "garbage.pt",
        "EMPTY_FILE": tmp_path / "empty.pt",
        "RUN": run_dir,
    }
    code, out, err = run_cli(main, [str(paths.get(a, a)) for a in argv])
    assert code == 2 and not out and len(err.splitlines()) == 1 and "error:" in err, err


def test_unknown_analysis_is_a_usage_error() -> None:
    code, _, err = run_cli(main, ["analyze", "nonsense", "--checkpoint", "x"])
    assert code == 2 and err.startswith("mult-probe analyze: error:"), err
