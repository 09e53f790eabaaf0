"""Standard-mode search: BM25, dense and name channels, reciprocal rank fusion, then an optional reranker.

Channels (each a ranking of the whole corpus):

- `bm25`: BM25 Okapi over the declaration text (name, module, signature, docstring, informal text);
- `name`: BM25 over the declaration name alone (split on dots, underscores and camelCase), the "name channel"
  LeanExplore also uses: a query that spells a name finds it even in a long signature-heavy corpus;
- `dense`: cosine similarity of `HashingEmbedder` vectors, exact top-k via `repro_core.kernels.topk_similarity`.

`hybrid` fuses the three by reciprocal rank fusion (Cormack, Clarke & Büttcher 2009):
`score(d) = Σ_c weight_c / (rrf_k + rank_c(d))`, rank 1-based, over each channel's top `candidates`;
ties go to the lower corpus index; rrf_k = 60 and the weights `DEFAULT_CHANNEL_WEIGHTS` by default.
`rerank=True` re-orders the top `rerank_depth` of the chosen mode with a `Reranker` (the deterministic
`FeatureReranker` by default); the rest keep their order below.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from premise_search.bm25 import BM25Config, SparseBM25, top_k_scores
from premise_search.corpus import Declaration
from premise_search.embed import HashingEmbedder, HashingEmbedderConfig
from premise_search.rerank import FeatureReranker, Reranker
from premise_search.tokenize import LeanTokenizer, TokenizerConfig
from repro_core.errors import ConfigError, InputError

__all__ = ["DEFAULT_CHANNEL_WEIGHTS", "MODES", "Hit", "IndexConfig", "SearchEngine", "document_text", "rrf_fuse"]

logger = logging.getLogger(__name__)

Mode = Literal["bm25", "name", "dense", "hybrid"]
#: Search modes (`name` is the name channel alone).
MODES: tuple[str, ...] = ("bm25", "name", "dense", "hybrid")
#: RRF weights of the hybrid channels. Picked from a small grid on MathlibQR (fair slice, embedded corpus):
#: equal weights let the weaker dense and name channels pull BM25's good ranks down (see the README).
DEFAULT_CHANNEL_WEIGHTS = {"bm25": 1.0, "dense": 0.5, "name": 0.2}


def document_text(decl: Declaration) -> str:
    """The text the `bm25` and `dense` channels index: name, module, signature, docstring, informal text."""
    parts = [decl.name, decl.module, decl.signature]
    for extra in (decl.docstring, decl.informal_name, decl.informal_description):
        if extra:
            parts.append(extra)
    return "\n".join(parts)


@dataclass(frozen=True)
class IndexConfig:
    """Everything that determines an index (a change means a rebuild), JSON round-trip.

    Attributes:
        tokenizer: `LeanTokenizer` options.
        bm25: BM25 parameters, shared by the text and name channels.
        embedder: `HashingEmbedder` options.
    """

    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    bm25: BM25Config = field(default_factory=BM25Config)
    embedder: HashingEmbedderConfig = field(default_factory=HashingEmbedderConfig)

    def __post_init__(self) -> None:
        for key, kind in (("tokenizer", TokenizerConfig), ("bm25", BM25Config), ("embedder", HashingEmbedderConfig)):
            if not isinstance(getattr(self, key), kind):
                raise ConfigError(f"IndexConfig.{key}: expected a {kind.__name__}")

    def to_dict(self) -> dict[str, Any]:
        return {"tokenizer": asdict(self.tokenizer), "bm25": asdict(self.bm25), "embedder": asdict(self.embedder)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | dict[str, Any]) -> IndexConfig:
        data = json.loads(text) if isinstance(text, str) else dict(text)
        unknown = set(data) - {"tokenizer", "bm25", "embedder"}
        if unknown:
            raise ConfigError(f"IndexConfig: unknown field(s) {sorted(unknown)}")
        return cls(
            tokenizer=TokenizerConfig.from_json(data.get("tokenizer", {})),
            bm25=BM25Config.from_json(data.get("bm25", {})),
            embedder=HashingEmbedderConfig.from_json(data.get("embedder", {})),
        )


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
    ) -> None:
        n = len(corpus)
        if not (text_bm25.n_docs == name_bm25.n_docs == embeddings.shape[0] == n):
            raise InputError(f"index parts disagree on the corpus size ({n} declarations)")
        if candidates < 1 or rerank_depth < 1:
            raise ConfigError("candidates and rerank_depth must be >= 1")
        self.corpus = list(corpus)
        self.config = config
        self.tokenizer = LeanTokenizer(config.tokenizer)
        self.text_bm25, self.name_bm25 = text_bm25, name_bm25
        self.embedder, self.embeddings = embedder, embeddings
        self.reranker: Reranker = reranker if reranker is not None else FeatureReranker(tokenizer=self.tokenizer)
        self.rrf_k, self.candidates, self.rerank_depth = float(rrf_k), int(candidates), int(rerank_depth)
        self.channel_weights = dict(DEFAULT_CHANNEL_WEIGHTS)
        if channel_weights:
            self.channel_weights.update(channel_weights)
        self._by_name: dict[str, int] = {}
        for i, decl in enumerate(self.corpus):
            self._by_name.setdefault(decl.name, i)

    @classmethod
    def build(cls, corpus: Sequence[Declaration], config: IndexConfig | None = None, **kwargs: Any) -> SearchEngine:
        """Tokenize, fit both BM25 channels and the embedder, and embed the corpus."""
        if len(corpus) == 0:
            raise InputError("cannot index an empty corpus")
        config = config if config is not None else IndexConfig()
        tokenizer = LeanTokenizer(config.tokenizer)
        text_tokens = [tokenizer.tokenize(document_text(d)) for d in corpus]
        name_tokens = [tokenizer.name_tokens(d.name) for d in corpus]
        text_bm25 = SparseBM25(config.bm25).fit(text_tokens)
        name_bm25 = SparseBM25(config.bm25).fit(name_tokens)
        embedder = HashingEmbedder(config.embedder)
        embeddings = embedder.fit_embed(text_tokens)
        logger.info("built an index of %d declarations (%d text terms)", len(corpus), len(text_bm25.vocabulary_))
        return cls(corpus, config, text_bm25, name_bm25, embedder, embeddings, **kwargs)

    def __len__(self) -> int:
        return len(self.corpus)

    def lookup(self, name: str) -> Declaration | None:
        """The declaration called `name` (first one if duplicated), or None."""
        i = self._by_name.get(name)
        return None if i is None else self.corpus[i]

    # -- channels -------------------------------------------------------------------------------------------
    def _dense_rankings(self, queries: Sequence[str], depth: int) -> list[tuple[np.ndarray, np.ndarray]]:
        from repro_core.kernels import topk_similarity

        vectors = self.embedder.embed([self.tokenizer.tokenize(q) for q in queries])
        scores, indices = topk_similarity(vectors, self.embeddings, min(depth, len(self)), metric="dot")
        return [(indices[i], scores[i].astype(np.float64)) for i in range(len(queries))]

    def _channel(self, channel: str, queries: Sequence[str], depth: int) -> list[tuple[np.ndarray, np.ndarray]]:
        if channel == "dense":
            return self._dense_rankings(queries, depth)
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
            channels = {c: self._channel(c, queries, depth) for c in ("bm25", "dense", "name")}
            ranked = []
            for i in range(len(queries)):
                lists = [channels[c][i][0] for c in channels]
                weights = [self.channel_weights[c] for c in channels]
                fused = rrf_fuse(lists, k=self.rrf_k, weights=weights)[:depth]
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
