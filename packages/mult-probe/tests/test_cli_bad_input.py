"""Every subcommand refuses generated bad arguments and files: exit 2, one line, no traceback, nothing written.

The valid cases are tiny (a 2-step 2x2 run, a few pairs) and each one is run once first, so every refusal the
harness sees comes from the one bad value it put in.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mult_probe import reproduction
from mult_probe.cli import build_parser, main
from mult_probe.data import cot_line
from mult_probe.reproduction import QuickBudget
from repro_core.testing import check_cli_rejects_bad_input, run_cli

pytest.importorskip("hypothesis")

#: 2x2 operand pairs: held out (`valid.txt`, 8 lines: enough for the probes' train/validation split) and excluded.
VALID_PAIRS = [(12, 34), (56, 78), (90, 11), (23, 45), (67, 89), (10, 99), (31, 42), (75, 86)]
EXCLUDED_PAIRS = [(13, 57), (24, 68)]

#: Two steps of a 2x2 model: the valid `train` case (and the run the other commands read).
TINY_RUN = ["--method", "sft", "--k", "2", "--steps", "2", "--batch-size", "8", "--eval-size", "5"]

CASES: dict[str, list[str]] = {
    "data": ["--k", "2", "--n", "5", "--exclude", "excluded.txt", "--check", "valid.txt"],
    "train": [
        *TINY_RUN,
        *("--valid", "valid.txt", "--exclude", "excluded.txt", "--run-dir", "run"),
        *("--dynamics-every", "1", "--log-every", "1"),
    ],
    "eval": ["--run-dir", "run", "--data", "valid.txt", "--n", "5"],
    "probe": ["--checkpoint", "run/ckpt-000000002.pt", "--data", "valid.txt", "--n", "8"],
    "analyze": ["dag", "--checkpoint", "run", "--data", "valid.txt", "--n", "5"],
    "dynamics plot": ["run", "--compare", "authors.csv", "--threshold", "0.1"],
    "reproduce": ["--out", "report"],
}

#: What the commands legitimately accept, with the reason.
SKIP = (
    "train --smoothing-lambda:inf",  # Deng et al.'s spelling of "no removal smoothing" (documented in --help)
)


def _write_deng(path: Path, pairs: list[tuple[int, int]]) -> None:
    path.write_text("".join(cot_line(a, b, 2) + "\n" for a, b in pairs))


def test_every_subcommand_rejects_bad_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(reproduction, "QUICK", QuickBudget(k=2, steps=2, batch_size=8, eval_size=10, probe_size=20))
    monkeypatch.setenv("REPRO_DEVICE", "cpu")
    monkeypatch.chdir(tmp_path)
    _write_deng(tmp_path / "valid.txt", VALID_PAIRS)
    _write_deng(tmp_path / "excluded.txt", EXCLUDED_PAIRS)
    shutil.copy(Path(__file__).parent / "fixtures" / "authors_layout_grad_probe_log.csv", tmp_path / "authors.csv")
    for command in ("train", "data", "eval", "probe", "analyze", "dynamics plot"):  # train first: others read it
        result = run_cli(main, [*command.split(), *CASES[command], "-q"])
        assert result.code == 0, (command, result.stderr)

    counts = check_cli_rejects_bad_input(build_parser(), main, CASES, tmp_path, skip=SKIP, max_examples=40)

    print(f"bad-input cases per subcommand: {counts}")
    assert set(counts) == set(CASES) and all(counts[command] > 0 for command in CASES), counts
