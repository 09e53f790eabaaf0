"""Issue #13: every option of every `bt2-compat` subcommand refuses bad values and files before any work.

The valid cases are tiny (one epoch, 8-unit MLPs on digits; model files with init weights, never trained), and the
harness only runs mutated cases, each of which must be refused at parse time or while the inputs are checked.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bt2_compat.cli import build_parser, main
from repro_core.testing import check_cli_rejects_bad_input, run_cli

pytest.importorskip("sklearn", reason="the digits data ships with scikit-learn")
pytest.importorskip("hypothesis", reason="the bad-input harness draws values with hypothesis")


def _model_file(path: Path, meta: dict[str, object], **arch: object) -> Path:
    """A digits model file with init weights (no training): a valid input for train-new and evaluate."""
    from bt2_compat.data import load_dataset
    from bt2_compat.io import save_model
    from bt2_compat.models import ModelConfig, build_model

    config = ModelConfig(**{"hidden": (8,), **arch})  # type: ignore[arg-type]
    return save_model(path, build_model(config), config, meta, dataset=load_dataset("digits"))


def _valid_cases(tmp_path: Path) -> dict[str, list[str]]:
    old = _model_file(tmp_path / "old.pt", {"role": "old", "method": "independent", "old_classes": 5})
    ind = _model_file(tmp_path / "ind.pt", {"role": "new", "method": "independent"})
    runtime = ["--threads", "1", "--device", "cpu"]
    tiny = ["--epochs", "1", *runtime]
    training = [*tiny, "--seed", "0", "--batch-size", "64", "--lr", "0.001", "--weight-decay", "0"]
    training += ["--warmup-epochs", "0", "--crop-padding", "4", "--data-seed", "0", "--hidden", "8"]
    return {
        "train-old": ["--out", str(tmp_path / "out-old.pt"), "--old-classes", "5", *training],
        "train-new": [
            "--method",
            "bt2",
            "--old",
            str(old),
            "--new-prime",
            str(ind),
            "--out",
            str(tmp_path / "out-bt2.pt"),
            "--embedding-dim",
            "32",
            "--extra-dims",
            "8",
            "--C",
            "2",
            "--alpha",
            "1",
            "--l2-weight",
            "10",
            "--influence-scale",
            "16",
            "--schedule",
            "cosine",
            "--backbone",
            "mlp",
            *training,
        ],
        "evaluate": [
            "--query",
            str(ind),
            "--gallery",
            str(old),
            "--metric",
            "cosine",
            "--ties",
            "pessimistic",
            "--data-seed",
            "0",
            *runtime,
        ],
        "train": ["--seeds", "0", "--old-classes", "5", "--methods", "independent", "--preset", "digits", *tiny],
        "series": [
            "--classes",
            "3",
            "6",
            "--method",
            "l2",
            "--seed",
            "0",
            "--batch-size",
            "64",
            "--metric",
            "cosine",
            "--preset",
            "mlp",
            *tiny,
        ],
        "reproduce": ["--out", str(tmp_path / "report"), "--seed", "0"],
    }


def test_every_subcommand_refuses_bad_input(tmp_path: Path) -> None:
    cases = _valid_cases(tmp_path)
    counts = check_cli_rejects_bad_input(build_parser(), main, cases, tmp_path, max_examples=60)
    print(f"bad-input cases per subcommand: {counts}")
    assert set(counts) == set(cases)
    assert all(counts[command] > 0 for command in cases), counts
    # the cases really are valid, so each refusal above was caused by the bad value, not by the case itself
    # (`reproduce` is run by test_cli's check_package_cli, with a shortened experiment)
    for command, argv in cases.items():
        if command != "reproduce":
            result = run_cli(main, [command, *argv, "--json", "-q"])
            assert result.code == 0, (command, result.stderr)
            assert json.loads(result.stdout) and not result.stderr, (command, result.stderr)
