"""Triton elementwise kernel mapping Σ1 entries and diagonals to the ReLU NNGP and NTK (see `arccos`).

Triton has no portable arccos (libdevice calls do not run in the interpreter), so θ = arccos(c) is computed
from a cheap start (Abramowitz & Stegun 4.4.45, |error| <= 7e-5) refined by two steps of
``θ += sin θ* cos θ − cos θ* sin θ`` (= sin(θ* − θ), with sin θ* = sqrt((1 − c)(1 + c)) and cos θ* = c known).
Each step cubes the error (e -> ~e³/6), so two steps reach float64 rounding. It needs only sqrt, sin and cos,
which work on GPUs and in the interpreter.

This module imports triton at import time; `repro_core.kernels.arccos` imports it only for backend "triton".
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import triton
import triton.language as tl

if TYPE_CHECKING:
    import torch

__all__ = ["nngp_ntk_from_sigma"]

_BLOCK = 1024


@triton.jit
def _sqrt(x, IS_FP64: tl.constexpr):
    if IS_FP64:
        return tl.sqrt(x)  # float64 sqrt is correctly rounded
    else:
        return tl.sqrt_rn(x)  # float32: ask for the IEEE one, not the fast approximation


@triton.jit
def _arccos(c, s, pi, IS_FP64: tl.constexpr):
    """θ in [0, π] with cos θ = c, given s = sqrt((1 - c)(1 + c)); c must lie in [-1, 1]."""
    a = tl.abs(c)
    poly = ((-0.0187293 * a + 0.0742610) * a - 0.2121144) * a + 1.5707288
    start = _sqrt(tl.maximum(1.0 - a, 0.0), IS_FP64) * poly
    theta = tl.where(c < 0, pi - start, start)
    for _ in tl.static_range(2):
        theta = theta + (s * tl.cos(theta) - c * tl.sin(theta))
    return theta


@triton.jit
def _nngp_ntk_kernel(
    s12_ptr,
    s11_ptr,
    s22_ptr,
    consts_ptr,
    nngp_ptr,
    ntk_ptr,
    n1,
    n2,
    total,
    BLOCK: tl.constexpr,
    IS_FP64: tl.constexpr,
):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    ok = offs < total
    per_batch = n1 * n2
    batch = offs // per_batch
    rem = offs - batch * per_batch
    i = rem // n2
    j = rem - i * n2
    s12 = tl.load(s12_ptr + offs, mask=ok, other=0.0)
    s11 = tl.load(s11_ptr + batch * n1 + i, mask=ok, other=0.0)
    s22 = tl.load(s22_ptr + batch * n2 + j, mask=ok, other=0.0)
    pi = tl.load(consts_ptr)
    scale = tl.load(consts_ptr + 1)  # w² / (2π)
    b2 = tl.load(consts_ptr + 2)
    norm = _sqrt(s11 * s22, IS_FP64)
    positive = norm > 0
    safe = tl.where(positive, norm, 1.0)
    if IS_FP64:  # noqa: SIM108 - a compile-time (constexpr) branch, kept as a statement for Triton
        cos = s12 / safe
    else:
        cos = tl.math.div_rn(s12, safe)
    cos = tl.where(positive, cos, 0.0)
    cos = tl.minimum(tl.maximum(cos, -1.0), 1.0)
    sin = _sqrt(tl.maximum((1.0 - cos) * (1.0 + cos), 0.0), IS_FP64)
    pi_minus_theta = pi - _arccos(cos, sin, pi, IS_FP64)
    nngp = scale * norm * (sin + pi_minus_theta * cos) + b2
    ntk = nngp + scale * s12 * pi_minus_theta
    tl.store(nngp_ptr + offs, nngp, mask=ok)
    tl.store(ntk_ptr + offs, ntk, mask=ok)


def nngp_ntk_from_sigma(
    torch: Any, s12: torch.Tensor, s11: torch.Tensor, s22: torch.Tensor, w2: float, b2: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Triton version of `arccos._torch_nngp_ntk`: `s12: [..., n1, n2]`, `s11: [..., n1]`, `s22: [..., n2]`.

    Inputs are float32 or float64 with equal batch dims (already broadcast); returns `(nngp, ntk)` like `s12`.
    """
    shape = s12.shape
    n1, n2 = shape[-2], shape[-1]
    s12c = s12.contiguous()
    s11c = s11.contiguous()
    s22c = s22.contiguous()
    nngp = torch.empty(shape, dtype=s12.dtype, device=s12.device)
    ntk = torch.empty(shape, dtype=s12.dtype, device=s12.device)
    total = s12c.numel()
    if total == 0:
        return nngp, ntk
    # Constants travel as a tensor of the working dtype: Python floats would reach the kernel as float32.
    consts = torch.tensor([math.pi, w2 / (2.0 * math.pi), b2], dtype=s12.dtype, device=s12.device)
    grid = (triton.cdiv(total, _BLOCK),)
    _nngp_ntk_kernel[grid](
        s12c,
        s11c,
        s22c,
        consts,
        nngp,
        ntk,
        n1,
        n2,
        total,
        BLOCK=_BLOCK,
        IS_FP64=s12.dtype == torch.float64,
    )
    return nngp, ntk
