"""A static semantic embedding distilled from a sentence transformer over Mathlib's vocabulary (Model2Vec method).

Why: a sentence transformer (all-MiniLM-L6-v2) embeds about 20 declarations per second on a 2-core CPU, three
hours for all of Mathlib. The Model2Vec method (Tulkens & van Dongen, 2024) keeps most of such a model's lexical
semantics at a tiny fraction of the cost: run the teacher once on every *vocabulary item* alone, reduce the
outputs with PCA, and embed a text as the weighted mean of its items' vectors. Here the vocabulary is the
`LeanTokenizer`'s: every token that occurs in the corpus often enough, plus the English words of the teacher's
own vocabulary, so that queries and documents share one token space with BM25. A Mathlib name word is shown to
the teacher spelled out (`nhds` as "neighbourhoods", `geom` as "geometric"; `premise_search.naming`), which is
what lets "geometric series" land near `geom_sum_eq`.

At search time nothing but numpy runs: a text's vector is `Σ_t w_t · v_t` over its tokens, normalised, where
`w_t` is the caller's term weight (the BM25 posting weight for documents, the query term weight times idf for
queries). The shipped model (`data/static-minilm/`) is distilled by `scripts/distill_static_model.py`; its
vectors are stored as int8 with one float32 scale per row (`v_t = scale_t · q_t`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from premise_search.naming import NAME_WORDS, spell_name_word
from premise_search.tokenize import name_word_token
from repro_core.errors import InputError

__all__ = ["STATIC_MODEL_NAME", "StaticModel", "default_static_model_dir", "distill", "surface_form"]

logger = logging.getLogger(__name__)

#: Folder of the shipped static model inside the package data.
STATIC_MODEL_NAME = "static-minilm"


def default_static_model_dir() -> Path:
    """Where the shipped static model lives (`premise_search/data/static-minilm/`)."""
    return Path(str(resources.files("premise_search").joinpath("data", STATIC_MODEL_NAME)))


@functools.cache
def _spelled_tokens() -> dict[str, str]:
    """Index token of each Mathlib name word (`nhd` for `nhds`) -> its English spelling."""
    return {name_word_token(word): spell_name_word(word) for word in NAME_WORDS}


def surface_form(token: str) -> str:
    """What the teacher reads for a vocabulary token: a Mathlib name word spelled out, else the token itself."""
    return _spelled_tokens().get(token, token)


@dataclass(frozen=True)
class StaticModel:
    """Token -> vector table: `vocabulary` (token order), `vectors` `[n_tokens, dim]` float32, and `meta`.

    `meta` records the teacher, the PCA dimension and the vocabulary rule; `id` (stored in index manifests)
    names the model and a digest of its vectors, so a re-distilled model makes old indexes stale.
    """

    vocabulary: tuple[str, ...]
    vectors: np.ndarray
    meta: dict[str, Any]

    def __post_init__(self) -> None:
        if self.vectors.ndim != 2 or self.vectors.shape[0] != len(self.vocabulary):
            raise InputError(f"static model: {self.vectors.shape} vectors for {len(self.vocabulary)} tokens")

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    @property
    def id(self) -> str:
        return f"static:{self.meta.get('name', 'unnamed')}:{self.meta.get('digest', 'nodigest')}"

    def index(self) -> dict[str, int]:
        """Token -> row."""
        return {token: i for i, token in enumerate(self.vocabulary)}

    # -- persistence -----------------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write `vocab.txt`, `vectors.npy` (int8), `scales.npy` (float32) and `meta.json` to `directory`."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        peak = np.abs(self.vectors).max(axis=1)
        scales = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
        quantised = np.clip(np.rint(self.vectors / scales[:, None]), -127, 127).astype(np.int8)
        (directory / "vocab.txt").write_text("\n".join(self.vocabulary) + "\n", encoding="utf-8")
        np.save(directory / "vectors.npy", quantised)
        np.save(directory / "scales.npy", scales)
        digest = hashlib.sha256(quantised.tobytes() + scales.tobytes()).hexdigest()[:16]
        meta = {**self.meta, "digest": digest, "n_tokens": len(self.vocabulary), "dim": self.dim}
        (directory / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return directory

    @staticmethod
    def load_meta_id(directory: str | Path | None = None) -> str:
        """The `id` of a saved model (default: the shipped one), read from its `meta.json` alone."""
        directory = Path(directory) if directory is not None else default_static_model_dir()
        meta = _read_meta(directory)
        return f"static:{meta.get('name', 'unnamed')}:{meta.get('digest', 'nodigest')}"

    @classmethod
    def load(cls, directory: str | Path | None = None) -> StaticModel:
        """Read a saved model (default: the shipped one, loaded once per process); no pickle."""
        if directory is None:
            return _shipped_model()
        return cls._read(Path(directory))

    @classmethod
    def _read(cls, directory: Path) -> StaticModel:
        meta = _read_meta(directory)
        vocabulary = tuple((directory / "vocab.txt").read_text(encoding="utf-8").split("\n")[:-1])
        quantised = np.load(directory / "vectors.npy", allow_pickle=False)
        scales = np.load(directory / "scales.npy", allow_pickle=False)
        vectors = quantised.astype(np.float32) * scales[:, None]
        return cls(vocabulary, vectors, meta)

    # -- embedding -------------------------------------------------------------------------------------------
    def embed_weighted(self, rows: sp.csr_matrix) -> np.ndarray:
        """`[n, dim]` float32 unit rows from a `[n, n_tokens]` weight matrix (zero rows stay zero)."""
        out = np.asarray(rows @ self.vectors, dtype=np.float32)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)

    def embed_terms(self, terms: Sequence[Mapping[str, float]], index: Mapping[str, int] | None = None) -> np.ndarray:
        """Unit vectors of texts given as token -> weight mappings; tokens outside the vocabulary are ignored.

        Gathers the few rows a query uses (a sparse product would convert the whole table each call).
        """
        index = index if index is not None else self.index()
        out = np.zeros((len(terms), self.dim), dtype=np.float32)
        for i, mapping in enumerate(terms):
            pairs = [(index[t], w) for t, w in mapping.items() if t in index]
            if pairs:
                rows, weights = zip(*pairs, strict=True)
                out[i] = np.asarray(weights, dtype=np.float32) @ self.vectors[list(rows)]
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)


def _read_meta(directory: Path) -> dict[str, Any]:
    if not (directory / "meta.json").is_file():
        raise InputError("not a static model directory (no meta.json)", path=directory)
    meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
    if not isinstance(meta, dict):
        raise InputError("meta.json: expected a JSON object", path=directory / "meta.json")
    return meta


@functools.cache
def _shipped_model() -> StaticModel:
    return StaticModel._read(default_static_model_dir())


def distill(
    vocabulary: Sequence[str],
    encode: Any,
    *,
    dim: int = 256,
    meta: Mapping[str, Any] | None = None,
) -> StaticModel:
    """Distil a static model: `encode(list_of_texts) -> [n, d]` teacher outputs for each token's surface form.

    The teacher's vectors are centred and projected on their first `dim` principal components (PCA through an
    SVD of the `[n_tokens, d]` matrix), as in Model2Vec; no per-token normalisation, so the norm keeps how
    strongly a token carries meaning. Deterministic for a deterministic teacher (the SVD's sign is fixed so that
    each component's largest loading is positive).
    """
    if not vocabulary:
        raise InputError("distill: empty vocabulary")
    outputs = np.asarray(encode([surface_form(t) for t in vocabulary]), dtype=np.float64)
    if outputs.ndim != 2 or outputs.shape[0] != len(vocabulary):
        raise InputError(f"distill: the teacher returned shape {outputs.shape} for {len(vocabulary)} tokens")
    dim = min(int(dim), outputs.shape[1])
    centred = outputs - outputs.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    components = components[:dim]
    signs = np.sign(components[np.arange(dim), np.abs(components).argmax(axis=1)])
    components *= np.where(signs == 0, 1.0, signs)[:, None]
    vectors = (centred @ components.T).astype(np.float32)
    return StaticModel(tuple(vocabulary), vectors, {**(meta or {}), "pca_dim": dim})
