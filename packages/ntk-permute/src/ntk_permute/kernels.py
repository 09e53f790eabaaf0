"""NNGP and NTK kernels of the two-layer ReLU network `f(x) = V relu(W x + b1) + b2` (spec 2.2, 2.4, 4.4).

Two parametrisations:

- ``"ntk"`` (neural-tangents' default, the paper's theory): ``f(x) = (σ_w/√n) V relu((σ_w/√k) W x + σ_b b1) + σ_b b2``
  with every parameter N(0, 1). The Gram matrices come from `repro_core.kernels.relu_nngp_ntk` (torch, float64) and
  are returned as numpy arrays.
- ``"standard"`` with hidden width n (the official v1 experiments): weights N(0, σ_w²/fan_in), biases N(0, σ_b²), no
  multipliers in the forward pass. The NNGP is the same; the NTK is
  ``Θ_std = n·E[relu relu] + σ_w²·E[relu' relu']·(x·x' + β) + β`` with β = 1 when the biases are trained (also
  when σ_b = 0, as in the official code, where biases start at 0 but are trainable) and 0 otherwise. The n·(...)
  last-layer term dominates, which is why wide standard-parametrisation ensembles follow the NNGP-GP (spec 4.3).

`scalar_kernels` is the symmetric fast path: for L2-normalised inputs both kernels depend on ρ = x·x' alone, which
is all the (k, m) closed form of `ntk_permute.closed_form` needs (O(1) per value, any k).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from repro_core.kernels import check_std, kappa0, kappa1, relu_nngp_ntk

__all__ = [
    "PARAMETRIZATIONS",
    "Parametrization",
    "check_kernel_params",
    "kappa0",
    "kappa1",
    "nngp_ntk",
    "scalar_kernels",
]

Parametrization = Literal["ntk", "standard"]
#: Accepted values of every `parametrization` argument.
PARAMETRIZATIONS: tuple[str, ...] = ("ntk", "standard")


def check_kernel_params(
    w_std: float, b_std: float, parametrization: str, width: int | None
) -> tuple[float, float, str, int | None]:
    """Validate the kernel hyper-parameters; raise ValueError naming the bad argument."""
    w_std = check_std(w_std, "w_std")
    b_std = check_std(b_std, "b_std")
    if w_std == 0:
        raise ValueError("w_std: must be > 0 (a zero weight scale makes every kernel constant)")
    if parametrization not in PARAMETRIZATIONS:
        raise ValueError(f"parametrization: expected one of {PARAMETRIZATIONS}, got {parametrization!r}")
    if parametrization == "standard":
        if isinstance(width, bool) or not isinstance(width, int | np.integer) or width < 1:
            raise ValueError(f"width: the standard parametrisation needs the hidden width n >= 1, got {width!r}")
        width = int(width)
    return w_std, b_std, parametrization, width


def _as_inputs(x: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] < 1:
        raise ValueError(f"{name}: expected a [n, d] array with d >= 1, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: contains NaN or infinite values")
    return arr


def nngp_ntk(
    x1: np.ndarray,
    x2: np.ndarray | None = None,
    *,
    w_std: float = 1.0,
    b_std: float = 0.0,
    parametrization: Parametrization = "ntk",
    width: int | None = None,
    trainable_bias: bool | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """NNGP and NTK Gram matrices, float64.

    Args:
        x1: `[n1, d]` inputs (d = the network's input dimension k).
        x2: `[n2, d]` inputs, or None for `x1` against itself.
        w_std, b_std: σ_w (> 0) and σ_b (>= 0).
        parametrization: "ntk" or "standard".
        width: hidden width n (standard parametrisation only; the NTK parametrisation's kernels do not depend on it).
        trainable_bias: standard parametrisation: whether biases are trained (default: `b_std > 0`).

    Returns:
        `(nngp, ntk)`, each `[n1, n2]` float64 numpy arrays.
    """
    w_std, b_std, parametrization, width = check_kernel_params(w_std, b_std, parametrization, width)
    a = _as_inputs(x1, "x1")
    b = None if x2 is None else _as_inputs(x2, "x2")
    if b is not None and b.shape[1] != a.shape[1]:
        raise ValueError(f"x2: input dimension {b.shape[1]} does not match x1's {a.shape[1]}")
    nngp, ntk = relu_nngp_ntk(a, b, w_std=w_std, b_std=b_std, backend="torch")
    if parametrization == "ntk":
        return nngp, ntk
    assert width is not None  # checked above
    bias = float(b_std > 0 if trainable_bias is None else trainable_bias)
    other = a if b is None else b
    d = a.shape[1]
    w2, b2 = w_std * w_std, b_std * b_std
    dot = a @ other.T  # [n1, n2]
    s11 = np.einsum("ij,ij->i", a, a) * (w2 / d) + b2
    s22 = np.einsum("ij,ij->i", other, other) * (w2 / d) + b2
    s12 = dot * (w2 / d) + b2
    norm = np.sqrt(s11[:, None] * s22[None, :])
    cos = np.divide(s12, norm, out=np.zeros_like(s12), where=norm > 0)
    if b is None:
        np.fill_diagonal(cos, np.where(s11 > 0, 1.0, 0.0))
    relu_relu = (nngp - b2) / w2  # E[relu(h) relu(h')] under Σ1
    step_step = 0.5 * kappa0(cos)  # E[relu'(h) relu'(h')] = (π − θ)/(2π)
    ntk_std = width * relu_relu + bias + w2 * step_step * (dot + bias)
    return nngp, ntk_std


def scalar_kernels(
    rho: float | np.ndarray,
    k: int,
    *,
    w_std: float = 1.0,
    b_std: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """NNGP K(ρ) and NTK Θ(ρ) (NTK parametrisation) between two unit-norm inputs of dimension `k` with x·x' = ρ.

    Bias-free this is ``K = s κ1(ρ)``, ``Θ = s [κ1(ρ) + ρ κ0(ρ)]`` with s = σ_w⁴/(2k) (spec 2.4); with a bias the
    same recursion runs on ``Σ1(ρ) = σ_w² ρ/k + σ_b²``. Shapes follow `rho`.
    """
    w_std = check_std(w_std, "w_std")
    b_std = check_std(b_std, "b_std")
    rho = np.asarray(rho, dtype=np.float64)
    w2, b2 = w_std * w_std, b_std * b_std
    diag = w2 / k + b2  # Σ1(x, x) for a unit-norm x
    s12 = w2 * rho / k + b2
    cos = s12 / diag
    nngp = 0.5 * w2 * diag * kappa1(cos) + b2
    ntk = nngp + 0.5 * w2 * s12 * kappa0(cos)
    return np.asarray(nngp, dtype=np.float64), np.asarray(ntk, dtype=np.float64)
