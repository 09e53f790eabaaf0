"""Search on a small corpus: channels, fusion, reranker, the static dense channel, and index directories."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from premise_search.corpus import Declaration, corpus_sha256
from premise_search.docstore import DocStore
from premise_search.index import (
    RESULT_NAMES_ID,
    index_is_current,
    load_index,
    open_index,
    quantise_rows,
    read_manifest,
    save_index,
)
from premise_search.rerank import FeatureReranker
from premise_search.retrieval import IndexConfig, SearchEngine, fill_informal, rrf_fuse
from repro_core.errors import ConfigError

SMALL = IndexConfig()


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
    with pytest.raises(ValueError, match="rerank: expected true or false"):
        engine.search("x", rerank="no")  # type: ignore[arg-type]
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


def test_a_query_that_names_a_declaration_puts_it_first(small_corpus: list[Declaration], tmp_path: Path) -> None:
    """The whole query is a name: a declaration's full Lean name, or a name its docstring gives it in bold
    (Mathlib's convention: "**Fermat's Little Theorem**"). Those declarations come first in the standard mode,
    wherever the retriever ranked them, and the index keeps the bold names."""
    little = Declaration(
        "ZMod.pow_card_sub_one_eq_one",
        "theorem",
        "Mathlib.FieldTheory.Finite.Basic",
        "theorem ZMod.pow_card_sub_one_eq_one {a : ZMod p} (ha : a ≠ 0) : a ^ (p - 1) = 1",
        docstring="**Fermat's Little Theorem**: for all nonzero `a : ZMod p`, we have `a ^ (p - 1) = 1`.",
    )
    last = Declaration(
        "FermatLastTheorem",
        "def",
        "Mathlib.NumberTheory.FLT.Basic",
        "def FermatLastTheorem : Prop",
        docstring="Fermat's Last Theorem: `a ^ n + b ^ n = c ^ n` has no positive solutions for `2 < n`.",
    )
    engine = SearchEngine.build([*small_corpus, last, little], SMALL)
    row = len(small_corpus) + 1
    assert engine.result_names == {"Fermat's Little Theorem": [row]}
    query = "Fermat's little theorem"
    assert engine.named(query) == [row] and engine.named("FERMAT'S LITTLE THEOREM") == [row]
    assert engine.named("`ZMod.pow_card_sub_one_eq_one`") == [row]
    assert engine.named("Fermat's little theorem for ZMod") == [] and engine.named("Fermat's last theorem") == []
    assert engine.search(query, 1, rerank=False)[0].name == last.name  # the retriever: "Fermat", "theorem" in its name
    assert engine.search(query, 1)[0].name == little.name  # the default is the standard mode: reranked, named first
    hits = engine.search_batch([query], 3, rerank=True, rerank_depth=1)[0]  # the reranker sees one candidate,
    assert [h.name for h in hits[:2]] == [little.name, last.name]  # and the named declaration joins it, first
    assert hits[0].score > hits[1].score > hits[2].score and len({h.index for h in hits}) == 3
    directory = save_index(engine, tmp_path / "idx")
    assert read_manifest(directory)["result_names"] == RESULT_NAMES_ID
    loaded = load_index(directory)
    assert loaded.result_names == engine.result_names and loaded.search(query, 1, rerank=True)[0].name == little.name
    (directory / "result_names.json").unlink()  # an index written before the names: they are just not recognised
    assert load_index(directory).named(query) == []
    (directory / "result_names.json").write_text('{"x": [99]}')
    with pytest.raises(ValueError, match="rows below"):
        load_index(directory)


def test_a_named_query_gets_the_declarations_that_are_the_result_not_its_versions(
    small_corpus: list[Declaration],
) -> None:
    """Docstrings also set in bold the result a declaration is a case of or a step towards ("A special case of the
    **binomial theorem**"): where another docstring gives the name as its own, the query names that one alone;
    where none does, the versions are all there is, and they are named."""

    def theorem(name: str, docstring: str) -> Declaration:
        return Declaration(name, "theorem", "Mathlib.Algebra.Binomial", f"theorem {name} : x = y", docstring=docstring)

    own = theorem("add_pow", "The **binomial theorem**")
    case = theorem("sub_pow", "A special case of the **binomial theorem**")
    step = theorem("hahn_banach_aux", "An auxiliary step to prove the **Hahn-Banach theorem**.")
    decoy = theorem("PMF.binomial_apply", "The binomial distribution: binomial theorem, binomial coefficients.")
    engine = SearchEngine.build([*small_corpus, case, own, step, decoy], SMALL)
    n = len(small_corpus)
    assert engine.result_names == {"binomial theorem": [n, n + 1], "Hahn-Banach theorem": [n + 2]}  # all kept
    retrieved = [h.name for h in engine.search("binomial theorem", 4, rerank=False)]
    assert retrieved.index("PMF.binomial_apply") < retrieved.index("sub_pow")  # the retriever prefers the decoy
    assert engine.named("binomial theorem") == [n + 1]
    assert engine.named("Hahn-Banach theorem") == [n + 2]
    # the result first, then its versions, then the rest; the reranker sees one candidate, scores still descend
    hits = engine.search_batch(["binomial theorem"], 4, rerank=True, rerank_depth=1)[0]
    assert [h.name for h in hits[:2]] == ["add_pow", "sub_pow"]
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) == len({h.index for h in hits}) == 4


def test_reranker_keeps_how_far_apart_the_retriever_put_its_candidates() -> None:
    """The prior is the retriever's standardised score: a clear retriever win survives a small feature edge.

    With the old rank prior, first and second place were 0.09 apart whatever their scores, so the second
    candidate's better query cover (0.35 x 1.0) overturned a retriever score ten times the runner-up's.
    """
    clear_win = Declaration("Finset.sum_comm", "theorem", "M", "theorem Finset.sum_comm : swap the sums")
    covers_query = Declaration("Finset.prod_comm", "theorem", "M", "theorem Finset.prod_comm : sums can be swapped")
    reranker = FeatureReranker()
    query = "sums can be swapped"
    assert [i for i, _ in reranker.rerank(query, [clear_win, covers_query])] == [1, 0]  # no scores: rank prior
    assert [i for i, _ in reranker.rerank(query, [clear_win, covers_query], [10.0, 1.0])] == [0, 1]
    # a near tie in the retriever leaves the decision to the features
    assert [i for i, _ in reranker.rerank(query, [clear_win, covers_query], [1.0, 1.0])] == [1, 0]
    feats = reranker.features(query, [clear_win, covers_query, covers_query], [3.0, 1.0, 2.0])
    assert [f["prior"] for f in feats] == pytest.approx([1.2247449, -1.2247449, 0.0])
    with pytest.raises(ConfigError, match="one per candidate"):
        reranker.rerank(query, [clear_win], [1.0, 2.0])
    with pytest.raises(ConfigError, match="finite"):
        reranker.rerank(query, [clear_win], [float("nan")])


def test_search_passes_the_fused_scores_to_the_reranker(engine: SearchEngine) -> None:
    seen: list[list[float] | None] = []

    class Recording(FeatureReranker):
        def rerank(self, query, candidates, scores=None):  # type: ignore[no-untyped-def]
            seen.append(None if scores is None else list(scores))
            return super().rerank(query, candidates, scores)

    engine.reranker = Recording(tokenizer=engine.tokenizer)
    try:
        fused = engine.search("order of an element", k=5, rerank=False)
        engine.search("order of an element", k=5, rerank=True)
    finally:
        engine.reranker = FeatureReranker(tokenizer=engine.tokenizer)
    assert seen and seen[0] is not None and seen[0][:5] == pytest.approx([h.score for h in fused])


def test_dense_channel_is_normalised_and_bridges_english_to_name_words(engine: SearchEngine) -> None:
    vectors = engine.dense_vectors
    assert vectors is not None and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    # "divides" is not in orderOf_dvd_card's name: the static model (and the query expansion) bridge it to `dvd`
    hits = engine.search("an element's order is a divisor of the size of the group", k=2, mode="dense")
    assert hits[0].name == "orderOf_dvd_card"
    with pytest.raises(ValueError, match="dense"):
        IndexConfig(dense="hashing")
    no_dense = SearchEngine.build(list(engine.corpus), IndexConfig(dense="none"))
    assert "dense" not in no_dense.channels and no_dense.search("lattice", 1)[0].name == "Lattice"
    with pytest.raises(ValueError, match="no dense channel"):
        no_dense.search("lattice", 1, mode="dense")


def test_quantised_rows_keep_dot_products() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(50, 256)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    quantised, scale = quantise_rows(vectors)
    restored = quantised.astype(np.float32) * scale[:, None]
    assert quantised.dtype == np.int8 and np.abs(restored - vectors).max() <= scale.max() / 2 + 1e-7
    np.testing.assert_allclose(restored @ vectors[0], vectors @ vectors[0], atol=0.01)
    zero_q, zero_scale = quantise_rows(np.zeros((2, 4), dtype=np.float32))
    assert not zero_q.any() and (zero_scale == 1).all()


def test_index_directory_round_trip_and_staleness(
    small_corpus: list[Declaration], tmp_path: Path, engine: SearchEngine
) -> None:
    directory = save_index(engine, tmp_path / "idx")
    manifest = read_manifest(directory)
    assert manifest["format_version"] == 2 and manifest["n_docs"] == len(small_corpus)
    assert manifest["tokenizer"].startswith("lean-v2") and manifest["dense"].startswith("static:")
    loaded = load_index(directory)
    assert isinstance(loaded.corpus, DocStore) and list(loaded.corpus) == engine.corpus
    assert isinstance(loaded.text_bm25.postings_, np.memmap)  # posting lists are memory-mapped, not read
    for q in ("order divides card", "lattice", "group order"):
        for mode in ("bm25", "name", "hybrid"):
            ours = loaded.search(q, 5, mode=mode, rerank=True)  # type: ignore[arg-type]
            theirs = engine.search(q, 5, mode=mode, rerank=True)  # type: ignore[arg-type]
            assert [h.index for h in ours] == [h.index for h in theirs]
            # hybrid fuses the int8 dense scores, and the reranker keeps the fused scores' spread
            atol = 0.01 if mode == "hybrid" else 0.0
            np.testing.assert_allclose([h.score for h in ours], [h.score for h in theirs], rtol=0, atol=atol)
        # the dense vectors are stored as int8: the same ranking, scores within the quantisation error
        ours = loaded.search(q, 5, mode="dense")
        theirs = engine.search(q, 5, mode="dense")
        assert [h.index for h in ours] == [h.index for h in theirs]
        np.testing.assert_allclose([h.score for h in ours], [h.score for h in theirs], atol=0.01)
    assert index_is_current(directory, small_corpus, SMALL)
    assert not index_is_current(directory, small_corpus[:-1], SMALL)
    assert not index_is_current(directory, small_corpus, IndexConfig(dense="none"))
    manifest_path = directory / "manifest.json"
    data = json.loads(manifest_path.read_text())
    del data["result_names"]  # written before the bold names were kept: rebuilt by `open_index`
    manifest_path.write_text(json.dumps(data))
    assert not index_is_current(directory, small_corpus, SMALL)
    # arrays load with allow_pickle=False: an object array planted in the index is refused
    np.save(directory / "dense.scale.npy", np.array([object()], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="pickle"):
        load_index(directory)
    rebuilt = open_index(directory, small_corpus[:-1], SMALL)  # stale -> rebuilt in place
    assert len(rebuilt) == len(small_corpus) - 1 and read_manifest(directory)["n_docs"] == len(small_corpus) - 1
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("x")
    with pytest.raises(ValueError, match="not an index"):
        save_index(engine, tmp_path / "other")
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
    assert manifest["informal"] == "offline-v2" and manifest["config"]["informal"] == "offline"
    assert manifest["corpus_sha256"] == corpus_sha256(small_corpus)  # the corpus as given, not the filled one
    assert index_is_current(directory, small_corpus, SMALL)
    plain = replace(SMALL, informal="none")
    assert not index_is_current(directory, small_corpus, plain)
    loaded = load_index(directory)
    assert list(loaded.corpus) == engine.corpus and loaded.config == engine.config
    assert loaded.source_sha256 == corpus_sha256(small_corpus)
    rebuilt = open_index(directory, small_corpus, plain)  # built with another option: rebuilt
    assert read_manifest(directory)["informal"] == "none" and rebuilt.corpus == small_corpus
    assert index_is_current(directory, small_corpus, plain) and not index_is_current(directory, small_corpus, SMALL)
    assert load_index(directory).config.informal == "none"
    assert IndexConfig.from_json(SMALL.to_json()) == SMALL
