"""Triton kernel for one score block of `topk_similarity`: the matmul fused with the metric.

Each program computes a `[BLOCK_Q, BLOCK_G]` tile of `q @ g.T` (float32 accumulation, IEEE precision rather than
TF32, so results match the torch path to rounding) and applies the metric in the epilogue, so the block is written
once. Selection and merging stay in torch (`repro_core.kernels.topk`), shared by both backends.

This module imports triton at import time; `repro_core.kernels.topk` imports it only when the Triton backend is
chosen. The kernel also runs on CPU tensors under `TRITON_INTERPRET=1` (slow; for tests).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import triton
import triton.language as tl

if TYPE_CHECKING:
    import torch

__all__ = ["score_block"]

#: Metric codes passed to the kernel as a compile-time constant.
_METRIC_CODE = {"dot": 0, "cosine": 1, "l2": 2}


@triton.jit
def _score_tile(
    q_ptr,
    g_ptr,
    out_ptr,
    q_aux_ptr,
    g_aux_ptr,
    n_q,
    n_g,
    dim,
    stride_qm,
    stride_qd,
    stride_gn,
    stride_gd,
    stride_om,
    METRIC: tl.constexpr,
    BLOCK_Q: tl.constexpr,
    BLOCK_G: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    pid_q = tl.program_id(0)
    pid_g = tl.program_id(1)
    rows = pid_q * BLOCK_Q + tl.arange(0, BLOCK_Q)
    cols = pid_g * BLOCK_G + tl.arange(0, BLOCK_G)
    row_ok = rows < n_q
    col_ok = cols < n_g
    acc = tl.zeros((BLOCK_Q, BLOCK_G), dtype=tl.float32)
    for d0 in range(0, dim, BLOCK_D):
        ds = d0 + tl.arange(0, BLOCK_D)
        d_ok = ds < dim
        q_tile = tl.load(
            q_ptr + rows[:, None] * stride_qm + ds[None, :] * stride_qd,
            mask=row_ok[:, None] & d_ok[None, :],
            other=0.0,
        )
        g_tile = tl.load(
            g_ptr + cols[:, None] * stride_gn + ds[None, :] * stride_gd,
            mask=col_ok[:, None] & d_ok[None, :],
            other=0.0,
        )
        acc = tl.dot(q_tile, tl.trans(g_tile), acc, input_precision="ieee")
    if METRIC == 1:  # cosine: ((q.g) * (1/|q|)) * (1/|g|), the torch path's order
        q_inv = tl.load(q_aux_ptr + rows, mask=row_ok, other=0.0).to(tl.float32)
        g_inv = tl.load(g_aux_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)
        acc = (acc * q_inv[:, None]) * g_inv[None, :]
    elif METRIC == 2:  # l2: sqrt(max(((-2 q.g) + |g|^2) + |q|^2, 0))
        q_sq = tl.load(q_aux_ptr + rows, mask=row_ok, other=0.0).to(tl.float32)
        g_sq = tl.load(g_aux_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)
        acc = ((acc * -2.0) + g_sq[None, :]) + q_sq[:, None]
        acc = tl.sqrt_rn(tl.maximum(acc, 0.0))
    tl.store(
        out_ptr + rows[:, None] * stride_om + cols[None, :],
        acc.to(out_ptr.dtype.element_ty),
        mask=row_ok[:, None] & col_ok[None, :],
    )


def score_block(
    torch: Any,
    q: torch.Tensor,
    g: torch.Tensor,
    q_aux: torch.Tensor | None,
    g_aux: torch.Tensor | None,
    metric: str,
    out: torch.Tensor,
) -> None:
    """Write the `[n_q, n_g]` metric scores of `q: [n_q, dim]` against `g: [n_g, dim]` into contiguous `out`.

    `q_aux`/`g_aux` are the `[n_q]`/`[n_g]` inverse norms (cosine) or squared norms (l2); None for dot.
    """
    n_q, dim = q.shape
    n_g = g.shape[0]
    block_q, block_g = 64, 64
    block_d = 32 if dim > 16 else 16
    if q_aux is None or g_aux is None:  # dot: the kernel never reads them, any pointer will do
        q_aux, g_aux = out, out
    grid = (triton.cdiv(n_q, block_q), triton.cdiv(n_g, block_g))
    _score_tile[grid](
        q,
        g,
        out,
        q_aux,
        g_aux,
        n_q,
        n_g,
        dim,
        q.stride(0),
        q.stride(1),
        g.stride(0),
        g.stride(1),
        out.stride(0),
        METRIC=_METRIC_CODE[metric],
        BLOCK_Q=block_q,
        BLOCK_G=block_g,
        BLOCK_D=block_d,
    )
