"""Aggregation: mean/median, majority vote with each tie rule, Dawid-Skene against the simulator's truth (and
against crowd-kit where it is installed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from truth_crowd.aggregation import DawidSkene, encode_answers, majority_vote, mean_aggregate, median_aggregate
from truth_crowd.simulate import simulate_answers


def _answers(rows: list[tuple[str, str, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["worker", "task", "label"])


def test_mean_and_median() -> None:
    answers = _answers([("a", "t", 1), ("b", "t", 2), ("c", "u", -2), ("d", "u", 0), ("e", "u", 2), ("f", "u", 1)])
    assert mean_aggregate(answers).to_dict() == {"t": 1.5, "u": 0.25}
    assert median_aggregate(answers).to_dict() == {"t": 1.5, "u": 0.5}
    assert median_aggregate(answers, even="lower").to_dict() == {"t": 1.0, "u": 0.0}
    assert median_aggregate(answers, even="upper").to_dict() == {"t": 2.0, "u": 1.0}
    with pytest.raises(ValueError, match="numeric"):
        mean_aggregate(_answers([("a", "t", 1)]).assign(label=["x"]))


def test_majority_vote_tie_rules() -> None:
    # Task t: 2 votes each for 2 and -1 (2 seen first); task u: 1 vote each for 1, 0, -2 (in that order).
    answers = _answers(
        [
            ("a", "t", 2),
            ("b", "t", -1),
            ("c", "t", 2),
            ("d", "t", -1),
            ("e", "u", 1),
            ("f", "u", 0),
            ("g", "u", -2),
            ("h", "v", 0),
            ("i", "v", 0),
            ("j", "v", 1),
        ]
    )
    assert majority_vote(answers, tie_break="lowest").to_dict() == {"t": -1, "u": -2, "v": 0}
    assert majority_vote(answers, tie_break="highest").to_dict() == {"t": 2, "u": 1, "v": 0}
    assert majority_vote(answers, tie_break="median").to_dict() == {"t": -1, "u": 0, "v": 0}
    # first_seen: the tied label appearing first in the whole table (crowd-kit): 2 before -1, 1 before 0 and -2.
    assert majority_vote(answers, tie_break="first_seen").to_dict() == {"t": 2, "u": 1, "v": 0}
    random = [majority_vote(answers, tie_break="random", seed=s)["u"] for s in range(20)]
    assert set(random) == {1, 0, -2} and majority_vote(answers, tie_break="random", seed=3)["u"] == random[3]
    with pytest.raises(ValueError, match="tie_break"):
        majority_vote(answers, tie_break="coin")  # type: ignore[arg-type]


def test_encode_answers_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="missing"):
        encode_answers(pd.DataFrame({"worker": ["a"], "task": ["t"]}))
    with pytest.raises(ValueError, match="empty"):
        encode_answers(_answers([]))
    with pytest.raises(ValueError, match="missing"):
        encode_answers(_answers([("a", "t", 1)]).assign(label=[None]))
    with pytest.raises(ValueError, match="n_iter"):
        DawidSkene(n_iter=0)


def test_dawid_skene_beats_majority_vote_and_recovers_reliabilities() -> None:
    gains, correlations = [], []
    for seed in range(4):
        sim = simulate_answers(n_tasks=300, n_workers=40, n_labels=3, answers_per_task=5, seed=seed)
        model = DawidSkene().fit(sim.answers)
        ds = float((model.labels_.reindex(sim.truth.index) == sim.truth).mean())
        mv = float(
            (majority_vote(sim.answers, tie_break="random", seed=seed).reindex(sim.truth.index) == sim.truth).mean()
        )
        gains.append(ds - mv)
        skills = model.skills_.reindex(sim.worker_accuracy.index)
        correlations.append(float(np.corrcoef(skills, sim.worker_accuracy)[0, 1]))
        # Fitted attributes are consistent.
        assert np.allclose(model.probas_.sum(axis=1), 1.0) and model.priors_.sum() == pytest.approx(1.0)
        assert model.errors_.shape == (40 * 3, 3)
        assert np.allclose(model.errors_.groupby(level="worker").sum().to_numpy(), 1.0)
        assert all(b >= a - 1e-9 for a, b in zip(model.loglikelihoods_, model.loglikelihoods_[1:], strict=False))
    assert min(gains) > 0.02 and np.mean(gains) > 0.04, gains
    assert min(correlations) > 0.85, correlations


def test_dawid_skene_spammers_get_flat_confusion() -> None:
    sim = simulate_answers(n_tasks=400, n_workers=30, n_labels=3, answers_per_task=6, seed=11)
    model = DawidSkene().fit(sim.answers)
    spammers = sim.kind.index[sim.kind == "spammer"]
    reliable = sim.kind.index[sim.kind == "reliable"]
    assert model.skills_[spammers].max() < model.skills_[reliable].min()


def test_dawid_skene_string_labels_and_perfect_workers() -> None:
    answers = _answers(
        [(w, t, lab) for t, lab in (("t1", "yes"), ("t2", "no"), ("t3", "yes")) for w in ("a", "b", "c")]
    )
    assert DawidSkene().fit_predict(answers).to_dict() == {"t1": "yes", "t2": "no", "t3": "yes"}
    proba = DawidSkene().fit_predict_proba(answers)
    assert list(proba.columns) == ["no", "yes"] and proba.loc["t2", "no"] > 0.99


def test_agrees_with_crowdkit() -> None:
    aggregation = pytest.importorskip("crowdkit.aggregation", reason="optional validation extra: pip install crowd-kit")
    sim = simulate_answers(n_tasks=200, n_workers=30, n_labels=3, answers_per_task=5, seed=5)
    theirs = aggregation.DawidSkene(n_iter=100).fit_predict(sim.answers)
    ours = DawidSkene().fit_predict(sim.answers)
    assert (ours.reindex(theirs.index) == theirs).mean() >= 0.99
    mv = aggregation.MajorityVote().fit_predict(sim.answers)
    assert (majority_vote(sim.answers, tie_break="first_seen").reindex(mv.index) == mv).all()
