"""Retrieval metrics (CMC, mAP, leave-one-out): hand-computed cases, brute force and scikit-learn, validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from repro_core.metrics import RetrievalResult, cmc, mean_average_precision, retrieval_metrics
from repro_core.metrics import retrieval as retrieval_module

sk_metrics = pytest.importorskip("sklearn.metrics")


def test_query_gallery_hand_computed() -> None:
    scores = np.array([[0.9, 0.8, 0.1, 0.7], [0.9, 0.2, 0.8, 0.7]])
    result = retrieval_metrics(scores, [0, 1], [0, 1, 0, 1])
    # q0 ranks R N N R -> first hit 1, AP (1 + 2/4)/2; q1 ranks N N R R -> first hit 3, AP (1/3 + 2/4)/2.
    np.testing.assert_array_equal(result.first_hit_rank, [1, 3])
    np.testing.assert_allclose(result.average_precision, [0.75, 5 / 12])
    np.testing.assert_allclose(result.cmc, [0.5, 0.5, 1.0, 1.0])
    assert result.mean_ap == pytest.approx(7 / 12)
    assert (result.n_evaluated, result.n_excluded) == (2, 0)
    assert result.top_k(1) == 0.5 and isinstance(result.top_k(1), float)
    assert result.to_dict() == {"top1": 0.5, "mAP": pytest.approx(7 / 12), "n_evaluated": 2, "n_excluded": 0}
    np.testing.assert_allclose(cmc(scores, [0, 1], [0, 1, 0, 1], max_rank=2), [0.5, 0.5])
    assert mean_average_precision(scores, [0, 1], [0, 1, 0, 1]) == pytest.approx(7 / 12)
    # Distances rank ascending: the same ranking from negated scores.
    same = retrieval_metrics(-scores, [0, 1], [0, 1, 0, 1], distances=True)
    np.testing.assert_allclose(same.cmc, result.cmc)
    assert same.mean_ap == result.mean_ap


def test_leave_one_out_hand_computed() -> None:
    sim = np.array(
        [
            [1.0, 0.2, 0.5, 0.1],
            [0.2, 1.0, 0.3, 0.4],
            [0.5, 0.3, 1.0, 0.6],
            [0.1, 0.4, 0.6, 1.0],
        ]
    )
    labels = np.array(["cat", "cat", "dog", "eel"])
    result = retrieval_metrics(sim, labels, leave_one_out=True)
    # q0: gallery {1, 2, 3} ranks 2 (N), 1 (R) -> rank 2, AP 1/2; q1 ranks 3, 2, 0 (R) -> rank 3, AP 1/3.
    # dog and eel have no other member: excluded from CMC and mAP, counted.
    np.testing.assert_array_equal(result.first_hit_rank, [2, 3, 0, 0])
    np.testing.assert_allclose(result.average_precision[:2], [1 / 2, 1 / 3])
    assert np.isnan(result.average_precision[2:]).all()
    assert (result.n_evaluated, result.n_excluded) == (2, 2)
    np.testing.assert_allclose(result.cmc, [0.0, 0.5, 1.0, 1.0])
    assert result.mean_ap == pytest.approx(5 / 12)
    # Without leave-one-out every query finds itself first.
    assert retrieval_metrics(sim, labels, labels).top_k(1) == 1.0
    # Same as an explicit mask of the diagonal.
    masked = retrieval_metrics(sim, labels, labels, gallery_mask=~np.eye(4, dtype=bool))
    np.testing.assert_allclose(masked.cmc, result.cmc)
    np.testing.assert_allclose(masked.average_precision, result.average_precision)


def test_no_query_evaluable_gives_nan() -> None:
    result = retrieval_metrics(np.ones((2, 2)), [0, 1], [2, 3])
    assert result.n_excluded == 2 and math.isnan(result.mean_ap) and np.isnan(result.cmc).all()


def test_constant_scores_are_pessimistic_by_default() -> None:
    scores = np.zeros((1, 4))
    assert retrieval_metrics(scores, [1], [0, 0, 1, 0]).first_hit_rank[0] == 4
    assert retrieval_metrics(scores, [1], [0, 0, 1, 0], ties="optimistic").first_hit_rank[0] == 1
    assert retrieval_metrics(scores, [1], [0, 0, 1, 0], ties="index").first_hit_rank[0] == 3
    # AP does not depend on the tie order: one step with precision 1/4.
    assert retrieval_metrics(scores, [1], [0, 0, 1, 0]).mean_ap == pytest.approx(0.25)


def _brute_force(
    scores: np.ndarray, q: np.ndarray, g: np.ndarray, mask: np.ndarray, ties: str = "pessimistic"
) -> tuple[list[int], list[float]]:
    ranks, aps = [], []
    for i in range(scores.shape[0]):
        keep = mask[i]
        s, rel = scores[i][keep], (g[keep] == q[i])
        if not rel.any():
            ranks.append(0)
            aps.append(float("nan"))
            continue
        # Rank of each relevant item under the tie rule; the best one is the first hit.
        columns = np.arange(len(s))
        if ties == "pessimistic":
            tied_before = [np.sum((s == s[j]) & ~rel) for j in columns[rel]]
        elif ties == "optimistic":
            tied_before = [0 for _ in columns[rel]]
        else:
            tied_before = [np.sum((s == s[j]) & (columns < j)) for j in columns[rel]]
        ranks.append(min(int(1 + np.sum(s > s[j]) + t) for j, t in zip(columns[rel], tied_before, strict=True)))
        aps.append(sk_metrics.average_precision_score(rel, s))
    return ranks, aps


@settings(max_examples=200)
@given(data=st.data())
def test_matches_brute_force_and_sklearn(data: st.DataObject) -> None:
    n_query = data.draw(st.integers(1, 6))
    n_gallery = data.draw(st.integers(1, 8))
    loo = data.draw(st.booleans())
    if loo:
        n_gallery = n_query = max(n_query, 2)
    scores = data.draw(hnp.arrays(np.float64, (n_query, n_gallery), elements=st.integers(-2, 2).map(float)))
    q = data.draw(hnp.arrays(np.int64, n_query, elements=st.integers(0, 2)))
    g = q if loo else data.draw(hnp.arrays(np.int64, n_gallery, elements=st.integers(0, 2)))
    mask = data.draw(hnp.arrays(np.bool_, (n_query, n_gallery))) if data.draw(st.booleans()) else None
    ties = data.draw(st.sampled_from(["pessimistic", "optimistic", "index"]))
    result = retrieval_metrics(scores, q, None if loo else g, leave_one_out=loo, gallery_mask=mask, ties=ties)
    full_mask = np.ones(scores.shape, dtype=bool) if mask is None else mask.copy()
    if loo:
        np.fill_diagonal(full_mask, False)
    ranks, aps = _brute_force(scores, q, g, full_mask, ties)
    np.testing.assert_array_equal(result.first_hit_rank, ranks)
    np.testing.assert_allclose(result.average_precision, aps, rtol=0, atol=1e-9)
    evaluated = np.array(ranks) > 0
    assert result.n_evaluated == evaluated.sum()
    if evaluated.any():
        assert abs(result.mean_ap - np.nanmean(aps)) <= 1e-9
        expected_cmc = [(np.array(ranks)[evaluated] <= k).mean() for k in range(1, n_gallery + 1)]
        np.testing.assert_allclose(result.cmc, expected_cmc, atol=1e-12)
        assert np.all(np.diff(result.cmc) >= 0)


def test_chunked_evaluation_equals_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    scores = rng.normal(size=(23, 17))
    q, g = rng.integers(0, 4, 23), rng.integers(0, 4, 17)
    whole = retrieval_metrics(scores, q, g)
    monkeypatch.setattr(retrieval_module, "_CHUNK_ENTRIES", 40)  # 2 rows per chunk
    chunked = retrieval_metrics(scores, q, g)
    np.testing.assert_array_equal(chunked.cmc, whole.cmc)
    np.testing.assert_array_equal(chunked.average_precision, whole.average_precision)


def test_concatenated_blocks_equal_one_call() -> None:
    rng = np.random.default_rng(5)
    scores = rng.integers(-2, 3, size=(11, 9)).astype(float)  # many ties
    q, g = rng.integers(0, 3, 11), rng.integers(0, 3, 9)
    whole = retrieval_metrics(scores, q, g, max_rank=12)
    blocks = [retrieval_metrics(scores[i : i + 4], q[i : i + 4], g, max_rank=12) for i in range(0, 11, 4)]
    joined = RetrievalResult.concatenate(blocks)
    np.testing.assert_array_equal(joined.cmc, whole.cmc)
    np.testing.assert_array_equal(joined.first_hit_rank, whole.first_hit_rank)
    np.testing.assert_array_equal(joined.average_precision, whole.average_precision)
    assert (joined.mean_ap, joined.n_evaluated, joined.n_excluded) == (
        whole.mean_ap,
        whole.n_evaluated,
        whole.n_excluded,
    )
    with pytest.raises(ValueError, match="at least one"):
        RetrievalResult.concatenate([])
    with pytest.raises(ValueError, match="different lengths"):
        RetrievalResult.concatenate([blocks[0], retrieval_metrics(scores[:2], q[:2], g)])


def test_torch_inputs_equal_numpy() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    emb = rng.normal(size=(12, 5))
    labels = rng.integers(0, 3, 12)
    sim = emb @ emb.T
    expected = retrieval_metrics(sim, labels, leave_one_out=True)
    t_emb = torch.from_numpy(emb).requires_grad_(True)
    got = retrieval_metrics(t_emb @ t_emb.T, torch.from_numpy(labels), leave_one_out=True)
    assert isinstance(got, RetrievalResult)
    np.testing.assert_allclose(got.cmc, expected.cmc)
    assert got.mean_ap == pytest.approx(expected.mean_ap, abs=1e-12)


def test_max_rank_beyond_gallery_is_padded_with_one() -> None:
    curve = cmc(np.array([[0.9, 0.1]]), [1], [0, 1], max_rank=5)
    np.testing.assert_allclose(curve, [0.0, 1.0, 1.0, 1.0, 1.0])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scores": np.ones(3), "query_labels": [0]}, "scores must be 2-D"),
        ({"scores": np.ones((2, 3)), "query_labels": [0]}, "query_labels has 1 entries"),
        ({"scores": np.ones((2, 3)), "query_labels": [0, 1]}, "gallery_labels is required"),
        ({"scores": np.ones((2, 3)), "query_labels": [0, 1], "gallery_labels": [0]}, "gallery_labels has 1"),
        ({"scores": np.ones((2, 3)), "query_labels": [0, 1], "leave_one_out": True}, "square"),
        (
            {"scores": np.ones((2, 2)), "query_labels": [0, 1], "gallery_labels": [1, 0], "leave_one_out": True},
            "must be omitted or equal",
        ),
        ({"scores": np.full((1, 2), np.nan), "query_labels": [0], "gallery_labels": [0, 1]}, "scores contains NaN"),
        ({"scores": np.ones((1, 2)), "query_labels": [np.nan], "gallery_labels": [0, 1]}, "query_labels contains NaN"),
        (
            {"scores": np.ones((1, 2)), "query_labels": [0], "gallery_labels": [0, 1], "gallery_mask": np.ones((2, 1))},
            "gallery_mask must have the shape",
        ),
        ({"scores": np.ones((1, 2)), "query_labels": [0], "gallery_labels": [0, 1], "max_rank": 0}, "max_rank"),
        ({"scores": np.ones((1, 2)), "query_labels": [0], "gallery_labels": [0, 1], "ties": "up"}, "ties must be"),
    ],
)
def test_validation_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        retrieval_metrics(**kwargs)  # type: ignore[arg-type]


def test_top_k_beyond_curve_is_an_error() -> None:
    with pytest.raises(ValueError, match="k must be an integer"):
        retrieval_metrics(np.ones((1, 2)), [0], [0, 1]).top_k(3)
