"""Ranking metrics: equality with scikit-learn (hypothesis), hand-computed examples, torch inputs, validation."""

from __future__ import annotations

import math
import subprocess
import sys
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from repro_core.metrics import average_precision, mrr, ndcg, one_hot_relevance, recall_at_k

sk_metrics = pytest.importorskip("sklearn.metrics")


@st.composite
def ranking_batches(draw: st.DrawFn, *, min_items: int = 2, tied: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(scores, relevance) `[n_queries, n_items]`; small integer scores give many ties."""
    n_queries = draw(st.integers(1, 5))
    n_items = draw(st.integers(min_items, 9))
    shape = (n_queries, n_items)
    use_ties = draw(st.booleans()) if tied is None else tied
    if use_ties:
        scores = draw(hnp.arrays(np.float64, shape, elements=st.integers(-2, 2).map(float)))
    else:
        scores = draw(hnp.arrays(np.float64, shape, elements=st.floats(-1e3, 1e3, allow_nan=False), unique=True))
    if draw(st.booleans()):
        relevance = draw(hnp.arrays(np.int64, shape, elements=st.integers(0, 3))).astype(np.float64)
    else:
        relevance = draw(hnp.arrays(np.float64, shape, elements=st.floats(0, 10, allow_nan=False)))
    return scores, relevance


K_VALUES = st.one_of(st.none(), st.integers(1, 10))


@settings(max_examples=200)
@given(batch=ranking_batches(), k=K_VALUES)
def test_ndcg_equals_sklearn_with_ties(batch: tuple[np.ndarray, np.ndarray], k: int | None) -> None:
    scores, relevance = batch
    expected = sk_metrics.ndcg_score(relevance, scores, k=k)
    assert math.isclose(ndcg(scores, relevance, k=k), expected, rel_tol=0, abs_tol=1e-9)
    per_query = ndcg(scores, relevance, k=k, reduce="none")
    assert per_query.shape == (scores.shape[0],)
    for i in range(scores.shape[0]):
        one = sk_metrics.ndcg_score(relevance[i : i + 1], scores[i : i + 1], k=k)
        assert abs(per_query[i] - one) <= 1e-9


@settings(max_examples=200)
@given(batch=ranking_batches(tied=False), k=K_VALUES)
def test_ndcg_ignore_ties_equals_sklearn_without_ties(batch: tuple[np.ndarray, np.ndarray], k: int | None) -> None:
    scores, relevance = batch
    expected = sk_metrics.ndcg_score(relevance, scores, k=k, ignore_ties=True)
    assert abs(ndcg(scores, relevance, k=k, ignore_ties=True) - expected) <= 1e-9
    # Without ties both modes are the same metric.
    assert abs(ndcg(scores, relevance, k=k) - expected) <= 1e-9


@settings(max_examples=200)
@given(batch=ranking_batches(min_items=1))
def test_average_precision_equals_sklearn_per_query(batch: tuple[np.ndarray, np.ndarray]) -> None:
    scores, relevance = batch
    per_query = average_precision(scores, relevance, reduce="none")
    expected = []
    for i in range(scores.shape[0]):
        labels = relevance[i] > 0
        if not labels.any():
            assert np.isnan(per_query[i])  # documented: undefined without a relevant item
            continue
        value = sk_metrics.average_precision_score(labels, scores[i])
        expected.append(value)
        assert abs(per_query[i] - value) <= 1e-9
    mean = average_precision(scores, relevance)
    if expected:
        assert abs(mean - float(np.mean(expected))) <= 1e-9
    else:
        assert math.isnan(mean)


def test_average_precision_without_positives_is_nan_and_left_out() -> None:
    scores = np.array([[0.3, 0.2, 0.1], [0.3, 0.2, 0.1]])
    relevance = np.array([[0, 1, 0], [0, 0, 0]])
    assert np.isnan(average_precision(scores, relevance, reduce="none")[1])
    assert average_precision(scores, relevance) == pytest.approx(0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns and scores such a query 0; we do not count it
        assert sk_metrics.average_precision_score([0, 0, 0], [0.3, 0.2, 0.1]) == 0.0


def test_average_precision_all_queries_without_positives_is_nan() -> None:
    assert math.isnan(average_precision([[1.0, 2.0]], [[0, 0]]))


def test_average_precision_hand_computed() -> None:
    # Ranking: R, N, R, N -> precisions 1/1 and 2/3 at the relevant ranks.
    assert average_precision([[4.0, 3.0, 2.0, 1.0]], [[1, 0, 1, 0]]) == pytest.approx((1 + 2 / 3) / 2)
    # A tie of one relevant and one irrelevant item at the top is one step: precision 1/2 for it.
    assert average_precision([[1.0, 1.0, 0.0]], [[1, 0, 0]]) == pytest.approx(0.5)


def test_ndcg_hand_computed_and_all_zero_relevance() -> None:
    # Gains [3, 2, 0] ranked [2, 3, 0]: DCG = 2 + 3/log2(3); ideal = 3 + 2/log2(3).
    value = ndcg([[0.9, 1.0, 0.1]], [[3, 2, 0]])
    assert value == pytest.approx((2 + 3 / math.log2(3)) / (3 + 2 / math.log2(3)))
    # nDCG@1 with the best item tied with a zero-gain item: half the gain.
    assert ndcg([[1.0, 1.0]], [[1, 0]], k=1) == pytest.approx(0.5)
    # An all-zero query scores 0 and counts in the mean, as in scikit-learn.
    scores = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    relevance = np.array([[0, 0, 0], [0, 0, 1]])
    np.testing.assert_allclose(ndcg(scores, relevance, reduce="none"), [0.0, 1.0])
    assert ndcg(scores, relevance) == pytest.approx(0.5)
    assert ndcg(scores, relevance) == pytest.approx(sk_metrics.ndcg_score(relevance, scores))


def test_single_relevance_targets_equal_one_hot_matrix() -> None:
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(6, 5))
    targets = np.array([0, 4, 2, 2, 1, 3])
    relevance = one_hot_relevance(targets, 5)
    assert relevance.shape == (6, 5)
    np.testing.assert_array_equal(relevance.argmax(axis=1), targets)
    for fn in (ndcg, mrr, average_precision):
        np.testing.assert_allclose(fn(scores, targets, reduce="none"), fn(scores, relevance, reduce="none"))
    np.testing.assert_allclose(
        recall_at_k(scores, targets, 2, reduce="none"), recall_at_k(scores, relevance, 2, reduce="none")
    )
    # With one relevant item, AP equals the reciprocal rank (no ties here).
    np.testing.assert_allclose(average_precision(scores, targets, reduce="none"), mrr(scores, targets, reduce="none"))


def test_mrr_hand_computed_and_ties() -> None:
    scores = np.array([[0.1, 0.9, 0.5, 0.3], [0.4, 0.3, 0.2, 0.1]])
    targets = np.array([2, 3])
    np.testing.assert_allclose(mrr(scores, targets, reduce="none"), [0.5, 0.25])
    assert mrr(scores, targets) == pytest.approx(0.375)
    assert mrr(scores, targets, k=2) == pytest.approx(0.25)  # the rank-4 hit is cut off -> 0
    # Constant scores: pessimistic puts the target last, optimistic first, index by its position.
    flat = np.zeros((1, 4))
    assert mrr(flat, [1]) == pytest.approx(0.25)
    assert mrr(flat, [1], ties="optimistic") == pytest.approx(1.0)
    assert mrr(flat, [1], ties="index") == pytest.approx(0.5)
    # Several relevant items: the first one in the ranking counts.
    assert mrr([[0.2, 0.8, 0.5]], [[1, 0, 1]]) == pytest.approx(0.5)
    assert math.isnan(mrr([[0.2, 0.8]], [[0, 0]], reduce="none")[0])


def test_recall_at_k_hand_computed() -> None:
    scores = np.array([[0.9, 0.8, 0.7, 0.6, 0.5]])
    relevance = np.array([[1, 0, 1, 0, 1]])
    assert recall_at_k(scores, relevance, 1) == pytest.approx(1 / 3)
    assert recall_at_k(scores, relevance, 3) == pytest.approx(2 / 3)
    assert recall_at_k(scores, relevance, 50) == pytest.approx(1.0)
    tied = np.array([[1.0, 1.0, 0.0]])
    assert recall_at_k(tied, [[0, 1, 0]], 1) == 0.0
    assert recall_at_k(tied, [[0, 1, 0]], 1, ties="optimistic") == 1.0
    assert recall_at_k(tied, [[0, 1, 0]], 1, ties="index") == 0.0
    # Queries without a relevant item are NaN and left out of the mean.
    both = recall_at_k(np.vstack([scores, scores]), np.vstack([relevance, 0 * relevance]), 3, reduce="none")
    assert both[0] == pytest.approx(2 / 3) and np.isnan(both[1])


@settings(max_examples=200)
@given(batch=ranking_batches(), k=st.integers(1, 10))
def test_recall_and_mrr_properties(batch: tuple[np.ndarray, np.ndarray], k: int) -> None:
    scores, relevance = batch
    pess = recall_at_k(scores, relevance, k, reduce="none")
    opt = recall_at_k(scores, relevance, k, ties="optimistic", reduce="none")
    idx = recall_at_k(scores, relevance, k, ties="index", reduce="none")
    has = (relevance > 0).any(axis=1)
    assert np.array_equal(np.isnan(pess), ~has)
    assert np.all(pess[has] <= idx[has] + 1e-12) and np.all(idx[has] <= opt[has] + 1e-12)
    assert np.all((pess[has] >= 0) & (opt[has] <= 1))
    rr = mrr(scores, relevance, reduce="none")
    rr_opt = mrr(scores, relevance, ties="optimistic", reduce="none")
    assert np.all(rr[has] <= rr_opt[has] + 1e-12)
    # Brute force: pessimistic rank of the best relevant item.
    for i in np.flatnonzero(has):
        rel = relevance[i] > 0
        ranks = [1 + np.sum(scores[i] > s) + np.sum((scores[i] == s) & ~rel) for s in scores[i][rel]]
        assert rr[i] == pytest.approx(1 / min(ranks))


def test_leading_axes_are_query_axes() -> None:
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(2, 3, 7))
    relevance = rng.integers(0, 3, size=(2, 3, 7))
    per_query = ndcg(scores, relevance, k=3, reduce="none")
    assert per_query.shape == (2, 3)
    np.testing.assert_allclose(
        per_query.ravel(), ndcg(scores.reshape(6, 7), relevance.reshape(6, 7), k=3, reduce="none")
    )
    assert isinstance(ndcg(scores[0, 0], relevance[0, 0]), float)
    assert isinstance(average_precision(scores, relevance), float)


def test_torch_inputs_equal_numpy() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    scores = rng.integers(0, 4, size=(8, 6)).astype(np.float32)
    relevance = rng.integers(0, 3, size=(8, 6))
    targets = rng.integers(0, 6, size=8)
    t_scores = torch.from_numpy(scores).requires_grad_(True)
    t_rel, t_targets = torch.from_numpy(relevance), torch.from_numpy(targets)
    for fn, kwargs in ((ndcg, {"k": 3}), (mrr, {}), (average_precision, {}), (recall_at_k, {"k": 2})):
        assert fn(t_scores, t_rel, **kwargs) == fn(scores, relevance, **kwargs)
        np.testing.assert_array_equal(
            fn(t_scores, t_targets, reduce="none", **kwargs), fn(scores, targets, reduce="none", **kwargs)
        )
    # bfloat16 scores are widened, not rejected.
    assert ndcg(t_scores.detach().to(torch.bfloat16), t_rel) == ndcg(scores, relevance)


def test_import_does_not_import_torch() -> None:
    code = "import sys, repro_core.metrics; sys.exit(1 if 'torch' in sys.modules or 'sklearn' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ndcg(np.ones((2, 3)), np.ones((3, 2))), "relevance must have the shape of scores"),
        (lambda: ndcg(np.array([[np.nan, 1.0]]), [[1, 0]]), "scores contains NaN"),
        (lambda: ndcg([[1.0, 2.0]], [[np.nan, 0]]), "relevance contains NaN"),
        (lambda: ndcg([[1.0, 2.0]], [[-1, 0]]), "relevance must be >= 0"),
        (lambda: ndcg([[1.0, 2.0]], [[1, 0]], k=0), "k must be a positive integer"),
        (lambda: ndcg([[1.0, 2.0]], [[1, 0]], reduce="sum"), "reduce must be"),
        (lambda: mrr([[1.0, 2.0]], [2]), "targets must lie in"),
        (lambda: mrr([[1.0, 2.0]], [0.5]), "integer labels or indices"),
        (lambda: mrr([[1.0, 2.0]], [[1, 0]], ties="random"), "ties must be"),
        (lambda: recall_at_k([[1.0, 2.0]], [[1, 0]], None), "k is required"),
        (lambda: average_precision(np.float64(1.0), 1.0), "at least one axis"),
        (lambda: one_hot_relevance([0], 0), "n_items must be a positive integer"),
    ],
)
def test_validation_errors(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]
