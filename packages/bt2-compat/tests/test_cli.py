"""CLI and reproduction conventions (repro_core.testing), the quick reproduction's claims, and the subcommands."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

import bt2_compat
from bt2_compat.cli import main
from bt2_compat.io import load_model
from bt2_compat.reproduction import quick
from repro_core.report import Verdict
from repro_core.testing import check_package_cli, check_reproduction

pytest.importorskip("sklearn", reason="the digits data ships with scikit-learn")


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def test_cli_conventions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The conventions only: a 2-epoch experiment stands in for the 60-epoch one (the claims are tested below)."""
    from dataclasses import replace

    from bt2_compat import reproduction
    from bt2_compat.experiment import ExperimentConfig

    def short(seed: int) -> ExperimentConfig:
        config = ExperimentConfig.digits(seed=seed)
        return replace(config, train=replace(config.train, epochs=2))

    monkeypatch.setattr(reproduction, "_experiment_config", short)
    check_package_cli("bt2-compat", main, tmp_path)


def test_quick_reproduction_measures_the_claims(tmp_path: Path) -> None:
    results = check_reproduction("bt2-compat", quick, tmp_path)
    assert all(r.verdict is not Verdict.PENDING for r in results)
    by_claim = {r.claim.split(" (")[0]: r for r in results}
    for claim in (
        "bt2: compatibility criterion M(bt2/old) > M(old/old) on mAP",
        "bt2: compatibility criterion M(bt2/old) > M(old/old) on top-1",
        "independent: compatibility criterion M(independent/old) > M(old/old) on mAP",
    ):
        assert by_claim[claim].verdict is Verdict.REPRODUCED, by_claim[claim]
    keeps = next(r for r in results if r.claim.startswith("BT^2 keeps"))
    assert keeps.verdict is Verdict.REPRODUCED, keeps
    assert bt2_compat.PAPER.startswith("arXiv:")


def test_train_and_evaluate_subcommands(tmp_path: Path) -> None:
    quick_opts = ["--epochs", "2", "--json", "-q"]
    old, ind, bt2 = tmp_path / "old.pt", tmp_path / "ind.pt", tmp_path / "bt2.pt"
    code, out, err = _run(["train-old", "--out", str(old), "--hidden", "32", *quick_opts])
    assert code == 0, err
    assert json.loads(out)["old_classes"] == 5
    code, _, err = _run(["train-new", "--method", "independent", "--out", str(ind), "--hidden", "32", *quick_opts])
    assert code == 0, err
    code, out, err = _run(
        [
            "train-new",
            "--method",
            "bt2",
            "--old",
            str(old),
            "--new-prime",
            str(ind),
            "--out",
            str(bt2),
            "--hidden",
            "32",
            "--run-dir",
            str(tmp_path / "run"),
            *quick_opts,
        ]
    )
    assert code == 0, err
    model, config, meta = load_model(bt2)
    assert config.kind == "bt2" and meta["method"] == "bt2" and model.embedding_dim == 40
    code, out, err = _run(["evaluate", "--query", str(bt2), "--gallery", str(old), "--json"])
    assert code == 0, err
    result = json.loads(out)
    assert result["dims"] == {"query": 40, "gallery": 32}
    assert set(result["cells"]) == {"gallery/gallery", "query/gallery", "query/query"}
    assert set(result["criterion"]) == {"top1", "top5", "mAP"}
    code, _, err = _run(["evaluate", "--query", str(bt2), "--gallery", str(old)])
    assert code == 0 and "criterion" in err


def test_bad_input_is_one_line_exit_2(tmp_path: Path) -> None:
    code, _, err = _run(["evaluate", "--query", str(tmp_path / "missing.pt"), "--gallery", "x.pt"])
    assert code == 2 and "Traceback" not in err and "not found" in err
    code, _, err = _run(["train-new", "--method", "bt2", "--out", str(tmp_path / "m.pt"), "--epochs", "1"])
    assert code == 2 and "--old" in err
    not_a_model = tmp_path / "bad.pt"
    not_a_model.write_bytes(b"not a checkpoint")
    code, _, err = _run(["evaluate", "--query", str(not_a_model), "--gallery", str(not_a_model)])
    assert code == 2 and "Traceback" not in err
    code, _, err = _run(["train", "--data", "cifar", "--epochs", "1"])
    assert code == 2 and "data" in err
