"""The symmetric (k, m) closed form of the GP: O(1) work per (k, m), any k (spec 2.6).

A permutation only relabels outputs, so for the L2-normalised input x = 1_S/√m (|S| = m) the GP depends on (k, m)
alone. With the NTK parametrisation and unit-norm inputs the kernels depend on ρ = x·x' only: let a = Θ(1), b = Θ(0),
c = Θ(1/√m) (the driving kernel: Θ for the NTK-GP, K for the NNGP-GP) and A = K(1), B = K(0), C = K(1/√m). The
training Gram matrix ``(a − b) I + b 11ᵀ`` has eigenvalues λ1 = a − b (multiplicity k − 1) and λ2 = a + (k − 1) b
(eigenvector 1), so with g(λ) = (1 − e^{−ηλt})/λ (1/λ at t = ∞) and s_m = m c + (k − m) b the regression weights are

    w_on  = g(λ1) (c − s_m/k) + g(λ2) s_m/k,     w_off = g(λ1) (b − s_m/k) + g(λ2) s_m/k,

the means are μ_on = w_on (target-1 bits) and μ_off = w_off (target-0 bits), and the shared variance is

    σ² = A + (A − B)(m w_on² + (k − m) w_off²) + B (m w_on + (k − m) w_off)² − 2 (m w_on C + (k − m) w_off B).

At t = ∞ this equals the spec's μ_off = (b − β s_m)/(a − b) with β = b/(a + (k − 1) b). Biases are allowed
(inputs stay normalised); the parametrisation is always "ntk" here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ntk_permute.gp import GP_KINDS, GPKind
from ntk_permute.kernels import scalar_kernels

__all__ = ["MForm", "m_form", "sign_margin"]


@dataclass(frozen=True)
class MForm:
    """GP statistics per level m (number of ones), for one k.

    Attributes:
        k: input dimension.
        m: `[n]` levels (1 <= m <= k).
        mu_on: `[n]` mean of an output bit whose target is 1.
        mu_off: `[n]` mean of an output bit whose target is 0 (NaN at m = k, where there is none).
        variance: `[n]` variance σ² of every output bit at that input.
    """

    k: int
    m: np.ndarray
    mu_on: np.ndarray
    mu_off: np.ndarray
    variance: np.ndarray

    def as_rows(self) -> list[dict[str, float | int | None]]:
        """One dict per m (for tables and JSON; a missing off-bit is None)."""
        rows: list[dict[str, float | int | None]] = []
        for i, m in enumerate(self.m.tolist()):
            off = float(self.mu_off[i])
            rows.append(
                {
                    "m": int(m),
                    "mu_on": float(self.mu_on[i]),
                    "mu_off": None if math.isnan(off) else off,
                    "variance": float(self.variance[i]),
                }
            )
        return rows


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k: must be an integer >= 1, got {k!r}")
    return int(k)


def m_form(
    k: int,
    m: int | np.ndarray | list[int] | None = None,
    *,
    kind: GPKind = "ntk",
    t: float | None = None,
    learning_rate: float = 1.0,
    w_std: float = 1.0,
    b_std: float = 0.0,
) -> MForm:
    """μ_on(m), μ_off(m) and σ²(m) for the `kind` GP ("ntk" or "nngp") at time `t` (None = ∞).

    Args:
        k: input dimension (>= 1).
        m: levels to evaluate (default: all of 1..k).
        kind, t, learning_rate: as in `ntk_permute.gp.gp_predict`.
        w_std, b_std: σ_w, σ_b of the NTK-parametrised network.
    """
    k = _check_k(k)
    if kind not in GP_KINDS:
        raise ValueError(f"kind: expected one of {GP_KINDS}, got {kind!r}")
    if t is not None and (isinstance(t, bool) or not isinstance(t, int | float) or not t >= 0 or math.isinf(t)):
        raise ValueError(f"t: expected a finite time >= 0 or None for t = infinity, got {t!r}")
    if not (isinstance(learning_rate, int | float) and learning_rate > 0 and math.isfinite(learning_rate)):
        raise ValueError(f"learning_rate: must be a finite number > 0, got {learning_rate!r}")
    if isinstance(w_std, int | float) and not w_std > 0:
        raise ValueError(f"w_std: must be > 0 (sigma_w = 0 makes every kernel 0), got {w_std!r}")
    levels = np.arange(1, k + 1) if m is None else np.atleast_1d(np.asarray(m))
    if not np.issubdtype(levels.dtype, np.integer) or levels.ndim != 1 or levels.size == 0:
        raise ValueError(f"m: expected integer levels, got {m!r}")
    if levels.min() < 1 or levels.max() > k:
        raise ValueError(f"m: every level must be in 1..k = 1..{k}, got {levels.tolist()}")
    levels = levels.astype(np.int64)
    mf = levels.astype(np.float64)
    rho = 1.0 / np.sqrt(mf)
    k_c, theta_c = scalar_kernels(rho, k, w_std=w_std, b_std=b_std)
    k_ab, theta_ab = scalar_kernels(np.array([1.0, 0.0]), k, w_std=w_std, b_std=b_std)
    big_a, big_b = float(k_ab[0]), float(k_ab[1])
    if kind == "ntk":
        a, b, c = float(theta_ab[0]), float(theta_ab[1]), theta_c
    else:
        a, b, c = big_a, big_b, k_c
    # At m = 1 the input is a training point: c equals a exactly (avoid a last-bit difference from arccos).
    c = np.where(levels == 1, a, c)
    big_c = np.where(levels == 1, big_a, k_c)
    lam1, lam2 = a - b, a + (k - 1) * b
    if t is None:
        g1, g2 = 1.0 / lam1, 1.0 / lam2
    else:
        g1 = -math.expm1(-learning_rate * t * lam1) / lam1
        g2 = -math.expm1(-learning_rate * t * lam2) / lam2
    mean_part = (mf * c + (k - mf) * b) / k  # s_m / k
    w_on = g1 * (c - mean_part) + g2 * mean_part
    w_off = g1 * (b - mean_part) + g2 * mean_part
    n_off = k - mf
    variance = (
        big_a
        + (big_a - big_b) * (mf * w_on**2 + n_off * w_off**2)
        + big_b * (mf * w_on + n_off * w_off) ** 2
        - 2.0 * (mf * w_on * big_c + n_off * w_off * big_b)
    )
    if t is None:
        # A training input is interpolated: mean exactly e_π(j), variance exactly 0 (the formula leaves ~1e-17).
        ones = levels == 1
        w_on = np.where(ones, 1.0, w_on)
        w_off = np.where(ones, 0.0, w_off)
        variance = np.where(ones, 0.0, variance)
    variance = np.maximum(variance, 0.0)
    mu_off = np.where(levels == k, np.nan, w_off)
    return MForm(k=k, m=levels, mu_on=np.asarray(w_on, dtype=np.float64), mu_off=mu_off, variance=variance)


def sign_margin(k: int, *, kind: GPKind = "ntk", w_std: float = 1.0, b_std: float = 0.0) -> float:
    """min over 2 <= m <= k of min(μ_on(m), −μ_off(m)) at t = ∞: > 0 iff the sign rule is exact at every input."""
    k = _check_k(k)
    if k == 1:
        return 1.0
    form = m_form(k, np.arange(2, k + 1), kind=kind, w_std=w_std, b_std=b_std)
    off = -form.mu_off[~np.isnan(form.mu_off)]
    return float(min(form.mu_on.min(), off.min() if off.size else np.inf))
