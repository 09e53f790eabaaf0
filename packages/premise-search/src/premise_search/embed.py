"""A deterministic, offline dense embedder: hashed word and character n-gram features, tf-idf, a fixed projection.

Why this one: the paper's Qwen3-Embedding-8B cannot run here (no network, no GPU), and no installed package ships
weights we can load offline by default. This embedder needs numpy and scipy only, has no training, and gives the
same vectors on every machine. It complements BM25 by matching *parts* of words: `denumerability` shares most
character n-grams with `Denumerable`, `quasicategories` with `Quasicategory`, `commutator` with `commutatorMap`,
where BM25 on whole tokens sees nothing in common.

For each token of the `LeanTokenizer` output:

- one word feature `w:<token>` with weight `word_weight`, and
- the character n-grams (`ngram_min`..`ngram_max`) of `<token>` (with boundary marks), weight 1 each,

are hashed (crc32) into `n_features` buckets. A document's bucket weights are summed, dampened (`log1p`), scaled
by a smoothed idf fitted on the corpus (`ln((1 + N) / (1 + df)) + 1`), L2-normalised, and projected to `dim`
dimensions by a fixed sparse random matrix (each bucket -> `n_hashes` output dimensions with random signs
`±1/sqrt(n_hashes)`, drawn from `numpy.random.default_rng(seed)` and saved with the index). The result
`[n, dim]` float32 is L2-normalised, so cosine = dot product, and search is exact
(`repro_core.kernels.topk_similarity`). It is a lexical-fuzzy model, not a semantic one: it knows nothing that is
not spelled in the text.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from repro_core.errors import ConfigError, InputError

__all__ = ["HashingEmbedder", "HashingEmbedderConfig"]


@dataclass(frozen=True)
class HashingEmbedderConfig:
    """Options of `HashingEmbedder` (part of an index's identity).

    Attributes:
        dim: output dimension.
        n_features: hash buckets before the projection (a power of two is not required).
        ngram_min, ngram_max: character n-gram lengths (of the token with `<` `>` boundary marks).
        word_weight: weight of the whole-word feature relative to one n-gram.
        n_hashes: output dimensions each bucket is projected to.
        seed: seed of the projection.
    """

    dim: int = 512
    n_features: int = 2**18
    ngram_min: int = 3
    ngram_max: int = 5
    word_weight: float = 4.0
    n_hashes: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        for key in ("dim", "n_features", "ngram_min", "ngram_max", "n_hashes", "seed"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if key == "seed" else 1):
                raise ConfigError(f"HashingEmbedderConfig.{key}: expected a positive integer, got {value!r}")
        if self.ngram_max < self.ngram_min:
            raise ConfigError("HashingEmbedderConfig.ngram_max: must be >= ngram_min")
        if self.n_hashes > self.dim:
            raise ConfigError("HashingEmbedderConfig.n_hashes: must be <= dim")
        if not (isinstance(self.word_weight, int | float) and self.word_weight >= 0):
            raise ConfigError(f"HashingEmbedderConfig.word_weight: must be >= 0, got {self.word_weight!r}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | dict[str, Any]) -> HashingEmbedderConfig:
        data = json.loads(text) if isinstance(text, str) else dict(text)
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"HashingEmbedderConfig: unknown field(s) {sorted(unknown)}")
        return cls(**data)


class HashingEmbedder:
    """Token lists -> L2-normalised `[n, dim]` float32 vectors (see the module docstring).

    Attributes (fitted):
        idf_: `[n_features]` smoothed idf of the buckets.
        projection_: `[n_features, dim]` sparse CSR projection.
    """

    VERSION = 1

    def __init__(self, config: HashingEmbedderConfig | None = None) -> None:
        self.config = config if config is not None else HashingEmbedderConfig()
        self.idf_: np.ndarray | None = None
        self.projection_: sp.csr_matrix | None = None
        self._cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    @property
    def id(self) -> str:
        return f"hashing-v{self.VERSION}:{self.config.to_json()}"

    @property
    def dim(self) -> int:
        return self.config.dim

    def _token_features(self, token: str) -> tuple[np.ndarray, np.ndarray]:
        """(bucket ids, weights) of one token: its word feature and its character n-grams."""
        hit = self._cache.get(token)
        if hit is not None:
            return hit
        cfg = self.config
        keys = [f"w:{token}"]
        marked = f"<{token}>"
        for n in range(cfg.ngram_min, cfg.ngram_max + 1):
            keys.extend(marked[i : i + n] for i in range(len(marked) - n + 1))
        buckets = np.fromiter((zlib.crc32(k.encode("utf-8")) % cfg.n_features for k in keys), np.int64, len(keys))
        weights = np.ones(len(keys))
        weights[0] = cfg.word_weight
        out = (buckets, weights)
        if len(self._cache) < 500_000:
            self._cache[token] = out
        return out

    def _counts(self, docs: Sequence[Sequence[str]]) -> sp.csr_matrix:
        """Summed bucket weights `[n_docs, n_features]` = token counts `[n_docs, n_tokens]` @ token features.

        Working per distinct token (not per occurrence) keeps the Python loop short.
        """
        vocab: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        for d, doc in enumerate(docs):
            if isinstance(doc, str):
                raise InputError("expected a list of tokens, got a string (tokenize first)")
            for token in doc:
                col = vocab.get(token)
                if col is None:
                    col = vocab[token] = len(vocab)
                rows.append(d)
                cols.append(col)
        n_features = self.config.n_features
        tf = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(docs), len(vocab)))
        feats = [self._token_features(token) for token in vocab]
        indptr = np.zeros(len(feats) + 1, dtype=np.int64)
        indptr[1:] = np.cumsum([b.size for b, _ in feats])
        buckets = np.concatenate([b for b, _ in feats]) if feats else np.zeros(0, np.int64)
        weights = np.concatenate([w for _, w in feats]) if feats else np.zeros(0)
        table = sp.csr_matrix((weights, buckets, indptr), shape=(len(vocab), n_features))
        counts = (tf @ table).tocsr()
        counts.sum_duplicates()
        return counts

    def _make_projection(self) -> sp.csr_matrix:
        cfg = self.config
        rng = np.random.default_rng(cfg.seed)
        # n_hashes distinct output dims per bucket: the first n_hashes of a random permutation would be costly,
        # so draw with an offset trick: d0 uniform, then d0 + j * step (mod dim) with step in [1, dim).
        first = rng.integers(0, cfg.dim, size=cfg.n_features)
        step = rng.integers(1, max(cfg.dim, 2), size=cfg.n_features) if cfg.n_hashes > 1 else np.zeros(cfg.n_features)
        dims = (first[:, None] + np.arange(cfg.n_hashes)[None, :] * step[:, None]) % cfg.dim
        signs = rng.choice(np.array([-1.0, 1.0]), size=(cfg.n_features, cfg.n_hashes)) / np.sqrt(cfg.n_hashes)
        rows = np.repeat(np.arange(cfg.n_features), cfg.n_hashes)
        proj = sp.csr_matrix((signs.ravel(), (rows, dims.ravel().astype(np.int64))), shape=(cfg.n_features, cfg.dim))
        proj.sum_duplicates()  # a repeated dim (step * j = 0 mod dim) adds its signs
        return proj

    def fit(self, docs: Sequence[Sequence[str]]) -> HashingEmbedder:
        """Fit the bucket idf on `docs` (token lists) and draw the projection."""
        self._fit_counts(docs)
        return self

    def _fit_counts(self, docs: Sequence[Sequence[str]]) -> sp.csr_matrix:
        if len(docs) == 0:
            raise InputError("the embedder needs at least one document to fit")
        counts = self._counts(docs)
        df = np.bincount(counts.indices, minlength=self.config.n_features).astype(np.float64)
        n = counts.shape[0]
        self.idf_ = np.log((1.0 + n) / (1.0 + df)) + 1.0
        self.projection_ = self._make_projection()
        return counts

    def fit_embed(self, docs: Sequence[Sequence[str]]) -> np.ndarray:
        """`fit(docs)` then `embed(docs)`, hashing the documents once."""
        counts = self._fit_counts(docs)
        return self._embed_counts(counts)

    def embed(self, docs: Sequence[Sequence[str]]) -> np.ndarray:
        """`[len(docs), dim]` float32, rows of norm 1 (a document with no token gives the zero vector)."""
        if self.idf_ is None or self.projection_ is None:
            raise RuntimeError("HashingEmbedder.embed: call fit() first (or load a fitted state)")
        return self._embed_counts(self._counts(docs))

    def _embed_counts(self, counts: sp.csr_matrix) -> np.ndarray:
        assert self.idf_ is not None and self.projection_ is not None
        counts = counts.copy()
        counts.data = np.log1p(counts.data) * self.idf_[counts.indices]
        norms = np.sqrt(np.asarray(counts.multiply(counts).sum(axis=1)).ravel())
        dense = np.asarray((counts @ self.projection_).todense(), dtype=np.float64)
        dense /= np.where(norms > 0, norms, 1.0)[:, None]
        out_norms = np.linalg.norm(dense, axis=1, keepdims=True)
        dense = np.divide(dense, out_norms, out=np.zeros_like(dense), where=out_norms > 0)
        return dense.astype(np.float32)

    def state(self) -> dict[str, Any]:
        if self.idf_ is None or self.projection_ is None:
            raise RuntimeError("HashingEmbedder.state: not fitted")
        return {"config": asdict(self.config), "idf": self.idf_, "projection": self.projection_}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> HashingEmbedder:
        model = cls(HashingEmbedderConfig.from_json(state["config"]))
        idf = np.asarray(state["idf"], dtype=np.float64)
        projection = sp.csr_matrix(state["projection"])
        if idf.shape != (model.config.n_features,) or projection.shape != (model.config.n_features, model.dim):
            raise InputError("embedder state: idf or projection shape does not match the config")
        model.idf_, model.projection_ = idf, projection
        return model
