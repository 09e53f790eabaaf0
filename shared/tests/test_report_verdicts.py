"""The report reads true (issue #14): the *needs data* verdict, the legend and package table that count it, and the
summary chart's differences near zero and whole labels."""

from __future__ import annotations

from pathlib import Path

import pytest

from repro_core import umbrella
from repro_core.report import (
    ClaimResult,
    ReproductionOutcome,
    Verdict,
    _claim_label,
    difference_from_paper,
    markdown_table,
    plot_paper_vs_ours,
    write_json,
)

HOW = "set REPRO_SHARED_DATA to the folder holding demo/data.csv"


def test_needs_data_is_its_own_verdict_rendered_needs_data() -> None:
    row = ClaimResult.needs_data("rows of data.csv", metric="count", paper_value=2200, how_to_get=HOW)
    assert row.verdict is Verdict.NEEDS_DATA and row.verdict is not Verdict.PENDING
    assert row.note == HOW and row.our_value is None
    assert "| rows of data.csv | count | 2200 | — | — | needs data | " + HOW + " |" in markdown_table(
        [row], with_package=False
    )
    noted = ClaimResult.needs_data("c", how_to_get=HOW, note="not shipped (licence)")
    assert noted.note == f"not shipped (licence); {HOW}"
    assert ClaimResult("c", "m", verdict="needs data").verdict is Verdict.NEEDS_DATA  # JSON round trip
    with pytest.raises(ValueError, match="how_to_get"):
        ClaimResult.needs_data("c", how_to_get=" ")


def test_legend_defines_every_verdict_and_pending_is_not_missing_data() -> None:
    legend = Verdict.legend()
    assert all(f"*{v.value}*" in legend for v in Verdict)
    assert "*needs data* (implemented, but its data is not on this machine: the note says how to get it)" in legend
    assert "data" not in Verdict.PENDING.meaning


def test_report_counts_needs_data_per_package(tmp_path: Path) -> None:
    rows = [
        ClaimResult("measured", "m", our_value=1.0),
        ClaimResult.needs_data("a", how_to_get=HOW),
        ClaimResult.needs_data("b", how_to_get=HOW),
        ClaimResult.pending("later"),
    ]
    outcome = ReproductionOutcome("demo", "1.0", [r.with_package("demo") for r in rows], seconds=1.0)
    index = umbrella.write_report([outcome], tmp_path, seed=0).read_text()
    assert Verdict.legend() in index.replace("\n", " ")
    lines = index.splitlines()
    header = next(line for line in lines if line.startswith("| package | version |"))
    row = next(line for line in lines if line.startswith("| demo |"))
    cells = dict(zip(header.strip("|").split(" | "), row.strip("|").split(" | "), strict=True))
    cells = {k.strip(): v.strip() for k, v in cells.items()}
    assert cells["needs data"] == "2" and cells["pending"] == "1" and cells["measured"] == "1"
    assert cells["claims"] == "4"


def test_difference_from_paper_reads_right_near_zero() -> None:
    # exact match 0 against the paper's 0.01 is 0.01 below, not -100%
    assert difference_from_paper(0.01, 0.0) == pytest.approx(-0.01)
    assert difference_from_paper(0.0, 0.0) == 0.0
    assert difference_from_paper(0.0, 0.02) == pytest.approx(0.02)  # no division by a zero paper value
    assert difference_from_paper(0.62, 0.60) == pytest.approx(-0.02)  # rates: absolute
    assert difference_from_paper(2200, 2178) == pytest.approx(-0.01)  # counts: relative
    assert difference_from_paper(-500, -550) == pytest.approx(-0.1)
    # the two regimes meet at |paper| = 1
    assert difference_from_paper(1.0, 1.5) == pytest.approx(0.5)
    assert difference_from_paper(1.0 - 1e-12, 1.5) == pytest.approx(0.5)


def test_chart_labels_keep_the_whole_claim(tmp_path: Path) -> None:
    claim = "Krippendorff's alpha (interval) of overall truthfulness, PolitiFact statements, canonical quality filter"
    row = ClaimResult(claim, "alpha", 0.01, 0.0, tolerance=0.05, package="truth-crowd")
    label = _claim_label(row)
    assert " ".join(label.split()) == f"truth-crowd: {claim}"
    assert all(len(line) <= 70 for line in label.splitlines()) and label.count("\n") >= 1
    figure = plot_paper_vs_ours([row, ClaimResult("count", "n", 2200, 2178, tolerance=0)], tmp_path / "s.png")
    assert figure is not None and figure.stat().st_size > 1000


def test_needs_data_in_json(tmp_path: Path) -> None:
    import json

    data = json.loads(write_json([ClaimResult.needs_data("c", how_to_get=HOW)], tmp_path / "r.json").read_text())
    assert data[0]["verdict"] == "needs data" and data[0]["note"] == HOW
