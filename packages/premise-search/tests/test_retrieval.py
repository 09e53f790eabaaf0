"""Search on a small corpus: channels, RRF, reranker, the dense embedder, and index directories (no pickle)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from premise_search.corpus import Declaration, corpus_sha256
from premise_search.embed import HashingEmbedder, HashingEmbedderConfig
from premise_search.index import index_is_current, load_index, open_index, read_manifest, save_index
from premise_search.rerank import FeatureReranker
from premise_search.retrieval import IndexConfig, SearchEngine, fill_informal, rrf_fuse

SMALL = IndexConfig(embedder=HashingEmbedderConfig(dim=64, n_features=4096))


@pytest.fixture(scope="module")
def engine(small_corpus: list[Declaration]) -> SearchEngine:
    return SearchEngine.build(small_corpus, SMALL)


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid", "name"])
def test_each_mode_finds_the_obvious_target(engine: SearchEngine, mode: str) -> None:
    queries = {
        "the order of an element divides the order of the group": "orderOf_dvd_card",
        "continuous_iff_isClosed": "continuous_iff_isClosed",
        "denumerable type": "Denumerable",
    }
    for query, target in queries.items():
        if mode == "name" and " " in query and target == "orderOf_dvd_card":
            continue  # the name channel sees names only
        hits = engine.search(query, k=3, mode=mode)  # type: ignore[arg-type]
        assert target in [h.name for h in hits], (mode, query, hits)


def test_search_is_deterministic_and_batched(small_corpus: list[Declaration], engine: SearchEngine) -> None:
    queries = ["a poset with binary joins and meets", "sum swap", "2 ≤ p for a prime"]
    batch = engine.search_batch(queries, 5, rerank=True)
    again = SearchEngine.build(small_corpus, SMALL).search_batch(queries, 5, rerank=True)
    assert [[(h.index, h.score) for h in r] for r in batch] == [[(h.index, h.score) for h in r] for r in again]
    assert [h.name for h in batch[0]] == [h.name for h in engine.search(queries[0], 5, rerank=True)]
    assert batch[0][0].name == "Lattice"
    assert all(len(r) <= 5 for r in batch)


def test_bad_arguments(engine: SearchEngine) -> None:
    with pytest.raises(ValueError, match="mode"):
        engine.search("x", mode="magic")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="k"):
        engine.search("x", k=0)
    with pytest.raises(ValueError, match="string"):
        engine.search_batch("not a list")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty"):
        SearchEngine.build([])


def test_rrf() -> None:
    fused = rrf_fuse([[1, 2, 3], [3, 1]], k=60)
    assert [i for i, _ in fused] == [1, 3, 2]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)
    assert [i for i, _ in rrf_fuse([[5], [4]])] == [4, 5]  # tie: lower id first
    assert [i for i, _ in rrf_fuse([[1, 2], [2, 1]], weights=[1.0, 0.1])] == [1, 2]


def test_feature_reranker(small_corpus: list[Declaration]) -> None:
    reranker = FeatureReranker()
    lattice, old = small_corpus[1], small_corpus[6]
    order = reranker.rerank("Lattice", [old, lattice])
    assert order[0][0] == 1  # exact name beats the retriever's first (deprecated) candidate
    feats = reranker.features("theorem: sums can be swapped", [small_corpus[3], small_corpus[1]])
    assert feats[0]["kind"] == 1.0 and feats[1]["kind"] == 0.0 and feats[1]["deprecated"] == 0.0


def test_dense_embedder_is_normalised_and_fuzzy() -> None:
    config = HashingEmbedderConfig(dim=128, n_features=8192)
    emb = HashingEmbedder(config)
    vectors = emb.fit_embed([["denumerable"], ["group", "order"], []])
    np.testing.assert_allclose(np.linalg.norm(vectors[:2], axis=1), 1.0, rtol=1e-5)
    assert not vectors[2].any()
    q = emb.embed([["denumerability"]])[0]
    assert q @ vectors[0] > 0.4 > abs(q @ vectors[1])
    clone = HashingEmbedder.from_state(emb.state())
    np.testing.assert_array_equal(clone.embed([["group"]]), emb.embed([["group"]]))
    with pytest.raises(ValueError, match="dim"):
        HashingEmbedderConfig(dim=0)


def test_index_directory_round_trip_and_staleness(
    small_corpus: list[Declaration], tmp_path: Path, engine: SearchEngine
) -> None:
    directory = save_index(engine, tmp_path / "idx")
    manifest = read_manifest(directory)
    assert manifest["format_version"] == 1 and manifest["n_docs"] == len(small_corpus)
    assert manifest["tokenizer"].startswith("lean-v1") and manifest["embedder"].startswith("hashing-v1")
    loaded = load_index(directory)
    for q in ("order divides card", "lattice"):
        assert [(h.index, h.score) for h in loaded.search(q, 5, rerank=True)] == [
            (h.index, h.score) for h in engine.search(q, 5, rerank=True)
        ]
    assert index_is_current(directory, small_corpus, SMALL)
    assert not index_is_current(directory, small_corpus[:-1], SMALL)
    assert not index_is_current(directory, small_corpus, IndexConfig())
    # arrays load with allow_pickle=False: an object array planted in the index is refused
    np.save(directory / "embeddings.npy", np.array([object()], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="pickle"):
        load_index(directory)
    rebuilt = open_index(directory, small_corpus[:-1], SMALL)  # stale -> rebuilt in place
    assert len(rebuilt) == len(small_corpus) - 1 and read_manifest(directory)["n_docs"] == len(small_corpus) - 1
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("x")
    with pytest.raises(ValueError, match="not an index"):
        save_index(engine, tmp_path / "other")
    manifest_path = directory / "manifest.json"
    data = json.loads(manifest_path.read_text())
    data["format_version"] = 99
    manifest_path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="format version"):
        load_index(directory)


def test_informal_text_fills_only_missing_fields_and_is_deterministic(small_corpus: list[Declaration]) -> None:
    own = Declaration(
        "Lattice.sup_le",
        "theorem",
        "Mathlib.Order.Lattice",
        "theorem Lattice.sup_le : a ≤ c → b ≤ c → a ⊔ b ≤ c",
        informal_name="Supremum is a least upper bound",
    )
    full = Declaration(
        "Lattice.le_sup",
        "theorem",
        "Mathlib.Order.Lattice",
        "theorem Lattice.le_sup : a ≤ a ⊔ b",
        informal_name="Left below join",
        informal_description="Given by the corpus.",
    )
    corpus = [*small_corpus, own, full]
    filled = fill_informal(corpus)
    assert filled == fill_informal(list(corpus))  # deterministic
    assert fill_informal(corpus, "none") == corpus
    assert filled[-1] == full  # complete rows are untouched
    assert filled[-2].informal_name == own.informal_name and filled[-2].informal_description
    assert filled[0].informal_name and "orderOf_dvd_card" in (filled[0].informal_description or "")
    for before, after in zip(corpus, filled, strict=True):  # nothing but the two informal fields changes
        assert replace(after, informal_name=before.informal_name, informal_description=before.informal_description) == (
            before
        )
    with pytest.raises(ValueError, match="informal"):
        fill_informal(corpus, "llm")
    with pytest.raises(ValueError, match="informal"):
        IndexConfig(informal="llm")
    engine = SearchEngine.build(corpus, SMALL)
    assert engine.corpus == filled and engine.config.informal == "offline"
    plain = SearchEngine.build(corpus, replace(SMALL, informal="none"))
    assert plain.corpus == corpus
    # the informal name spells `dvd` out, so an English query finds it through BM25 only with the informal text
    assert "divides" in (filled[0].informal_name or "").lower()


def test_manifest_records_the_informal_option_and_rebuilds_on_change(
    small_corpus: list[Declaration], tmp_path: Path
) -> None:
    directory = tmp_path / "idx"
    engine = open_index(directory, small_corpus, SMALL)
    manifest = read_manifest(directory)
    assert manifest["informal"] == "offline-v1" and manifest["config"]["informal"] == "offline"
    assert manifest["corpus_sha256"] == corpus_sha256(small_corpus)  # the corpus as given, not the filled one
    assert index_is_current(directory, small_corpus, SMALL)
    plain = replace(SMALL, informal="none")
    assert not index_is_current(directory, small_corpus, plain)
    loaded = load_index(directory)
    assert loaded.corpus == engine.corpus and loaded.config == engine.config
    assert loaded.source_sha256 == corpus_sha256(small_corpus)
    rebuilt = open_index(directory, small_corpus, plain)  # built with another option: rebuilt
    assert read_manifest(directory)["informal"] == "none" and rebuilt.corpus == small_corpus
    # an index from before the option (no `informal` entries) counts as `none`
    data = json.loads((directory / "manifest.json").read_text())
    del data["informal"], data["config"]["informal"]
    (directory / "manifest.json").write_text(json.dumps(data))
    assert index_is_current(directory, small_corpus, plain) and not index_is_current(directory, small_corpus, SMALL)
    assert load_index(directory).config.informal == "none"
    assert IndexConfig.from_json(SMALL.to_json()) == SMALL
