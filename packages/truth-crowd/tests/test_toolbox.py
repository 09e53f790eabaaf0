"""crowd-kit's toolbox (issue #12 point 5): gold-initialised Dawid-Skene, gold majority vote, worker metrics and the
Shrout-Fleiss ICCs; checked against crowd-kit 1.4.2 where it is installed and against published values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from truth_crowd.aggregation import DawidSkene, GoldMajorityVote, majority_vote
from truth_crowd.icc import ICC_FORMS, icc, icc_from_answers
from truth_crowd.simulate import simulate_answers
from truth_crowd.worker_metrics import accuracy_on_aggregates, consistency, uncertainty


@pytest.fixture(scope="module")
def sim():  # type: ignore[no-untyped-def]
    return simulate_answers(n_tasks=200, n_workers=30, n_labels=3, answers_per_task=5, seed=5)


def _crowdkit():  # type: ignore[no-untyped-def]
    return pytest.importorskip("crowdkit", reason="optional validation extra: pip install crowd-kit")


def _gold(sim, share: float = 0.25) -> pd.Series:  # type: ignore[no-untyped-def]
    tasks = sim.truth.index[: int(len(sim.truth) * share)]
    return sim.truth.loc[tasks]


def test_gold_pins_tasks_and_helps(sim) -> None:  # type: ignore[no-untyped-def]
    gold = _gold(sim)
    model = DawidSkene().fit(sim.answers, true_labels=gold)
    assert (model.labels_.loc[gold.index] == gold).all()
    assert np.allclose(model.probas_.loc[gold.index].max(axis=1), 1.0)
    rest = sim.truth.index.difference(gold.index)
    plain = DawidSkene().fit_predict(sim.answers)
    acc = (model.labels_.loc[rest] == sim.truth.loc[rest]).mean()
    assert acc >= (plain.loc[rest] == sim.truth.loc[rest]).mean() - 0.01
    with pytest.raises(ValueError, match="no worker gave"):
        DawidSkene().fit(sim.answers, true_labels=pd.Series({sim.truth.index[0]: 99}))


def test_forced_iterations_with_tol_zero(sim) -> None:  # type: ignore[no-untyped-def]
    assert DawidSkene(n_iter=20, tol=0).fit(sim.answers).n_iter_ == 20


def test_dawid_skene_gold_and_initial_error_agree_with_crowdkit(sim) -> None:  # type: ignore[no-untyped-def]
    crowdkit = _crowdkit()
    from crowdkit.aggregation import DawidSkene as TheirDS

    gold = _gold(sim)
    ours = DawidSkene(n_iter=100).fit_predict(sim.answers, true_labels=gold)
    theirs = TheirDS(n_iter=100).fit_predict(sim.answers, true_labels=gold)
    assert (ours.reindex(theirs.index) == theirs).mean() >= 0.99
    # Prior error counts: 5 answers of history per worker, mostly right.
    labels = sorted(sim.answers["label"].unique())
    index = pd.MultiIndex.from_product([sorted(sim.answers["worker"].unique()), labels], names=["worker", "label"])
    history = pd.DataFrame(
        [[4.0 if observed == true else 0.5 for true in labels] for _, observed in index], index=index, columns=labels
    )
    for strategy in ("addition", "assign"):
        ours = DawidSkene(initial_error_strategy=strategy).fit_predict(sim.answers, initial_error=history)
        theirs = TheirDS(initial_error_strategy=strategy).fit_predict(sim.answers, initial_error=history)
        assert (ours.reindex(theirs.index) == theirs).mean() >= 0.99, strategy
    del crowdkit
    with pytest.raises(ValueError, match="initial_error_strategy"):
        DawidSkene().fit(sim.answers, initial_error=history)
    with pytest.raises(ValueError, match="every worker"):
        DawidSkene(initial_error_strategy="assign").fit(sim.answers, initial_error=history.iloc[3:])


def test_gold_majority_vote(sim) -> None:  # type: ignore[no-untyped-def]
    gold = _gold(sim, 0.5)
    model = GoldMajorityVote().fit(sim.answers, gold)
    on_gold = sim.answers[sim.answers["task"].isin(gold.index)]
    expected = (on_gold["label"].to_numpy() == gold.loc[on_gold["task"]].to_numpy()).astype(float)
    by_worker = pd.Series(expected).groupby(on_gold["worker"].to_numpy()).mean()
    pd.testing.assert_series_equal(model.skills_.sort_index(), by_worker.sort_index(), check_names=False)
    labels = model.predict(sim.answers)
    mv = majority_vote(sim.answers, tie_break="random")
    acc = (labels.reindex(sim.truth.index) == sim.truth).mean()
    assert acc > (mv.reindex(sim.truth.index) == sim.truth).mean()
    crowdkit = _crowdkit()
    from crowdkit.aggregation import GoldMajorityVote as TheirGMV
    from crowdkit.aggregation import MajorityVote

    # crowd-kit's predict() fails under scikit-learn >= 1.6 (its `check_is_fitted` needs `__sklearn_tags__`), so
    # its own two steps are run by hand: skills from fit(), then MajorityVote weighted by them (what predict does).
    fitted = TheirGMV().fit(sim.answers, gold)
    pd.testing.assert_series_equal(model.skills_.sort_index(), fitted.skills_.sort_index(), check_names=False)
    theirs = MajorityVote().fit(sim.answers, fitted.skills_).labels_
    assert (labels.reindex(theirs.index) == theirs).mean() >= 0.99
    del crowdkit


def test_gold_majority_vote_missing_skills() -> None:
    answers = pd.DataFrame(
        {"worker": ["a", "b", "c", "a", "b", "c"], "task": [1, 1, 1, 2, 2, 2], "label": [0, 0, 1, 1, 0, 1]}
    )
    gold = pd.Series({1: 0})
    answers = pd.concat([answers, pd.DataFrame({"worker": ["d"], "task": [2], "label": [0]})], ignore_index=True)
    with pytest.raises(ValueError, match="no gold answers"):
        GoldMajorityVote().fit_predict(answers, gold)
    assert GoldMajorityVote(on_missing_skill="ignore").fit_predict(answers, gold).to_dict() == {1: 0, 2: 0}
    assert GoldMajorityVote(on_missing_skill=0.0).fit(answers, gold).predict_proba(answers).loc[2, 0] == 0.5


def test_worker_metrics_agree_with_crowdkit(sim) -> None:  # type: ignore[no-untyped-def]
    _crowdkit()
    from crowdkit.aggregation import MajorityVote
    from crowdkit.metrics.data import consistency as their_consistency
    from crowdkit.metrics.data import uncertainty as their_uncertainty
    from crowdkit.metrics.workers import accuracy_on_aggregates as their_accuracy

    answers = sim.answers.iloc[:400]  # crowd-kit's metrics loop over rows in Python
    aggregates = MajorityVote().fit_predict(answers)
    assert accuracy_on_aggregates(answers, aggregates) == pytest.approx(
        their_accuracy(answers, aggregates=aggregates), abs=1e-12
    )
    ours = accuracy_on_aggregates(answers, aggregates, by="worker")
    theirs = their_accuracy(answers, aggregates=aggregates, by="worker")
    pd.testing.assert_series_equal(ours.sort_index(), theirs.sort_index(), check_names=False, atol=1e-12)
    skills = ours.clip(0.05, 0.95)
    assert consistency(answers, skills, aggregates) == pytest.approx(
        their_consistency(answers, skills, MajorityVote()), abs=1e-9
    )
    for by in ("task", "worker"):
        expected = their_uncertainty(answers, skills, compute_by=by, aggregate=False)
        got = uncertainty(answers, skills, compute_by=by, aggregate=False)
        pd.testing.assert_series_equal(got.sort_index(), expected.sort_index(), check_names=False, atol=1e-5)
    assert uncertainty(answers) == pytest.approx(their_uncertainty(answers), abs=1e-5)


def test_consistency_edge_cases() -> None:
    answers = pd.DataFrame({"worker": ["a", "b"], "task": ["t", "t"], "label": ["x", "y"]})
    # A perfect worker's answer makes every other label impossible.
    assert consistency(answers, pd.Series({"a": 1.0, "b": 0.5}), pd.Series({"t": "x"})) == pytest.approx(1.0)
    assert consistency(answers, pd.Series({"a": 1.0, "b": 1.0}), pd.Series({"t": "x"})) == 0.0  # contradiction
    assert uncertainty(answers) == pytest.approx(np.log(2))
    with pytest.raises(ValueError, match="no skill"):
        consistency(answers, pd.Series({"a": 0.5}), pd.Series({"t": "x"}))


def test_icc_shrout_fleiss_table_2() -> None:
    """Shrout & Fleiss (1979), Table 2 data (6 targets x 4 judges), Table 3 mean squares and Table 4 ICCs."""
    data = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]
    result = icc(data)
    assert (result.bms, result.wms, result.jms, result.ems) == pytest.approx((11.24, 6.26, 32.49, 1.02), abs=5e-3)
    published = {"ICC(1,1)": 0.17, "ICC(2,1)": 0.29, "ICC(3,1)": 0.71, "ICC(1,k)": 0.44, "ICC(2,k)": 0.62}
    published["ICC(3,k)"] = 0.91
    assert list(result.values) == list(ICC_FORMS)
    for form, value in published.items():
        assert result.values[form] == pytest.approx(value, abs=5e-3), form
    # Exact values from the mean squares (hand-computed: (11.2417 - 6.2639) / (11.2417 + 3 * 6.2639) = 0.16574).
    assert result.values["ICC(1,1)"] == pytest.approx(0.165742, abs=1e-6)
    assert result.values["ICC(3,k)"] == pytest.approx((11.241667 - 1.019444) / 11.241667, abs=1e-6)


def test_icc_from_answers_is_the_one_way_form() -> None:
    data = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]])
    rng = np.random.default_rng(0)
    rows = [(f"w{rng.integers(10**6)}", t, v) for t in range(6) for v in data[t]]
    rows.append(("lonely", 99, 3))  # a task with one rating is not of the modal count: left out
    result = icc_from_answers(pd.DataFrame(rows, columns=["worker", "task", "label"]))
    assert set(result.values) == {"ICC(1,1)", "ICC(1,k)"} and result.n_targets == 6
    assert result.values["ICC(1,1)"] == pytest.approx(icc(data).values["ICC(1,1)"], abs=1e-12)
    with pytest.raises(ValueError, match="complete"):
        icc([[1.0, np.nan], [2.0, 3.0]])
    with pytest.raises(ValueError, match="at least 2"):
        icc([[1.0, 2.0]])


def test_toolbox_is_exported_from_the_package() -> None:
    """Issue #12's public names are importable from `truth_crowd` itself, the same objects as in their modules."""
    import truth_crowd
    from truth_crowd import aggregation, agreement, icc, inference, schema, worker_metrics

    homes = {
        aggregation: ("GoldMajorityVote", "drop_duplicate_answers"),
        agreement: ("answers_value_counts", "value_counts_matrix", "fleiss_kappa_ci", "cohen_kappa_ci"),
        icc: ("ICC_FORMS", "IccResult", "icc_from_answers"),
        inference: ("KOS", "MMSR"),
        schema: ("NAMED_SCALES", "normalise_magnitudes"),
        worker_metrics: ("accuracy_on_aggregates", "consistency", "uncertainty"),
    }
    for module, names in homes.items():
        for name in names:
            assert name in truth_crowd.__all__, name
            assert getattr(truth_crowd, name) is getattr(module, name), name
    assert "load_sigir2020_crowd" in truth_crowd.__all__
    # `icc` (the function) stays in its module: re-exported, it would replace the `truth_crowd.icc` attribute.
    assert "icc" not in truth_crowd.__all__ and truth_crowd.icc is icc
