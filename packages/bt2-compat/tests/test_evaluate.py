"""Retrieval metrics: brute force and scikit-learn per query (1e-9), chunking, self-exclusion, truncation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bt2_compat.evaluate import METRICS, check_embeddings, compatibility, retrieval, similarity, truncate_pair
from repro_core.errors import ConfigError, InputError

sklearn_metrics = pytest.importorskip("sklearn.metrics", reason="scikit-learn is the AP reference")


def _brute_force(q: np.ndarray, g: np.ndarray, labels: np.ndarray, k_max: int) -> tuple[np.ndarray, np.ndarray]:
    """Per query: sklearn's average_precision_score and the CMC hit vector, by an explicit loop (float64)."""
    d = min(q.shape[1], g.shape[1])
    qn = q[:, :d] / np.linalg.norm(q[:, :d], axis=1, keepdims=True)
    gn = g[:, :d] / np.linalg.norm(g[:, :d], axis=1, keepdims=True)
    aps, hits = [], []
    for i in range(len(q)):
        others = [j for j in range(len(g)) if j != i]
        scores = np.array([float(qn[i] @ gn[j]) for j in others])
        match = np.array([labels[j] == labels[i] for j in others])
        if not match.any():
            continue
        aps.append(sklearn_metrics.average_precision_score(match, scores))
        ranked = match[np.argsort(-scores, kind="stable")]
        first = int(np.argmax(ranked)) + 1
        hits.append([first <= k for k in range(1, k_max + 1)])
    return np.array(aps), np.array(hits, dtype=float).mean(axis=0)


@pytest.mark.parametrize("query_block", [None, 7])
def test_matches_brute_force_and_sklearn(query_block: int | None) -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 6, size=150)
    labels[0] = 99  # a query with no other sample of its class: excluded
    centres = rng.standard_normal((100, 12))
    q = centres[labels % 100] * 0.6 + rng.standard_normal((150, 12))
    g = np.concatenate([centres[labels % 100, :8] * 0.6 + rng.standard_normal((150, 8))], axis=1)
    result = retrieval(torch.from_numpy(q), torch.from_numpy(g), labels, query_block=query_block)
    aps, cmc = _brute_force(q, g, labels, 5)
    assert result.n_excluded == 1 and np.isnan(result.average_precision[0])
    np.testing.assert_allclose(result.average_precision[1:], aps, rtol=0, atol=1e-9)
    assert abs(result.mean_ap - aps.mean()) < 1e-9
    np.testing.assert_allclose(result.cmc[:5], cmc, rtol=0, atol=1e-12)


def test_self_match_is_excluded_and_perfect_embedding_scores_100() -> None:
    labels = np.repeat(np.arange(4), 5)
    x = np.eye(4)[labels] + 1e-3 * np.random.default_rng(1).standard_normal((20, 4))
    result = retrieval(x, x, labels)
    assert result.mean_ap == pytest.approx(1.0) and result.top_k(1) == 1.0
    singletons = np.arange(6)  # every sample its own class: nothing to find once self is excluded
    assert retrieval(np.eye(6), np.eye(6), singletons).n_evaluated == 0


def test_constant_embedding_gives_class_frequency() -> None:
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 2])
    result = retrieval(np.ones((10, 3)), np.ones((10, 3)), labels)
    expected = np.mean([(np.sum(labels == y) - 1) / 9 for y in labels])
    assert result.mean_ap == pytest.approx(expected, abs=1e-12)


def test_truncation_uses_first_min_dims() -> None:
    q, g = torch.randn(5, 40), torch.randn(5, 32)
    tq, tg = truncate_pair(q, g)
    assert tq.shape == (5, 32) and torch.equal(tq, q[:, :32]) and torch.equal(tg, g)
    labels = np.array([0, 0, 1, 1, 2])
    full = retrieval(q, g, labels)
    cut = retrieval(q[:, :32], g, labels)
    np.testing.assert_array_equal(full.average_precision, cut.average_precision)


def test_query_gallery_mode_and_errors() -> None:
    rng = np.random.default_rng(2)
    q, g = rng.standard_normal((6, 4)), rng.standard_normal((9, 4))
    result = retrieval(q, g, np.zeros(6, int), np.r_[np.zeros(3, int), np.ones(6, int)], leave_one_out=False)
    assert result.n_evaluated == 6
    with pytest.raises(ConfigError, match="leave_one_out"):
        retrieval(q, g, np.zeros(6, int))
    with pytest.raises(ConfigError, match="metric"):
        retrieval(q, q, np.zeros(6, int), metric="manhattan")


def test_compatibility_table_and_criterion() -> None:
    labels = np.repeat(np.arange(3), 4)
    good = torch.eye(3)[labels] + 0.01 * torch.randn(12, 3, generator=torch.Generator().manual_seed(0))
    noise = torch.randn(12, 3, generator=torch.Generator().manual_seed(1))
    table = compatibility({"new": good, "old": noise}, labels, [("old", "old"), ("new", "old"), ("new", "new")])
    assert table.cells["new/new"]["mAP"] == pytest.approx(100.0)
    assert set(table.cells["new/old"]) == {"top1", "top5", "mAP"}
    assert isinstance(table.criterion("new", "old"), bool)
    with pytest.raises(ConfigError, match="no embeddings"):
        compatibility({"a": good}, labels, [("a", "b")])


def test_cosine_l1_is_ml_fcts_l1_normalised_dot_product() -> None:
    """Issue #13: ml-fct's "cosine" divides by the L1 norm; hand-computed, it ranks differently from cosine."""
    q = torch.tensor([[1.0, 1.0, 0.0]])
    g = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    # L1: q / 2 = (.5, .5, 0); g0 / 1 = (1, 0, 0); g1 / 3 = (1/3, 1/3, 1/3) -> scores 1/2 and 1/3
    np.testing.assert_allclose(similarity(q, g, metric="cosine-l1"), [[0.5, 1.0 / 3.0]], rtol=1e-6)
    # L2: 1/sqrt(2) = 0.707 and 2/sqrt(6) = 0.816: the other order
    np.testing.assert_allclose(similarity(q, g, metric="cosine"), [[2**-0.5, 2 / 6**0.5]], rtol=1e-6)
    labels_q, labels_g = np.array([0]), np.array([0, 1])
    l1 = retrieval(q, g, labels_q, labels_g, leave_one_out=False, metric="cosine-l1")
    cos = retrieval(q, g, labels_q, labels_g, leave_one_out=False, metric="cosine")
    assert l1.top_k(1) == 1.0 and l1.mean_ap == 1.0
    assert cos.top_k(1) == 0.0 and cos.mean_ap == 0.5
    # truncation comes first: a 4-d query against 3-d gallery uses its first 3 dims
    q4 = torch.tensor([[1.0, 1.0, 0.0, 100.0]])
    np.testing.assert_allclose(similarity(q4, g, metric="cosine-l1"), [[0.5, 1.0 / 3.0]], rtol=1e-6)
    assert "cosine-l1" in METRICS


def test_ties_choice_decides_cmc_of_tied_scores() -> None:
    """Issue #13: `ties=` reaches repro-core's CMC; AP does not depend on it."""
    q = torch.ones(1, 2)
    g = torch.ones(3, 2)  # every gallery item ties
    labels_q, labels_g = np.array([0]), np.array([1, 0, 1])
    results = {
        ties: retrieval(q, g, labels_q, labels_g, leave_one_out=False, ties=ties)
        for ties in ("pessimistic", "optimistic", "index")
    }
    assert [int(r.first_hit_rank[0]) for r in results.values()] == [3, 1, 2]
    assert len({r.mean_ap for r in results.values()}) == 1
    with pytest.raises(ConfigError, match="ties"):
        retrieval(q, g, labels_q, labels_g, leave_one_out=False, ties="random")
    for ties, top1 in (("optimistic", 100.0), ("pessimistic", 0.0)):
        cells = compatibility({"a": g, "b": g}, labels_g, [("a", "b")], ks=(1,), ties=ties).cells
        assert cells["a/b"]["top1"] == top1


def test_non_finite_and_zero_embeddings(caplog: pytest.LogCaptureFixture) -> None:
    """Issue #13: NaN names its side instead of repro-core's `scores contains NaN`; zero rows are counted."""
    x = torch.randn(6, 4)
    labels = np.array([0, 0, 1, 1, 2, 2])
    bad = x.clone()
    bad[2, 1] = float("nan")
    with pytest.raises(InputError, match="query embeddings: 1 of 6 rows contain NaN"):
        retrieval(bad, x, labels)
    with pytest.raises(InputError, match="gallery embeddings: 1 of 6 rows"):
        retrieval(x, bad, labels)
    with pytest.raises(InputError, match=r"model\.pt: 1 of 6 embeddings contain NaN"):
        check_embeddings(bad, "model.pt")
    zeros = x.clone()
    zeros[:2, :2] = 0.0
    check_embeddings(zeros, "model.pt")  # not zero in all dims
    with pytest.raises(InputError, match=r"model\.pt: 2 of 6 embeddings are zero vectors in their first 2 dims"):
        check_embeddings(zeros, "model.pt", dims=2)
    check_embeddings(zeros, "model.pt", metric="dot", dims=2)
    with caplog.at_level("WARNING", logger="bt2_compat.evaluate"):
        retrieval(zeros, x[:, :2], labels)
    assert "2 of 6 query embeddings are zero vectors in their first 2 dims" in caplog.text
