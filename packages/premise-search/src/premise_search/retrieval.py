"""Standard-mode search: BM25, dense and name channels, reciprocal rank fusion, then an optional reranker.

Channels (each a ranking of the whole corpus):

- `bm25`: BM25 Okapi over the declaration text (name, module, signature, docstring, informal text);
- `name`: BM25 over the declaration name alone (split on dots, underscores and camelCase), the "name channel"
  LeanExplore also uses: a query that spells a name finds it even in a long signature-heavy corpus;
- `dense`: cosine similarity of `HashingEmbedder` vectors (lexical-fuzzy), exact top-k via
  `repro_core.kernels.topk_similarity`;
- `semantic`: cosine similarity of a `TextEmbedder` from an installed package (all-MiniLM-L6-v2 from the
  `semantic` extra) over `semantic_text`. An index built without one (`IndexConfig.semantic="none"`, or `"auto"`
  with the extra absent) answers `semantic` with the built-in `dense` channel instead.

`hybrid` fuses the channels' top `candidates` (default 100) with one of two rules (the default is the rule the
weight search chose: `LEXICAL_FUSION` = zscore without a semantic channel, `SEMANTIC_FUSION` = rrf with one):

- `"zscore"`: each channel's scores are standardised over its own candidate list
  (`(s - mean) / std`), a candidate missing from a channel gets that channel's lowest listed value, and the
  fused score is `Σ_c weight_c · z_c(d)`. Score fusion keeps *how much* better a channel's first hit is, which
  rank fusion throws away: with RRF a weak channel's votes pulled BM25's correct first places down (README).
  With the MiniLM channel and informal text, RRF scored higher on the tuning rows.
- `"rrf"`: reciprocal rank fusion (Cormack, Clarke & Büttcher 2009), `Σ_c weight_c / (rrf_k + rank_c(d))`,
  rank 1-based, rrf_k = 60.

Ties go to the lower corpus index. The weights (`LEXICAL_CHANNEL_WEIGHTS` without a semantic channel,
`SEMANTIC_CHANNEL_WEIGHTS` with one) were chosen on MathlibQR rows *outside* the fair slice (136 rows) and are
reported on the fair slice and MathlibMPR (`benchmarks/bench_quality.py`; see the README).
`rerank=True` re-orders the top `rerank_depth` of the chosen mode with a `Reranker` (the deterministic
`FeatureReranker` by default); the rest keep their order below.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np

from premise_search.bm25 import BM25Config, SparseBM25, top_k_scores
from premise_search.corpus import Declaration, corpus_sha256
from premise_search.embed import (
    HashingEmbedder,
    HashingEmbedderConfig,
    TextEmbedder,
    load_semantic_embedder,
    resolve_semantic,
    semantic_text,
    validate_semantic,
)
from premise_search.informalize import Informalizer
from premise_search.rerank import FeatureReranker, Reranker
from premise_search.tokenize import LeanTokenizer, TokenizerConfig
from repro_core.errors import ConfigError, InputError

__all__ = [
    "DEFAULT_CHANNEL_WEIGHTS",
    "FUSIONS",
    "INFORMAL_SOURCES",
    "LEXICAL_CHANNEL_WEIGHTS",
    "LEXICAL_FUSION",
    "MODES",
    "SEMANTIC_CHANNEL_WEIGHTS",
    "SEMANTIC_FUSION",
    "Hit",
    "IndexConfig",
    "SearchEngine",
    "default_index_config",
    "document_text",
    "fill_informal",
    "rrf_fuse",
    "zscore_fuse",
]

logger = logging.getLogger(__name__)

Mode = Literal["bm25", "name", "dense", "semantic", "hybrid"]
#: Search modes (`name` is the name channel alone).
MODES: tuple[str, ...] = ("bm25", "name", "dense", "semantic", "hybrid")
#: Where `IndexConfig.informal` takes informal text from for declarations without it.
INFORMAL_SOURCES: tuple[str, ...] = ("none", "offline")
#: Hybrid fusion rules.
FUSIONS: tuple[str, ...] = ("zscore", "rrf")
#: z-score fusion weights without a semantic channel: the best of a 32-point grid (rrf and zscore; dense and name
#: weights) by nDCG@10 on the 136 MathlibQR rows outside the fair slice, with the offline informal text indexed
#: (`IndexConfig.informal="offline"`). Without informal text the same search gave dense 0, name 0.1.
LEXICAL_CHANNEL_WEIGHTS = {"bm25": 1.0, "dense": 0.5, "name": 0.5}
#: Fusion rule and weights with a semantic channel (MiniLM), chosen the same way from a 90-point grid (rrf and
#: zscore; semantic, dense and name weights) with the offline informal text indexed; `benchmarks/bench_quality.py
#: --semantic minilm --grid` repeats the search. (Without informal text the search gave zscore, semantic 2,
#: dense 0.5, name 0.25.)
SEMANTIC_FUSION = "rrf"
SEMANTIC_CHANNEL_WEIGHTS = {"bm25": 1.0, "semantic": 1.0, "dense": 0.5, "name": 0.0}
#: Fusion rule without a semantic channel.
LEXICAL_FUSION = "zscore"
#: Kept for compatibility: the weights used when the index has no semantic channel.
DEFAULT_CHANNEL_WEIGHTS = LEXICAL_CHANNEL_WEIGHTS


def document_text(decl: Declaration) -> str:
    """The text the `bm25` and `dense` channels index: name, module, signature, docstring, informal text."""
    parts = [decl.name, decl.module, decl.signature]
    for extra in (decl.docstring, decl.informal_name, decl.informal_description):
        if extra:
            parts.append(extra)
    return "\n".join(parts)


def fill_informal(corpus: Sequence[Declaration], source: str = "offline") -> list[Declaration]:
    """`corpus` with each missing `informal_name` / `informal_description` filled from `source` (input order).

    Why: 73% of the declarations have no docstring, so the channels see only a name and a signature; the offline
    informaliser spells the name out in words and names the dependencies, which BM25 and the embedders can match
    against English queries (README, "Results on the embedded corpus"). Text the corpus already has is kept;
    rows the informaliser skips (internal names, duplicates, other kinds) are returned unchanged. Deterministic.
    """
    if source not in INFORMAL_SOURCES:
        raise ConfigError(f"informal: expected one of {INFORMAL_SOURCES}, got {source!r}")
    if source == "none" or all(d.informal_name and d.informal_description for d in corpus):
        return list(corpus)
    filled = Informalizer().run(corpus).declarations  # rows with a description are kept and lend it to dependents
    return [
        old
        if old.informal_name and old.informal_description
        else replace(
            old,
            informal_name=old.informal_name or new.informal_name,
            informal_description=old.informal_description or new.informal_description,
        )
        for old, new in zip(corpus, filled, strict=True)
    ]


@dataclass(frozen=True)
class IndexConfig:
    """Everything that determines an index (a change means a rebuild), JSON round-trip.

    Attributes:
        tokenizer: `LeanTokenizer` options.
        bm25: BM25 parameters, shared by the text and name channels.
        embedder: `HashingEmbedder` options (the built-in `dense` channel).
        semantic: the semantic channel's model: `none` (default: built-in channels only, identical on every
            machine), `auto` (`minilm` when the `semantic` extra is installed, else `none`), `minilm`,
            `wordllama`, or `st:<directory>` for a local sentence-transformers model. `build` stores the
            resolved name, so a saved index says which model made its vectors.
        informal: informal text for declarations that have none: `offline` (default) fills each missing
            `informal_name` / `informal_description` with `OfflineInformalizer` output before any channel's text
            is built (rows with their own informal text keep it); `none` indexes the corpus as given.
    """

    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    bm25: BM25Config = field(default_factory=BM25Config)
    embedder: HashingEmbedderConfig = field(default_factory=HashingEmbedderConfig)
    semantic: str = "none"
    informal: str = "offline"

    def __post_init__(self) -> None:
        for key, kind in (("tokenizer", TokenizerConfig), ("bm25", BM25Config), ("embedder", HashingEmbedderConfig)):
            if not isinstance(getattr(self, key), kind):
                raise ConfigError(f"IndexConfig.{key}: expected a {kind.__name__}")
        validate_semantic(self.semantic)
        if self.informal not in INFORMAL_SOURCES:
            raise ConfigError(f"IndexConfig.informal: expected one of {INFORMAL_SOURCES}, got {self.informal!r}")

    def resolved(self) -> IndexConfig:
        """This config with `semantic="auto"` replaced by what it means in this environment."""
        return replace(self, semantic=resolve_semantic(self.semantic))

    def to_dict(self) -> dict[str, Any]:
        return {
            "tokenizer": asdict(self.tokenizer),
            "bm25": asdict(self.bm25),
            "embedder": asdict(self.embedder),
            "semantic": self.semantic,
            "informal": self.informal,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | dict[str, Any]) -> IndexConfig:
        data = json.loads(text) if isinstance(text, str) else dict(text)
        unknown = set(data) - {"tokenizer", "bm25", "embedder", "semantic", "informal"}
        if unknown:
            raise ConfigError(f"IndexConfig: unknown field(s) {sorted(unknown)}")
        return cls(
            tokenizer=TokenizerConfig.from_json(data.get("tokenizer", {})),
            bm25=BM25Config.from_json(data.get("bm25", {})),
            embedder=HashingEmbedderConfig.from_json(data.get("embedder", {})),
            semantic=data.get("semantic", "none"),
            informal=data.get("informal", cls.informal),
        )


def default_index_config() -> IndexConfig:
    """The config used when none is given: `IndexConfig()`, with `semantic` from `$PREMISE_SEARCH_SEMANTIC`.

    The variable (`none`, `auto`, `minilm`, `wordllama`, `st:<dir>`) lets the CLI and the server use the
    semantic channel without a flag; unset means `none`, so results do not depend on what is installed.
    """
    value = os.environ.get("PREMISE_SEARCH_SEMANTIC", "").strip()
    if not value:
        return IndexConfig()
    try:
        return IndexConfig(semantic=value)
    except ConfigError as exc:
        raise ConfigError(f"$PREMISE_SEARCH_SEMANTIC: {exc}") from None


@dataclass(frozen=True)
class Hit:
    """One search result: the corpus row `index`, its declaration, the score of the mode that ranked it."""

    index: int
    score: float
    declaration: Declaration

    @property
    def name(self) -> str:
        return self.declaration.name

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "score": self.score, **self.declaration.to_dict("native")}


def rrf_fuse(
    rankings: Sequence[Sequence[int]], *, k: float = 60.0, weights: Sequence[float] | None = None
) -> list[tuple[int, float]]:
    """Reciprocal rank fusion of ranked id lists: (id, Σ_c w_c / (k + rank_c)) best first, ties by lower id.

    Ranks are 1-based; an id absent from a ranking gets nothing from it.
    """
    if k < 0:
        raise ValueError(f"k: must be >= 0, got {k}")
    weights = [1.0] * len(rankings) if weights is None else list(weights)
    if len(weights) != len(rankings):
        raise ValueError(f"weights: expected {len(rankings)} values, got {len(weights)}")
    fused: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, item in enumerate(ranking, start=1):
            fused[int(item)] = fused.get(int(item), 0.0) + weight / (k + rank)
    return sorted(fused.items(), key=lambda pair: (-pair[1], pair[0]))


def zscore_fuse(
    rankings: Sequence[tuple[Sequence[int], Sequence[float]]], *, weights: Sequence[float] | None = None
) -> list[tuple[int, float]]:
    """Weighted sum of per-channel standardised scores: (id, Σ_c w_c · z_c(id)) best first, ties by lower id.

    `rankings` holds one (ids, scores) pair per channel, its candidate list. Scores are standardised over that
    list (`(s - mean) / std`; a constant list gives 0), and an id the channel did not list gets the channel's
    lowest listed z, since it scored below all of them.
    """
    weights = [1.0] * len(rankings) if weights is None else list(weights)
    if len(weights) != len(rankings):
        raise ValueError(f"weights: expected {len(rankings)} values, got {len(weights)}")
    per_channel: list[tuple[dict[int, float], float, float]] = []
    for (ids, scores), weight in zip(rankings, weights, strict=True):
        values = np.asarray(scores, dtype=np.float64)
        if len(ids) != values.size:
            raise ValueError("rankings: each channel needs as many scores as ids")
        if values.size == 0 or weight == 0:
            continue
        std = float(values.std())
        z = (values - values.mean()) / std if std > 0 else np.zeros_like(values)
        per_channel.append(({int(i): float(v) for i, v in zip(ids, z, strict=True)}, float(z.min()), float(weight)))
    candidates = sorted({i for table, _, _ in per_channel for i in table})
    fused = [(i, sum(w * table.get(i, floor) for table, floor, w in per_channel)) for i in candidates]
    return sorted(fused, key=lambda pair: (-pair[1], pair[0]))


class SearchEngine:
    """Search a corpus of `Declaration`s in standard mode (see the module docstring).

    Build with `SearchEngine.build(corpus)` or load a saved index with `premise_search.index.load_index`.
    """

    def __init__(
        self,
        corpus: Sequence[Declaration],
        config: IndexConfig,
        text_bm25: SparseBM25,
        name_bm25: SparseBM25,
        embedder: HashingEmbedder,
        embeddings: np.ndarray,
        *,
        reranker: Reranker | None = None,
        rrf_k: float = 60.0,
        candidates: int = 100,
        channel_weights: dict[str, float] | None = None,
        rerank_depth: int = 50,
        semantic: TextEmbedder | None = None,
        semantic_embeddings: np.ndarray | None = None,
        fusion: str | None = None,
        source_sha256: str | None = None,
    ) -> None:
        n = len(corpus)
        if not (text_bm25.n_docs == name_bm25.n_docs == embeddings.shape[0] == n):
            raise InputError(f"index parts disagree on the corpus size ({n} declarations)")
        if (semantic is None) != (semantic_embeddings is None):
            raise ConfigError("semantic and semantic_embeddings: give both or neither")
        if semantic_embeddings is not None and semantic_embeddings.shape[0] != n:
            raise InputError(f"semantic embeddings have {semantic_embeddings.shape[0]} rows for {n} declarations")
        if candidates < 1 or rerank_depth < 1:
            raise ConfigError("candidates and rerank_depth must be >= 1")
        if fusion is None:
            fusion = SEMANTIC_FUSION if semantic is not None else LEXICAL_FUSION
        if fusion not in FUSIONS:
            raise ConfigError(f"fusion: expected one of {FUSIONS}, got {fusion!r}")
        self.corpus = list(corpus)
        self.config = config
        self.tokenizer = LeanTokenizer(config.tokenizer)
        self.text_bm25, self.name_bm25 = text_bm25, name_bm25
        self.embedder, self.embeddings = embedder, embeddings
        self.reranker: Reranker = reranker if reranker is not None else FeatureReranker(tokenizer=self.tokenizer)
        self.rrf_k, self.candidates, self.rerank_depth = float(rrf_k), int(candidates), int(rerank_depth)
        self.semantic, self.semantic_embeddings = semantic, semantic_embeddings
        self.fusion = fusion
        # the hash of the corpus the index was built from, before `IndexConfig.informal` filled it in
        self.source_sha256 = source_sha256 if source_sha256 is not None else corpus_sha256(self.corpus)
        base = SEMANTIC_CHANNEL_WEIGHTS if semantic is not None else LEXICAL_CHANNEL_WEIGHTS
        self.channel_weights = dict(base)
        if channel_weights:
            unknown = set(channel_weights) - {"bm25", "dense", "name", "semantic"}
            if unknown:
                raise ConfigError(f"channel_weights: unknown channel(s) {sorted(unknown)}")
            self.channel_weights.update(channel_weights)
        self._by_name: dict[str, int] = {}
        for i, decl in enumerate(self.corpus):
            self._by_name.setdefault(decl.name, i)

    @classmethod
    def build(cls, corpus: Sequence[Declaration], config: IndexConfig | None = None, **kwargs: Any) -> SearchEngine:
        """Tokenize, fit both BM25 channels and the embedder, and embed the corpus (semantically too, if asked).

        `config=None` means `default_index_config()`. `semantic="auto"` is resolved here and stored resolved.
        """
        if len(corpus) == 0:
            raise InputError("cannot index an empty corpus")
        config = (config if config is not None else default_index_config()).resolved()
        source_sha256 = corpus_sha256(corpus)
        corpus = fill_informal(corpus, config.informal)
        tokenizer = LeanTokenizer(config.tokenizer)
        text_tokens = [tokenizer.tokenize(document_text(d)) for d in corpus]
        name_tokens = [tokenizer.name_tokens(d.name) for d in corpus]
        text_bm25 = SparseBM25(config.bm25).fit(text_tokens)
        name_bm25 = SparseBM25(config.bm25).fit(name_tokens)
        embedder = HashingEmbedder(config.embedder)
        embeddings = embedder.fit_embed(text_tokens)
        semantic = load_semantic_embedder(config.semantic)
        if semantic is not None:
            logger.info("embedding %d declarations with %s", len(corpus), semantic.id)
            kwargs = {**kwargs, "semantic": semantic}
            kwargs["semantic_embeddings"] = semantic.embed_documents([semantic_text(d) for d in corpus])
        logger.info("built an index of %d declarations (%d text terms)", len(corpus), len(text_bm25.vocabulary_))
        kwargs.setdefault("source_sha256", source_sha256)
        return cls(corpus, config, text_bm25, name_bm25, embedder, embeddings, **kwargs)

    @property
    def channels(self) -> tuple[str, ...]:
        """The channels `hybrid` fuses: bm25, dense, name, and semantic when the index has it."""
        return ("bm25", "dense", "name", "semantic") if self.semantic is not None else ("bm25", "dense", "name")

    def __len__(self) -> int:
        return len(self.corpus)

    def lookup(self, name: str) -> Declaration | None:
        """The declaration called `name` (first one if duplicated), or None."""
        i = self._by_name.get(name)
        return None if i is None else self.corpus[i]

    # -- channels -------------------------------------------------------------------------------------------
    def _dense_rankings(
        self, queries: Sequence[str], depth: int, *, semantic: bool = False
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        from repro_core.kernels import topk_similarity

        if semantic and self.semantic is not None and self.semantic_embeddings is not None:
            vectors, matrix = self.semantic.embed_queries(list(queries)), self.semantic_embeddings
        else:
            vectors = self.embedder.embed([self.tokenizer.tokenize(q) for q in queries])
            matrix = self.embeddings
        scores, indices = topk_similarity(vectors, matrix, min(depth, len(self)), metric="dot")
        return [(np.asarray(indices[i]), np.asarray(scores[i], dtype=np.float64)) for i in range(len(queries))]

    def _channel(self, channel: str, queries: Sequence[str], depth: int) -> list[tuple[np.ndarray, np.ndarray]]:
        if channel in ("dense", "semantic"):
            # an index without a semantic model answers `semantic` with the built-in dense channel
            return self._dense_rankings(queries, depth, semantic=channel == "semantic")
        model = self.text_bm25 if channel == "bm25" else self.name_bm25
        tok = self.tokenizer.name_tokens if channel == "name" else self.tokenizer.tokenize
        out = []
        for q in queries:
            scores = model.get_scores(tok(q))
            out.append(top_k_scores(scores, depth))
        return out

    def search_batch(
        self,
        queries: Sequence[str],
        k: int = 10,
        *,
        mode: Mode = "hybrid",
        rerank: bool = False,
        rerank_depth: int | None = None,
    ) -> list[list[Hit]]:
        """`search` for several queries (the dense channel embeds and scores them in one batch).

        `rerank_depth` overrides the engine's number of candidates the reranker sees (LSv2's `retrieve_k`).
        """
        if isinstance(queries, str):
            raise InputError("queries: expected a list of strings, got one string")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigError(f"k: expected a positive integer, got {k!r}")
        if mode not in MODES:
            raise ConfigError(f"mode: expected one of {MODES}, got {mode!r}")
        for q in queries:
            if not isinstance(q, str):
                raise InputError(f"query: expected a string, got {type(q).__name__}")
        if rerank_depth is None:
            rerank_depth = self.rerank_depth
        elif isinstance(rerank_depth, bool) or not isinstance(rerank_depth, int) or rerank_depth < 1:
            raise ConfigError(f"rerank_depth: expected a positive integer, got {rerank_depth!r}")
        if not queries:
            return []
        depth = max(k, rerank_depth if rerank else k, self.candidates if mode == "hybrid" else k)
        if mode == "hybrid":
            names = [c for c in self.channels if self.channel_weights.get(c, 0.0) != 0.0]
            channels = {c: self._channel(c, queries, depth) for c in names}
            weights = [self.channel_weights[c] for c in names]
            ranked = []
            for i in range(len(queries)):
                if self.fusion == "rrf":
                    fused = rrf_fuse([channels[c][i][0] for c in names], k=self.rrf_k, weights=weights)[:depth]
                else:
                    fused = zscore_fuse([channels[c][i] for c in names], weights=weights)[:depth]
                ranked.append(([j for j, _ in fused], [s for _, s in fused]))
        else:
            ranked = [(list(map(int, idx)), list(map(float, sc))) for idx, sc in self._channel(mode, queries, depth)]
        results = []
        for q, (indices, scores) in zip(queries, ranked, strict=True):
            hits = [Hit(int(i), float(s), self.corpus[int(i)]) for i, s in zip(indices, scores, strict=True)]
            if rerank and hits:
                head = hits[:rerank_depth]
                order = self.reranker.rerank(q, [h.declaration for h in head])
                hits = [Hit(head[pos].index, float(score), head[pos].declaration) for pos, score in order] + hits[
                    rerank_depth:
                ]
            results.append(hits[:k])
        return results

    def search(self, query: str, k: int = 10, *, mode: Mode = "hybrid", rerank: bool = False) -> list[Hit]:
        """The `k` best declarations for `query` (Lean, LaTeX or English), best first."""
        if not isinstance(query, str):
            raise InputError(f"query: expected a string, got {type(query).__name__}")
        return self.search_batch([query], k, mode=mode, rerank=rerank)[0]
