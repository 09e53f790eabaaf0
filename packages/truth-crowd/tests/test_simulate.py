"""The simulators: seeded, the IPM design by construction, and agreement that tracks worker noise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from truth_crowd.agreement import krippendorff_alpha
from truth_crowd.describe import design_counts
from truth_crowd.schema import validate_judgments
from truth_crowd.simulate import simulate_answers, simulate_crowd


def test_simulated_crowd_follows_the_ipm_design() -> None:
    sim = simulate_crowd(seed=0)
    validate_judgments(sim.data.judgments)
    counts = design_counts(sim.data)
    assert counts["rows"] == 2200 and counts["workers"] == 200 and counts["items_per_hit"] == 11
    assert counts["statements_by_dataset"] == {"politifact": 120, "abc": 60}
    assert counts["canonical_judgments_per_statement"] == {10: 180}
    assert counts["abc_block_first"] + counts["abc_block_last"] == 200
    j = sim.data.judgments
    per_hit = j[~j["is_gold"]].merge(sim.data.statements[["gt_value"]], left_on="statement_id", right_index=True)
    # Each HIT: one statement per level of each dataset.
    assert (per_hit.groupby(["worker_id", "dataset", "gt_value"], observed=True).size() == 1).all()
    # Times fall with position (learning effect).
    mean_time = j.groupby("position")["time_elapsed_s"].mean()
    assert mean_time.iloc[0] > mean_time.iloc[-1]


def test_simulators_are_seeded() -> None:
    a, b = simulate_crowd(seed=3), simulate_crowd(seed=3)
    pd.testing.assert_frame_equal(a.data.judgments, b.data.judgments)
    assert not simulate_crowd(seed=4).data.judgments.equals(a.data.judgments)
    x, y = simulate_answers(seed=1), simulate_answers(seed=1)
    pd.testing.assert_frame_equal(x.answers, y.answers)


def _ot_alpha(mix: dict[str, float]) -> float:
    sim = simulate_crowd(mix=mix, seed=0)
    real = sim.data.real().judgments
    matrix = real.pivot(index="worker_id", columns="statement_id", values="overall_truthfulness").astype(float)
    return krippendorff_alpha(matrix.to_numpy(), level="interval")


def test_alpha_tracks_worker_noise() -> None:
    noise_only = _ot_alpha({"uniform": 1.0})
    good_only = _ot_alpha({"good": 1.0})
    mixed = _ot_alpha({"good": 0.6, "noisy": 0.25, "uniform": 0.1, "constant": 0.05})
    assert abs(noise_only) < 0.05
    assert good_only > 0.6 and noise_only < mixed < good_only


def test_simulated_answers_truth() -> None:
    sim = simulate_answers(n_tasks=50, n_workers=10, n_labels=4, answers_per_task=3, seed=2)
    assert len(sim.answers) == 150 and sim.answers.groupby("task")["worker"].nunique().eq(3).all()
    assert np.allclose(sim.confusion.sum(axis=2), 1.0) and sim.answers["label"].between(0, 3).all()
    with pytest.raises(ValueError, match="answers_per_task"):
        simulate_answers(n_workers=2, answers_per_task=3)
    with pytest.raises(ValueError, match="mix"):
        simulate_answers(mix={"robots": 1.0})
