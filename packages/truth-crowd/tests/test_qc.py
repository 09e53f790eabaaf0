"""Quality control: on simulated data each check flags exactly the planted workers, with reasons; user-defined
checks compose; on the released data the QC summary matches what the release is (accepted HITs only)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from truth_crowd.io import CrowdData, load_ipm2021
from truth_crowd.qc import (
    CompletenessCheck,
    CustomCheck,
    GoldCheck,
    TimeCheck,
    TriesCheck,
    UrlDomainCheck,
    run_qc,
)
from truth_crowd.simulate import simulate_crowd


@pytest.fixture(scope="module")
def planted() -> tuple[CrowdData, pd.DataFrame]:
    sim = simulate_crowd(n_gold_failers=4, n_too_fast=3, n_missing=2, seed=7)
    return sim.data, sim.workers


def test_each_check_flags_exactly_the_planted_workers(planted: tuple[CrowdData, pd.DataFrame]) -> None:
    data, truth = planted
    report = run_qc(data)
    failed = report.failures.groupby("check")["worker_id"].apply(set).to_dict()
    assert failed["gold"] == set(truth.index[truth["planted_gold_fail"]])
    assert failed["time"] == set(truth.index[truth["planted_too_fast"]])
    assert failed["completeness"] == set(truth.index[truth["planted_missing"]])
    assert "tries" not in failed and "url_domain" not in failed
    assert set(report.failed_workers) == set(
        truth.index[truth[["planted_gold_fail", "planted_too_fast", "planted_missing"]].any(axis=1)]
    )
    reasons = report.failures.set_index("check")["reason"]
    assert reasons["gold"].str.contains("LOW = .* not < HIGH", regex=True).all()
    assert reasons["time"].str.contains("under 2s on").all()
    assert reasons["completeness"].str.startswith("missing ").all()
    summary = report.summary.set_index("check")
    assert summary.loc["gold", "n_failed"] == 4 and summary.loc["completeness", "n_failed"] == 2
    assert report.judgment_mask.sum() == len(data.judgments) - 9 * 11


def test_check_options_and_custom_checks(planted: tuple[CrowdData, pd.DataFrame]) -> None:
    data, truth = planted
    # A ridiculous threshold fails everyone; ties pass a non-strict gold check.
    assert TimeCheck(min_seconds=10_000)(data).passed.sum() == 0
    assert GoldCheck(strict=False)(data).passed.sum() >= GoldCheck()(data).passed.sum()
    assert CompletenessCheck(items=["overall_truthfulness"])(data).passed.all()
    assert TriesCheck(max_tries=1)(data).passed.sum() < len(data.workers)
    assert UrlDomainCheck(blocked=("wikipedia",))(data).passed.sum() < len(data.judgments)
    straight = CustomCheck(
        "straight_lining",
        lambda d: d.judgments[["correctness", "neutrality", "precision"]].nunique(axis=1) > 1,
        reason="same value on three dimensions",
    )
    report = run_qc(data, [GoldCheck(), straight])
    assert set(report.summary["check"]) == {"gold", "straight_lining"}
    lines = report.failures[report.failures["check"] == "straight_lining"]
    assert (lines["reason"] == "same value on three dimensions").all() and lines["statement_id"].notna().all()
    constant = set(truth.index[truth["kind"] == "constant"])
    assert constant <= set(lines["worker_id"])
    with pytest.raises(ValueError, match="min_seconds"):
        TimeCheck(min_seconds=-1)
    with pytest.raises(TypeError, match="Series"):
        CustomCheck("bad", lambda d: [True])(data)  # type: ignore[arg-type,return-value]


def test_released_data_passes_crowd_frame_checks(shared_data: Path) -> None:
    path = shared_data / "truth-crowd" / "IPM2021" / "multidimensional.csv"
    if not path.is_file():
        pytest.skip(f"IPM2021 file not found at {path}")
    report = run_qc(load_ipm2021(path))
    summary = report.summary.set_index("check")
    # Only accepted HITs were released: every worker passes gold, time, completeness and tries.
    assert (summary.loc[["completeness", "gold", "time", "tries"], "n_failed"] == 0).all()
    # One evidence URL points to PolitiFact despite the search-engine filter.
    assert summary.loc["url_domain", "n_failed"] == 1
