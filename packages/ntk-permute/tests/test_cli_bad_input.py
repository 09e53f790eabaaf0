"""Every subcommand refuses generated bad arguments and files: exit 2, one line, no traceback, nothing written.

The valid cases are tiny (k = 2 or 3, two members of width 8, two steps) and each one but `reproduce` (run by
`test_cli_conventions`) is run once first, so every refusal the harness sees comes from the one bad value it put in;
every refusal must come before training starts.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ntk_permute.cli import build_parser, main
from ntk_permute.training import TrainConfig
from repro_core.testing import check_cli_rejects_bad_input, run_cli

pytest.importorskip("hypothesis")
pytest.importorskip("jax")

#: A tiny network: the options every training case shares.
TINY = ["--width", "8", "--steps", "2", "--member-chunk", "2", "--lr", "0.5"]

CASES: dict[str, list[str]] = {
    "analytic": ["--k", "4", "--m", "2", "--exhaustive", "--perms", "2", "--chunk-size", "8", "--t", "1", "--eps", "0"],
    "complexity": ["--k", "4", "--delta", "0.1", "--bound", "single", "--m", "2", "--w-std", "1", "--b-std", "0"],
    "train": ["--config", "config.json", "--k", "3", "--members", "2", *TINY, "--no-all-inputs", "--seed", "1"],
    "experiment": [
        "figure1",
        "--config",
        "config.json",
        "--k",
        "2",
        "--pool",
        "2",
        *TINY,
        "--num-tests",
        "4",
        "--level",
        "0.5",
        "--seed",
        "1",
    ],
    "reproduce": ["--out", "report"],
}


def test_every_subcommand_rejects_bad_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPRO_DEVICE", "cpu")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.json").write_text(TrainConfig.tiny(k=3, n_members=2, width=8).to_json() + "\n")
    for command in ("analytic", "complexity", "train", "experiment"):
        result = run_cli(main, [command, *CASES[command], "-q"])
        assert result.code == 0 and not result.stderr, (command, result.stderr)

    counts = check_cli_rejects_bad_input(build_parser(), main, CASES, tmp_path, max_examples=150)

    print(f"bad-input cases per subcommand: {counts}")
    assert set(counts) == set(CASES) and all(counts[command] > 0 for command in CASES), counts
