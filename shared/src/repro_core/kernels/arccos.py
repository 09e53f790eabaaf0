"""ReLU arc-cosine kernels: the NNGP and NTK of a two-layer ReLU network (Cho & Saul 2009), batched.

NTK parametrisation, as in neural-tangents (input dimension `d`, weight and bias standard deviations w, b):

- ``Σ1(x, x') = w² x·x'/d + b²``; ``cos θ = Σ1(x, x') / sqrt(Σ1(x, x) Σ1(x', x'))``
- NNGP ``K(x, x') = w² (1/2π) sqrt(Σ1(x, x) Σ1(x', x')) [sin θ + (π − θ) cos θ] + b²``
- NTK ``Θ(x, x') = K(x, x') + w² Σ1(x, x') (π − θ)/(2π)``

For bias-free unit-norm inputs with ρ = x·x' these reduce to ``K = (w⁴/2d) κ1(ρ)`` and
``Θ = (w⁴/2d) [κ1(ρ) + ρ κ0(ρ)]`` with the arc-cosine functions `kappa0`, `kappa1`.

Numerical choices: cos θ is clamped into [-1, 1]; where ``Σ1(x, x) Σ1(x', x') = 0`` (a zero input without bias)
cos θ is taken as 0 (θ = π/2), which makes both kernels exactly 0 there instead of NaN; with `x2` omitted the
diagonal of Σ1 is set from the squared norms, so θ = 0 exactly on the diagonal (otherwise a last-bit error in
cos θ ≈ 1 becomes a ~1e-4 error in θ in float32).
"""

from __future__ import annotations

import math
import numbers
import sys
from typing import TYPE_CHECKING, Any

import numpy as np

from repro_core.kernels._common import as_float_tensor, resolve_backend
from repro_core.optional import require

if TYPE_CHECKING:
    import torch

__all__ = ["check_std", "kappa0", "kappa1", "relu_nngp", "relu_nngp_ntk", "relu_ntk"]


def _is_tensor(value: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def kappa0(rho: Any) -> Any:
    """Zeroth arc-cosine function ``κ0(ρ) = (π − arccos ρ)/π`` (ρ clamped into [-1, 1]).

    It is E[step(u) step(v)] · 2 for unit-variance Gaussians with correlation ρ, and the derivative of `kappa1`.
    Accepts a float (returns a float), a numpy array (returns numpy) or a torch tensor (returns a tensor).
    """
    if _is_tensor(rho):
        torch = sys.modules["torch"]
        r = rho.clamp(-1.0, 1.0)
        return (math.pi - torch.acos(r)) / math.pi
    r = np.clip(np.asarray(rho, dtype=np.float64), -1.0, 1.0)
    out = (np.pi - np.arccos(r)) / np.pi
    return float(out) if np.ndim(rho) == 0 and not isinstance(rho, np.ndarray) else out


def kappa1(rho: Any) -> Any:
    """First arc-cosine function ``κ1(ρ) = (sqrt(1 − ρ²) + (π − arccos ρ) ρ)/π`` (ρ clamped into [-1, 1]).

    It is 2·E[relu(u) relu(v)] for unit-variance Gaussians with correlation ρ. Same input/output types as `kappa0`.
    """
    if _is_tensor(rho):
        torch = sys.modules["torch"]
        r = rho.clamp(-1.0, 1.0)
        root = torch.sqrt(((1.0 - r) * (1.0 + r)).clamp(min=0.0))
        return (root + (math.pi - torch.acos(r)) * r) / math.pi
    r = np.clip(np.asarray(rho, dtype=np.float64), -1.0, 1.0)
    out = (np.sqrt(np.clip((1.0 - r) * (1.0 + r), 0.0, None)) + (np.pi - np.arccos(r)) * r) / np.pi
    return float(out) if np.ndim(rho) == 0 and not isinstance(rho, np.ndarray) else out


def check_std(value: Any, name: str) -> float:
    """`value` as a float if it is a standard deviation (a finite real >= 0), else a ValueError naming `name`.

    Public so that kernel wrappers in the packages (e.g. ntk-permute's parametrisations) validate σ_w and σ_b
    exactly as `relu_nngp_ntk` does. Booleans are rejected, although Python counts them as integers.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name}: expected a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name}: must be finite and >= 0, got {value}")
    return value


def relu_nngp_ntk(
    x1: torch.Tensor | np.ndarray,
    x2: torch.Tensor | np.ndarray | None = None,
    *,
    w_std: float = 1.0,
    b_std: float = 0.0,
    backend: str = "auto",
) -> tuple[Any, Any]:
    """NNGP and NTK Gram matrices of a two-layer ReLU network in the NTK parametrisation.

    Args:
        x1: `[..., n1, d]` inputs; leading (batch) dims broadcast against those of `x2`.
        x2: `[..., n2, d]` inputs, or None for `x1` against itself (then the result is exactly symmetric).
        w_std: weight standard deviation σ_w (>= 0).
        b_std: bias standard deviation σ_b (>= 0).
        backend: "torch", "triton" (fused elementwise Triton kernel after the torch matmul; CUDA, or CPU under
            `TRITON_INTERPRET=1`; float32/float64) or "auto" (Triton for CUDA float32/float64 when installed).

    Returns:
        `(nngp, ntk)`, each `[..., n1, n2]` in the inputs' (promoted) floating dtype; numpy arrays when the inputs
        are numpy arrays, else torch tensors on the inputs' device. Integer inputs are computed in float32.
    """
    torch = require("torch", "repro_core.kernels.relu_nngp_ntk")
    w_std = check_std(w_std, "w_std")
    b_std = check_std(b_std, "b_std")
    numpy_out = isinstance(x1, np.ndarray) and (x2 is None or isinstance(x2, np.ndarray))
    symmetric = x2 is None or x2 is x1
    a = as_float_tensor(torch, x1, "x1")
    b = a if symmetric else as_float_tensor(torch, x2, "x2")
    if isinstance(x1, np.ndarray) and not numpy_out:
        a = a.to(b.device)
    if not numpy_out and x2 is not None and isinstance(x2, np.ndarray):
        b = b.to(a.device)
    if a.ndim < 2:
        raise ValueError(f"x1: expected [..., n1, d] with at least 2 dims, got shape {tuple(a.shape)}")
    if b.ndim < 2:
        raise ValueError(f"x2: expected [..., n2, d] with at least 2 dims, got shape {tuple(b.shape)}")
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f"x2: input dimension {b.shape[-1]} does not match x1's {a.shape[-1]}")
    if a.shape[-1] == 0:
        raise ValueError("x1: input dimension d must be >= 1")
    if a.device != b.device:
        raise ValueError(f"x2: on device {b.device}, but x1 is on {a.device}")
    try:
        batch = torch.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except RuntimeError as exc:
        raise ValueError(
            f"x2: batch dims {tuple(b.shape[:-2])} do not broadcast with x1's {tuple(a.shape[:-2])}"
        ) from exc
    dtype = torch.promote_types(a.dtype, b.dtype)
    a, b = a.to(dtype), b.to(dtype)
    which = resolve_backend(backend, a.device, triton_ok=dtype in (torch.float32, torch.float64))
    if which == "triton" and dtype not in (torch.float32, torch.float64):
        raise ValueError(f"backend: 'triton' supports float32 and float64, not {dtype}; use 'torch'")

    w2, b2, d = w_std * w_std, b_std * b_std, a.shape[-1]
    s11 = (a * a).sum(dim=-1) * (w2 / d) + b2  # [..., n1]
    s22 = s11 if symmetric else (b * b).sum(dim=-1) * (w2 / d) + b2  # [..., n2]
    s12 = torch.matmul(a, b.mT) * (w2 / d) + b2  # [..., n1, n2]
    if symmetric:
        s12 = (s12 + s12.mT) * 0.5
        s12.diagonal(dim1=-2, dim2=-1).copy_(s11)
    shape = (*batch, a.shape[-2], b.shape[-2])
    s12 = s12.expand(shape)
    s11 = s11.expand((*batch, a.shape[-2]))
    s22 = s22.expand((*batch, b.shape[-2]))
    if which == "triton":
        from repro_core.kernels._triton_arccos import nngp_ntk_from_sigma

        nngp, ntk = nngp_ntk_from_sigma(torch, s12, s11, s22, w2, b2)
    else:
        nngp, ntk = _torch_nngp_ntk(torch, s12, s11, s22, w2, b2)
    if numpy_out:
        return nngp.detach().cpu().numpy(), ntk.detach().cpu().numpy()
    return nngp, ntk


def _torch_nngp_ntk(
    torch: Any, s12: torch.Tensor, s11: torch.Tensor, s22: torch.Tensor, w2: float, b2: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Map Σ1 `s12: [..., n1, n2]` and its diagonals `s11: [..., n1]`, `s22: [..., n2]` to (NNGP, NTK)."""
    norm = torch.sqrt(s11[..., :, None] * s22[..., None, :])
    positive = norm > 0
    cos = torch.where(positive, s12 / torch.where(positive, norm, torch.ones_like(norm)), torch.zeros_like(s12))
    cos = cos.clamp(-1.0, 1.0)
    sin = torch.sqrt(((1.0 - cos) * (1.0 + cos)).clamp(min=0.0))
    pi_minus_theta = math.pi - torch.acos(cos)
    scale = w2 / (2.0 * math.pi)
    nngp = scale * norm * (sin + pi_minus_theta * cos) + b2
    ntk = nngp + scale * s12 * pi_minus_theta
    return nngp, ntk


def relu_nngp(
    x1: torch.Tensor | np.ndarray,
    x2: torch.Tensor | np.ndarray | None = None,
    *,
    w_std: float = 1.0,
    b_std: float = 0.0,
    backend: str = "auto",
) -> Any:
    """The NNGP kernel `[..., n1, n2]` of `relu_nngp_ntk` alone (same arguments)."""
    return relu_nngp_ntk(x1, x2, w_std=w_std, b_std=b_std, backend=backend)[0]


def relu_ntk(
    x1: torch.Tensor | np.ndarray,
    x2: torch.Tensor | np.ndarray | None = None,
    *,
    w_std: float = 1.0,
    b_std: float = 0.0,
    backend: str = "auto",
) -> Any:
    """The NTK `[..., n1, n2]` of `relu_nngp_ntk` alone (same arguments)."""
    return relu_nngp_ntk(x1, x2, w_std=w_std, b_std=b_std, backend=backend)[1]
