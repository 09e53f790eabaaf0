"""Our sparse BM25 equals rank_bm25.BM25Okapi.get_scores (random corpora, negative-idf epsilon case, quirks)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from premise_search.bm25 import BM25Config, SparseBM25, reference_scores, top_k_scores

pytest.importorskip("rank_bm25", reason="rank-bm25 is the reference scorer")

_TOKENS = st.sampled_from([f"t{i}" for i in range(8)])
_CORPORA = st.lists(st.lists(_TOKENS, min_size=0, max_size=7), min_size=3, max_size=12).filter(lambda docs: any(docs))


@settings(max_examples=150)
@given(
    corpus=_CORPORA,
    query=st.lists(st.one_of(_TOKENS, st.just("unseen")), min_size=0, max_size=6),
    k1=st.sampled_from([0.5, 1.2, 1.5, 2.0]),
    b=st.sampled_from([0.0, 0.5, 0.75, 1.0]),
    epsilon=st.sampled_from([0.0, 0.25, 1.0]),
)
def test_scores_equal_rank_bm25(corpus: list[list[str]], query: list[str], k1: float, b: float, epsilon: float) -> None:
    config = BM25Config(k1=k1, b=b, epsilon=epsilon)
    ours = SparseBM25(config).fit(corpus).get_scores(query)
    with np.errstate(invalid="ignore", divide="ignore"):
        reference = reference_scores(corpus, query, config)
    # rank_bm25 computes 0/0 = NaN for an empty document when b = 1 (its length norm is 0); we give 0 there
    undefined = np.isnan(reference)
    assert not np.isnan(ours).any() and (ours[undefined] == 0).all()
    np.testing.assert_allclose(ours[~undefined], reference[~undefined], rtol=0, atol=1e-9)


def test_negative_idf_gets_epsilon_times_mean_idf() -> None:
    corpus = [["common", "a"], ["common", "b"], ["common", "c"], ["d"]]  # "common" in 3 of 4 docs: idf < 0
    model = SparseBM25().fit(corpus)
    raw = np.log(4 - np.array([3, 1, 1, 1, 1]) + 0.5) - np.log(np.array([3, 1, 1, 1, 1]) + 0.5)
    assert model.idf_[model.vocabulary_["common"]] == pytest.approx(0.25 * raw.mean(), abs=1e-12)
    np.testing.assert_allclose(
        model.get_scores(["common", "a", "common"]),
        reference_scores(corpus, ["common", "a", "common"]),
        atol=1e-9,
        rtol=0,
    )
    assert model.get_scores(["common"])[3] == 0.0


def test_two_document_quirk_is_kept() -> None:
    corpus = [["group", "order"], ["ring", "ideal"]]
    assert SparseBM25().fit(corpus).get_scores(["group"]).tolist() == [0.0, 0.0]
    assert reference_scores(corpus, ["group"]).tolist() == [0.0, 0.0]


def test_batch_scores_and_top_k() -> None:
    rng = np.random.default_rng(0)
    corpus = [[f"t{x}" for x in rng.integers(0, 30, 12)] for _ in range(40)]
    model = SparseBM25().fit(corpus)
    queries = [["t1", "t2"], ["t3"], ["nothing"]]
    batch = model.get_batch_scores(queries)
    for row, q in zip(batch, queries, strict=True):
        np.testing.assert_allclose(row, model.get_scores(q), atol=1e-12)
    idx, scores = top_k_scores(np.array([1.0, 3.0, 3.0, 2.0, 3.0]), 2)
    assert idx.tolist() == [1, 2] and scores.tolist() == [3.0, 3.0]  # ties: lower index first
    assert top_k_scores(np.array([0.5, 0.1]), 5)[0].tolist() == [0, 1]


def test_state_round_trip_and_bad_input() -> None:
    corpus = [["a", "b"], ["b", "c"], ["c", "d", "d"]]
    model = SparseBM25().fit(corpus)
    clone = SparseBM25.from_state(model.state())
    np.testing.assert_array_equal(clone.get_scores(["d", "b"]), model.get_scores(["d", "b"]))
    with pytest.raises(ValueError, match="tokenize first"):
        SparseBM25().fit(["not tokenized", "x"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="at least one"):
        SparseBM25().fit([])
    with pytest.raises(ValueError, match="b"):
        BM25Config(b=2.0)
