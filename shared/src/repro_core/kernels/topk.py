"""Streaming top-k similarity search that never builds the full query-by-gallery score matrix.

`topk_similarity` walks over the gallery in chunks, scores each chunk against all queries (torch matmul, or a
Triton kernel that fuses the matmul with the metric on CUDA) and merges the chunk's best candidates into a running
top-k. Peak extra memory is one score block of `[query_block, chunk]` plus `O(n_queries * k)` (and, for cosine
and l2, an `[n_gallery]` vector of gallery norms), instead of the `[n_queries, n_gallery]` matrix of the naive
`queries @ gallery.T` + `torch.topk`. Rows whose top-k boundary is tied need a few boolean masks of their size,
so tie-heavy data can briefly need about one more block's worth.

On CPU, for blocks of up to `_BLAS_MAX_QUERIES` (32) queries, the float32/float64 product goes through numpy's
BLAS on zero-copy views of the same memory, for numpy and torch inputs alike (so both give the same scores): with
few queries the search is one matrix-vector pass over the gallery, and on the benchmark machine torch's CPU
product ran that pass at about half the memory bandwidth numpy's BLAS reaches; larger blocks use torch's product.
A gallery stored in a narrower dtype than the queries (a float16 gallery searched with float32 queries, to halve
its memory) is scored in the queries' dtype one cache-sized piece at a time on CPU, never widened whole.

Ties are broken by the lower gallery index, exactly and deterministically: `torch.topk` does not say which of
several equal values it returns, so each chunk takes `k + 1` candidates, and a row whose k-th and (k+1)-th values
are equal (a tie straddling the cut) is redone by threshold selection (everything better than the k-th value,
then the lowest indices holding it); the merge orders candidates by (score, index) with stable sorts. Random
float data almost never ties, so the fast path is a plain `topk` per chunk.

Scores are computed as (the Triton kernel uses the same operation order, so exact inputs give equal results):

- ``dot``:    ``q . g`` (higher is better);
- ``cosine``: ``((q . g) * (1 / ||q||)) * (1 / ||g||)``, with ``1 / ||x|| = 0`` for a zero vector, so a zero vector
  has cosine 0 with everything (higher is better);
- ``l2``:     ``sqrt(max(((-2 q . g) + ||g||^2) + ||q||^2, 0))``, the Euclidean distance (LOWER is better).
"""

from __future__ import annotations

import logging
import numbers
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from repro_core.kernels._common import as_float_tensor, resolve_backend
from repro_core.optional import require

if TYPE_CHECKING:
    import torch

__all__ = ["METRICS", "similarity_blocks", "topk_similarity"]

logger = logging.getLogger(__name__)

#: Accepted values of `topk_similarity(metric=...)`.
METRICS = ("cosine", "dot", "l2")

#: Bytes one score block may take, per device type. Tuned on a 2-core CPU with
#: `shared/benchmarks/bench_topk.py`: smaller blocks pay per-call overhead in `torch.topk`, larger ones fall
#: out of the last-level cache and cost memory.
_BLOCK_BUDGET_BYTES = {"cpu": 32 * 2**20, "cuda": 256 * 2**20}
_DEFAULT_BUDGET_BYTES = 32 * 2**20
#: Below this many gallery rows per chunk the per-chunk overhead dominates, so queries are split instead.
_MIN_CHUNK = 1024
#: Bytes of one widened piece of a narrower-dtype (e.g. float16) gallery on the CPU path: small enough to stay in
#: the last-level cache between the widening copy and the matrix product that reads it.
_WIDEN_BYTES = 8 * 2**20
#: Up to this many queries per block the CPU product goes through numpy's BLAS (`_numpy_blas_ok`), above it torch's.
_BLAS_MAX_QUERIES = 32
#: torch runs an elementwise CPU op on the calling thread below this many elements (ATen's `GRAIN_SIZE`); the
#: float16 widening copies slices smaller than this so that they never wake torch's threads (`_widen`).
_INLINE_ELEMENTS = 32768
#: CPU score blocks of a few queries (up to `_INLINE_TOPK_ROWS`) and up to `_INLINE_TOPK_ELEMENTS` scores are
#: selected one row at a time, on the calling thread (~5 ms of work at most), rather than by one `topk` that wakes
#: torch's threads right after BLAS's: on the loaded 2-core benchmark machine that switch cost more than the
#: parallelism saved. Larger blocks use all threads (and many rows would pay a Python call each).
_INLINE_TOPK_ELEMENTS = 2**21
_INLINE_TOPK_ROWS = 32


def _plan_blocks(n_queries: int, n_gallery: int, itemsize: int, device_type: str) -> tuple[int, int]:
    """(query_block, chunk) so that one `[query_block, chunk]` score block fits the device's byte budget.

    Why: the score block is the only large temporary, so bounding it bounds peak memory; the budget
    (`_BLOCK_BUDGET_BYTES`, ~32 MiB on CPU) keeps the block near the last-level cache. All queries are kept in one
    block unless that would force chunks below `_MIN_CHUNK` gallery rows, in which case queries are split too.
    The budget is fixed rather than derived from free memory (`repro_core.device.auto_chunk_size`): a block sized
    for the cache is faster than one sized for the RAM, and bounded memory is the point of streaming.
    """
    budget = _BLOCK_BUDGET_BYTES.get(device_type, _DEFAULT_BUDGET_BYTES)
    n_queries = max(n_queries, 1)
    chunk = budget // (n_queries * itemsize)
    if chunk >= _MIN_CHUNK or chunk >= n_gallery:
        return n_queries, max(1, min(chunk, n_gallery))
    chunk = min(_MIN_CHUNK, n_gallery)
    query_block = max(1, budget // (chunk * itemsize))
    return min(query_block, n_queries), chunk


def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name}: expected an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name}: must be >= {minimum}, got {value}")
    return int(value)


def topk_similarity(
    queries: torch.Tensor | np.ndarray,
    gallery: torch.Tensor | np.ndarray,
    k: int,
    metric: str = "cosine",
    chunk_size: int | None = None,
    backend: str = "auto",
) -> tuple[Any, Any]:
    """The `k` best gallery rows for every query, best first, without materialising all pairwise scores.

    Args:
        queries: `[n_queries, dim]` float tensor or numpy array.
        gallery: `[n_gallery, dim]`, same `dim`; tensors must be on the same device as `queries`.
        k: how many neighbours per query, `1 <= k <= n_gallery`.
        metric: "cosine" or "dot" (similarities, higher is better) or "l2" (Euclidean DISTANCES, lower is better:
            the returned scores are distances, sorted ascending).
        chunk_size: gallery rows scored per step; None picks it from a ~32 MiB score-block budget (CPU).
        backend: "torch", "triton" (fused Triton score kernel; CUDA, or CPU under `TRITON_INTERPRET=1`), or
            "auto" (Triton for CUDA float16/bfloat16/float32 inputs when triton is installed, else torch).

    Returns:
        `(scores, indices)`, both `[n_queries, k]`, best first; ties are broken by the lower gallery index.
        `scores` has the inputs' (promoted) floating dtype, `indices` is int64 (a float16 gallery searched with
        float32 queries is scored in float32, without a float32 copy of the gallery on CPU; float16 queries and
        gallery give float16 scores, torch's half-precision product). If both inputs are numpy arrays
        the results are numpy arrays; otherwise torch tensors on the inputs' device. Integer inputs are scored as
        float32. NaN scores rank in an unspecified position. Computed under `torch.no_grad()` (no autograd).

    Raises:
        ValueError: bad `k`, `metric`, `chunk_size` or `backend`; inputs that are not 2-D, whose `dim` differ,
            or that sit on different devices. `MissingExtraError` without torch (or triton for backend="triton").
    """
    torch = require("torch", "repro_core.kernels.topk_similarity")
    k = _check_int(k, "k", 1)
    if chunk_size is not None:
        chunk_size = _check_int(chunk_size, "chunk_size", 1)
    q, g, numpy_out, which, score_fn = _prepare(torch, queries, gallery, metric, backend)
    n_queries, n_gallery = q.shape[0], g.shape[0]
    if k > n_gallery:
        raise ValueError(f"k: {k} is larger than the gallery ({n_gallery} rows)")
    if chunk_size is None:
        query_block, chunk = _plan_blocks(n_queries, n_gallery, q.element_size(), q.device.type)
    else:
        query_block, chunk = max(n_queries, 1), min(chunk_size, n_gallery)
    logger.debug(
        "topk_similarity: %d x %d (dim %d), k=%d, metric=%s, backend=%s, query_block=%d, chunk=%d",
        n_queries,
        n_gallery,
        q.shape[1],
        k,
        metric,
        which,
        query_block,
        chunk,
    )

    scores = torch.empty((n_queries, k), dtype=q.dtype, device=q.device)
    indices = torch.empty((n_queries, k), dtype=torch.int64, device=q.device)
    largest = metric != "l2"
    with torch.no_grad():
        g_aux = _gallery_aux(torch, g, metric, q.dtype)
        for start in range(0, n_queries, query_block):
            stop = min(start + query_block, n_queries)
            vals, idx = _stream_block(torch, q[start:stop], g, g_aux, k, metric, chunk, largest, score_fn)
            scores[start:stop] = vals
            indices[start:stop] = idx
    if numpy_out:
        return scores.cpu().numpy(), indices.cpu().numpy()
    return scores, indices


def similarity_blocks(
    queries: torch.Tensor | np.ndarray,
    gallery: torch.Tensor | np.ndarray,
    metric: str = "cosine",
    query_block: int | None = None,
    backend: str = "auto",
) -> Iterator[tuple[int, Any]]:
    """All query-by-gallery scores, one `[query_block, n_gallery]` block of queries at a time.

    Why: metrics over the whole ranking (mAP, full CMC) need every score of a query, not its top k, and bounded
    memory needs blocks of queries. The scores are computed exactly as `topk_similarity` computes them (same
    operation order, so the same ties), and the gallery norms only once for all blocks.

    Args:
        queries, gallery, metric, backend: as `topk_similarity` ("l2" gives distances).
        query_block: queries per block; None picks it so a block takes about 32 MiB (one query at least).
    Yields:
        `(start, scores)`: `scores` are rows `start:start + len(scores)`, numpy if both inputs are numpy arrays,
        else torch tensors on the inputs' device (a new tensor per block, so callers may keep them).
    """
    torch = require("torch", "repro_core.kernels.similarity_blocks")
    if query_block is not None:
        query_block = _check_int(query_block, "query_block", 1)
    q, g, numpy_out, _, score_fn = _prepare(torch, queries, gallery, metric, backend)
    n_queries, n_gallery = q.shape[0], g.shape[0]
    if query_block is None:
        budget = _BLOCK_BUDGET_BYTES.get(q.device.type, _DEFAULT_BUDGET_BYTES)
        query_block = max(1, budget // max(n_gallery * q.element_size(), 1))
    with torch.no_grad():
        g_aux = _gallery_aux(torch, g, metric, q.dtype)
        for start in range(0, n_queries, query_block):
            block = q[start : start + query_block]
            out = torch.empty((block.shape[0], n_gallery), dtype=q.dtype, device=q.device)
            score_fn(torch, block, g, _row_aux(torch, block, metric), g_aux, metric, out)
            yield start, (out.cpu().numpy() if numpy_out else out)


def _prepare(
    torch: Any, queries: Any, gallery: Any, metric: str, backend: str
) -> tuple[torch.Tensor, torch.Tensor, bool, str, Any]:
    """Validated `(queries, gallery, numpy_out, backend name, score-block writer)`: 2-D float tensors on one device.

    The queries are converted to the promoted dtype of the pair, which is the dtype of the scores. The gallery is
    converted too, except on the CPU torch path, where `_torch_score_block` widens a narrower gallery piece by
    piece: converting a large float16 gallery whole would double its memory and cost a pass over it every call.
    A strided numpy gallery is wrapped as it is rather than copied, for the same reason.
    """
    if metric not in METRICS:
        raise ValueError(f"metric: expected one of {METRICS}, got {metric!r}")
    numpy_out = isinstance(queries, np.ndarray) and isinstance(gallery, np.ndarray)
    q = as_float_tensor(torch, queries, "queries")
    g = as_float_tensor(torch, gallery, "gallery", keep_strides=True)
    if isinstance(queries, np.ndarray) and not isinstance(gallery, np.ndarray):
        q = q.to(g.device)
    if isinstance(gallery, np.ndarray) and not isinstance(queries, np.ndarray):
        g = g.to(q.device)
    if q.ndim != 2:
        raise ValueError(f"queries: expected a 2-D [n_queries, dim] array, got shape {tuple(q.shape)}")
    if g.ndim != 2:
        raise ValueError(f"gallery: expected a 2-D [n_gallery, dim] array, got shape {tuple(g.shape)}")
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"gallery: dim {g.shape[1]} does not match the queries' dim {q.shape[1]}")
    if q.device != g.device:
        raise ValueError(f"gallery: on device {g.device}, but queries are on {q.device}")
    q = q.to(torch.promote_types(q.dtype, g.dtype))
    which, score_fn = _score_function(torch, q, backend)
    if g.dtype != q.dtype and (which != "torch" or g.device.type != "cpu"):
        g = g.to(q.dtype)
    return q, g, numpy_out, which, score_fn


def _score_function(torch: Any, q: torch.Tensor, backend: str) -> tuple[str, Any]:
    """`(backend name, score-block writer)`: the fused Triton kernel or the torch reference."""
    triton_dtypes = (torch.float16, torch.bfloat16, torch.float32)  # tl.dot has no float64 path
    which = resolve_backend(backend, q.device, triton_ok=q.dtype in triton_dtypes)
    if which == "triton" and q.dtype not in triton_dtypes:
        raise ValueError(f"backend: 'triton' supports float16, bfloat16 and float32, not {q.dtype}; use 'torch'")
    if which == "triton":
        from repro_core.kernels._triton_topk import score_block

        return which, score_block
    return which, _torch_score_block


def _row_aux(torch: Any, x: torch.Tensor, metric: str) -> torch.Tensor | None:
    """`x: [n, dim] -> [n]` per-row factor of the metric: 1/||x|| (cosine; 0 for a zero row), ||x||^2 (l2), None (dot).

    A plain sum of squares (exact for small integer data, which the tie tests rely on), in at least float32 so
    that half-precision norms cannot overflow; queries and gallery rows get theirs from the same code
    (`_sum_squares`, `_aux_from_squares`).
    """
    if metric == "dot":
        return None
    if x.dtype not in (torch.float32, torch.float64):
        x = x.float()
    sq = torch.empty(x.shape[0], dtype=x.dtype, device=x.device)
    _sum_squares(torch, x, sq)
    return _aux_from_squares(torch, sq, metric)


def _sum_squares(torch: Any, x: torch.Tensor, out: torch.Tensor) -> None:
    """`out[i] = sum_j x[i, j]^2` for float32/float64 `x: [n, dim]`, written into `out: [n]`.

    On CPU numpy's `einsum`: single-threaded, without a `[n, dim]` temporary, it took less than half the time of
    torch's threaded square-and-sum on the 2-core benchmark machine, and it leaves BLAS's threads alone (see
    `_numpy_blas_ok`). Elsewhere torch's `(x * x).sum(dim=1)`.
    """
    if x.device.type == "cpu" and x.layout == torch.strided:
        x_np = x.detach().numpy()
        np.einsum("ij,ij->i", x_np, x_np, out=out.detach().numpy())
    else:
        torch.sum(x * x, dim=1, out=out)


def _aux_from_squares(torch: Any, sq: torch.Tensor, metric: str) -> torch.Tensor:
    """`_row_aux` from the rows' sums of squares `sq: [n]` (overwritten for cosine).

    torch's square root (whose values the tests pin: it is not always numpy's correctly rounded one), then the
    reciprocal; on CPU the root in slices that run on the calling thread and the reciprocal with numpy (the same
    IEEE division), for the reason given in `_numpy_blas_ok`.
    """
    if metric == "l2":
        return sq
    if sq.device.type != "cpu":
        norms = torch.sqrt(sq)
        return torch.where(norms > 0, 1.0 / norms, torch.zeros_like(norms))
    for piece in sq.split(_INLINE_ELEMENTS - 64):  # a multiple of 64: torch's vector/scalar split stays put
        piece.sqrt_()
    norms = sq.detach().numpy()
    inv = np.zeros_like(norms)
    np.divide(1.0, norms, out=inv, where=norms > 0)
    return torch.from_numpy(inv)


def _gallery_aux(torch: Any, g: torch.Tensor, metric: str, dtype: torch.dtype) -> torch.Tensor | None:
    """`_row_aux` of the whole gallery `[n_gallery, dim] -> [n_gallery]` in `dtype` (at least float32), in pieces.

    Done once up front rather than per chunk. The temporaries (a narrower gallery, e.g. float16, widened to
    `dtype`; off the CPU also torch's `[piece, dim]` squares) are kept to a quarter of the block budget each, so
    that they never set the peak; on CPU a gallery in `dtype` needs none (`einsum`) and is done in one call.
    """
    if metric == "dot":
        return None
    dtype = torch.promote_types(dtype, torch.float32)
    n_gallery, dim = g.shape
    sq = torch.empty(n_gallery, dtype=dtype, device=g.device)
    if g.dtype == dtype and g.device.type == "cpu":
        _sum_squares(torch, g, sq)
        return _aux_from_squares(torch, sq, metric)
    budget = _BLOCK_BUDGET_BYTES.get(g.device.type, _DEFAULT_BUDGET_BYTES)
    piece = max(1, min(n_gallery, budget // (4 * max(dim, 1) * dtype.itemsize)))
    wide = None if g.dtype == dtype else torch.empty((piece, dim), dtype=dtype, device=g.device)
    for start in range(0, n_gallery, piece):
        stop = min(start + piece, n_gallery)
        x = g[start:stop]
        if wide is not None:
            _widen(torch, x, wide[: stop - start])
            x = wide[: stop - start]
        _sum_squares(torch, x, sq[start:stop])
    return _aux_from_squares(torch, sq, metric)


def _widen(torch: Any, src: torch.Tensor, dst: torch.Tensor) -> None:
    """`dst.copy_(src)` (a dtype conversion); on CPU in slices below torch's parallel grain, on the calling thread.

    Why: see `_widened_product` (torch's threads between BLAS calls cost far more than they save there).
    """
    if dst.device.type != "cpu":
        dst.copy_(src)
        return
    rows = max(1, (_INLINE_ELEMENTS - 1) // max(src.shape[1], 1))
    for d, s in zip(dst.split(rows), src.split(rows), strict=True):
        d.copy_(s)


def _torch_score_block(
    torch: Any,
    q: torch.Tensor,
    g: torch.Tensor,
    q_aux: torch.Tensor | None,
    g_aux: torch.Tensor | None,
    metric: str,
    out: torch.Tensor,
) -> None:
    """Write the `[n_q, n_g]` scores of `q: [n_q, dim]` against `g: [n_g, dim]` into `out`, in place.

    `g` may have a narrower dtype than `q` and `out` (CPU only; see `_prepare`): it is widened a cache-sized piece
    at a time. With few queries on CPU (`_numpy_blas_ok`) the product is numpy's BLAS and the cosine/l2 arithmetic
    numpy's single-threaded ufuncs on the same memory (IEEE products and sums: the same values torch gives), so
    that only BLAS's threads run; the l2 square root stays torch's, whose values the tests pin.
    """
    use_numpy = _numpy_blas_ok(torch, q, g, out)
    if use_numpy and g.dtype == q.dtype:
        np.matmul(q.detach().numpy(), g.detach().numpy().T, out=out.detach().numpy())
    elif g.dtype == q.dtype:
        torch.mm(q, g.t(), out=out)
    else:
        _widened_product(torch, q, g, out, use_numpy)
    if metric == "dot":
        return
    if not use_numpy:
        if metric == "cosine":
            out.mul_(q_aux[:, None]).mul_(g_aux[None, :])
        else:
            out.mul_(-2.0).add_(g_aux[None, :]).add_(q_aux[:, None]).clamp_(min=0).sqrt_()
        return
    o, qa, ga = out.detach().numpy(), q_aux.detach().numpy()[:, None], g_aux.detach().numpy()[None, :]
    if metric == "cosine":
        np.multiply(o, qa, out=o)
        np.multiply(o, ga, out=o)
    else:
        np.multiply(o, -2.0, out=o)
        np.add(o, ga, out=o)
        np.add(o, qa, out=o)
        np.maximum(o, 0.0, out=o)
        out.sqrt_()


def _numpy_blas_ok(torch: Any, q: torch.Tensor, g: torch.Tensor, out: torch.Tensor) -> bool:
    """Whether `q @ g.T` goes through numpy's BLAS: CPU float32/float64, at most `_BLAS_MAX_QUERIES` queries.

    Why: with few queries nearly all the work is one matrix-vector pass over the gallery, and on the 2-core
    benchmark machine torch's CPU `mm` ran it at about half the speed of numpy's OpenBLAS (60 vs 27 ms for
    256,000 x 512 float32). With many queries (a compute-bound product) torch's was as fast or faster in some
    shapes (256 queries x 200,000 x 128: 0.27 against 0.49 s), so larger blocks keep it.
    Nothing multi-threaded of torch's runs between the BLAS calls on this path: alternating torch's OpenMP threads
    with OpenBLAS's threads, whose idle threads keep spinning, cost up to a scheduler time slice per switch there.
    """
    if any(t.device.type != "cpu" or t.layout != torch.strided for t in (q, g, out)):
        return False
    return q.dtype in (torch.float32, torch.float64) and out.dtype == q.dtype and q.shape[0] <= _BLAS_MAX_QUERIES


def _widened_product(torch: Any, q: torch.Tensor, g: torch.Tensor, out: torch.Tensor, use_numpy: bool) -> None:
    """`out = q @ g.T` for a gallery narrower than `q` (float16), one cache-sized widened piece at a time.

    The gallery is never widened whole (that would double its memory and cost a pass over it every call): each
    piece is copied into a reused `_WIDEN_BYTES` buffer on the calling thread (`_widen`), which the product then
    reads from the cache. Widening with torch's threaded copy between numpy's BLAS calls took 0.5 s instead of
    0.03 s for 256,000 x 512 on the benchmark machine (see `_numpy_blas_ok`).
    """
    n_g, dim = g.shape
    rows = max(1, min(n_g, _WIDEN_BYTES // (max(dim, 1) * q.element_size())))
    wide = torch.empty((rows, dim), dtype=q.dtype, device=q.device)
    q_np, out_np, wide_np = (q.detach().numpy(), out.detach().numpy(), wide.numpy()) if use_numpy else (None,) * 3
    for start in range(0, n_g, rows):
        stop = min(start + rows, n_g)
        _widen(torch, g[start:stop], wide[: stop - start])
        if use_numpy:
            np.matmul(q_np, wide_np[: stop - start].T, out=out_np[:, start:stop])
        else:
            torch.mm(q, wide[: stop - start].t(), out=out[:, start:stop])


def _stream_block(
    torch: Any,
    q: torch.Tensor,
    g: torch.Tensor,
    g_aux_all: torch.Tensor | None,
    k: int,
    metric: str,
    chunk: int,
    largest: bool,
    score_fn: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Running top-k of the queries `q: [n_q, dim]` over the whole gallery, one chunk of rows at a time.

    `g_aux_all: [n_gallery]` is `_gallery_aux(g)`; `score_fn` writes one chunk's scores (torch or Triton).

    Returns `([n_q, k] scores, [n_q, k] int64 indices)` ordered by (score best first, index ascending).
    """
    n_q, n_gallery = q.shape[0], g.shape[0]
    q_aux = _row_aux(torch, q, metric)
    buffer = torch.empty(n_q * min(chunk, n_gallery), dtype=q.dtype, device=q.device)
    best_vals: torch.Tensor | None = None
    best_idx: torch.Tensor | None = None
    for offset in range(0, n_gallery, chunk):
        g_chunk = g[offset : offset + chunk]
        width = g_chunk.shape[0]
        g_aux = None if g_aux_all is None else g_aux_all[offset : offset + width]
        block = buffer[: n_q * width].view(n_q, width)
        score_fn(torch, q, g_chunk, q_aux, g_aux, metric, block)
        vals, pos = _chunk_candidates(torch, block, min(k, width), largest)
        pos = pos + offset
        if best_vals is None:
            best_vals, best_idx = vals, pos
        else:
            best_vals, best_idx = _merge(torch, best_vals, best_idx, vals, pos, k, largest)
    if best_vals is None or best_idx is None:  # n_gallery >= k >= 1, so this never happens
        raise RuntimeError("empty gallery")
    return _order(torch, best_vals, best_idx, largest)


def _chunk_candidates(torch: Any, block: torch.Tensor, kc: int, largest: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The `kc` best columns of each row of `block: [n_q, width]`, exact under ties (lowest column wins).

    The returned order within a row is unspecified (the merge orders it). `topk` with one extra candidate tells
    whether a tie straddles the cut: if the kc-th and (kc+1)-th values differ the selected set is exact. Rows where
    they are equal are redone by threshold selection (`_resolve_ties`), which costs a few passes over the row
    rather than a sort: sparse or quantised embeddings tie on almost every row (many exact zeros), so this path
    must be fast too.
    """
    width = block.shape[1]
    if kc >= width:
        positions = torch.arange(width, device=block.device).expand(block.shape[0], width)
        return block.clone(), positions
    n_rows = block.shape[0]
    if block.device.type == "cpu" and 1 < n_rows <= _INLINE_TOPK_ROWS and block.numel() <= _INLINE_TOPK_ELEMENTS:
        # one row at a time runs on the calling thread (see `_INLINE_TOPK_ELEMENTS`)
        pairs = [torch.topk(row, kc + 1, largest=largest, sorted=True) for row in block]
        vals, pos = torch.stack([v for v, _ in pairs]), torch.stack([p for _, p in pairs])
    else:
        vals, pos = torch.topk(block, kc + 1, dim=1, largest=largest, sorted=True)
    straddle = vals[:, kc] == vals[:, kc - 1]
    vals, pos = vals[:, :kc], pos[:, :kc]
    if bool(straddle.all()):  # common with sparse embeddings: skip the row copies
        return _resolve_ties(torch, block, vals, pos, largest)
    if bool(straddle.any()):
        rows = straddle.nonzero().squeeze(1)
        exact_vals, exact_pos = _resolve_ties(torch, block[rows], vals[rows], pos[rows], largest)
        vals = vals.index_copy(0, rows, exact_vals)
        pos = pos.index_copy(0, rows, exact_pos)
    return vals, pos


def _resolve_ties(
    torch: Any, rows: torch.Tensor, vals: torch.Tensor, pos: torch.Tensor, largest: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact `kc` best columns of `rows: [r, width]`, given `topk`'s `(vals, pos): [r, kc]` whose cut is tied.

    Every value strictly better than the kc-th value `t` is already in `topk`'s selection; the remaining places go
    to the lowest columns holding `t`, found with a second `topk` over column numbers (no sort, no cumsum: sparse
    or quantised embeddings tie on almost every row, so this path must be fast too). Rows whose threshold is NaN
    (never equal to itself) fall back to a stable sort.
    """
    r, kc = vals.shape
    threshold = vals[:, kc - 1 : kc]
    better = vals > threshold if largest else vals < threshold  # [r, kc], a prefix of each row
    need = kc - better.sum(dim=1, keepdim=True)  # >= 1: the threshold itself is in the selection
    width = rows.shape[1]
    columns = torch.arange(width, device=rows.device, dtype=torch.int32)
    tied_columns = torch.where(rows == threshold, columns, width)  # untied columns sort last
    n_need = int(need.max())
    lowest, _ = torch.topk(tied_columns, n_need, dim=1, largest=False, sorted=True)  # [r, n_need], ascending
    take = torch.arange(n_need, device=rows.device)[None, :] < need
    if bool((lowest.masked_fill(~take, 0) >= width).any()):  # NaN threshold: not enough tied columns
        exact_vals, exact_pos = torch.sort(rows, dim=1, descending=largest, stable=True)
        return exact_vals[:, :kc], exact_pos[:, :kc]
    keep = torch.cat([better, take], dim=1)  # exactly kc True per row
    positions = torch.cat([pos, lowest.to(pos.dtype)], dim=1)[keep].view(r, kc)
    return rows.gather(1, positions), positions


def _order(torch: Any, vals: torch.Tensor, idx: torch.Tensor, largest: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Sort each row of `(vals, idx): [n, m]` by (value best first, index ascending) with two stable sorts."""
    idx, perm = torch.sort(idx, dim=1)
    vals = vals.gather(1, perm)
    vals, perm = torch.sort(vals, dim=1, descending=largest, stable=True)
    return vals, idx.gather(1, perm)


def _merge(
    torch: Any,
    best_vals: torch.Tensor,
    best_idx: torch.Tensor,
    vals: torch.Tensor,
    idx: torch.Tensor,
    k: int,
    largest: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep the `k` best of the running `[n, k']` and the chunk's `[n, kc]` candidates, (score, index) exact."""
    all_vals, all_idx = _order(torch, torch.cat([best_vals, vals], dim=1), torch.cat([best_idx, idx], dim=1), largest)
    return all_vals[:, :k], all_idx[:, :k]
