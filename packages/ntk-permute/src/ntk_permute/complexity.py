"""Ensemble complexity: how many independent networks make the rounded ensemble mean exact (spec 2.8, 5, 6.2).

The mean of M independent members at (x, bit i) is N(μ_i(x), σ²(x)/M), and the output bits are independent GPs.
With the paper's sign rule (threshold 0; the 1e-10 tolerance changes nothing at this scale) a bit fails with
probability ``p = Φ(−|μ| √M / σ)``; μ and σ depend on the level m = popcount(x) only (`ntk_permute.closed_form`).

Ensemble sizes are the smallest integer M meeting a failure budget δ:

- single input of level m, **exact product**: ``1 − (1 − p_on)^m (1 − p_off)^(k − m) <= δ``; the worst input is
  m = 2 (`ensemble_size_single` with m=None takes the max over m);
- all 2^k − 1 inputs, **m-stratified union bound**: ``Σ_m C(k, m) [m p_on(m) + (k − m) p_off(m)] <= δ`` (log-space,
  O(k) per M, any k);
- all inputs, **crude quadratic bound** (for comparison with the paper's O(k²)): the Chernoff bound
  ``Φ(−z) <= ½ e^{−z²/2}`` with the worst ratio r = max σ²/μ² for each of the k·2^k events:
  ``M = ⌈2 r ln(k·2^k/δ)⌉`` as written in the spec (the single-input analogue is ``⌈2 r ln(k/2δ)⌉``).

Training inputs (m = 1) are interpolated with zero variance and never fail.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.special import gammaln, log_ndtr, logsumexp

from ntk_permute.closed_form import MForm, m_form
from ntk_permute.gp import GPKind

__all__ = [
    "BOUNDS",
    "BitFailure",
    "all_inputs_failure",
    "bit_failure",
    "ensemble_size",
    "ensemble_size_all",
    "ensemble_size_crude",
    "ensemble_size_single",
    "single_input_failure",
    "worst_ratio",
]

Bound = Literal["single", "all", "crude"]
#: Accepted values of `ensemble_size(bound=...)`.
BOUNDS: tuple[str, ...] = ("single", "all", "crude")
#: Upper limit of the integer search (beyond this the bound is reported as an error, not a number).
MAX_ENSEMBLE = 10**15


def _check_delta(delta: float) -> float:
    if isinstance(delta, bool) or not isinstance(delta, int | float) or not 0 < delta < 1:
        raise ValueError(f"delta: the failure probability must be in (0, 1), got {delta!r}")
    return float(delta)


def _check_members(n_members: int) -> int:
    if isinstance(n_members, bool) or not isinstance(n_members, int | np.integer) or n_members < 1:
        raise ValueError(f"n_members: the ensemble size M must be an integer >= 1, got {n_members!r}")
    return int(n_members)


@dataclass(frozen=True)
class BitFailure:
    """Per-bit failure probabilities of an M-member ensemble, per level m (NaN where there is no such bit).

    Attributes:
        m: `[n]` levels.
        on: `[n]` P(an on-bit rounds to 0) = Φ(−μ_on √M/σ).
        off: `[n]` P(an off-bit rounds to 1) = Φ(−|μ_off| √M/σ) (NaN at m = k).
    """

    m: np.ndarray
    on: np.ndarray
    off: np.ndarray


def _levels(k: int) -> np.ndarray:
    return np.arange(2, k + 1, dtype=np.int64)


def _log_fail(mu: np.ndarray, sd: np.ndarray, n_members: int) -> np.ndarray:
    """log Φ(−μ √M/σ) for the correct sign of μ (μ > 0 for on-bits, −μ_off for off-bits), elementwise."""
    with np.errstate(divide="ignore", invalid="ignore"):
        z = mu * math.sqrt(n_members) / sd
    return log_ndtr(-z)


def _statistics(k: int, kind: GPKind, w_std: float, b_std: float) -> MForm:
    form = m_form(k, _levels(k), kind=kind, w_std=w_std, b_std=b_std)
    bad_on = form.mu_on <= 0
    off = form.mu_off[~np.isnan(form.mu_off)]
    if bad_on.any() or (off >= 0).any():
        raise ValueError(
            f"the sign rule fails for k = {k} ({kind}-GP, w_std={w_std}, b_std={b_std}): some mean has the wrong "
            "sign, so no ensemble size makes the rounded mean exact"
        )
    return form


def bit_failure(k: int, n_members: int, *, kind: GPKind = "ntk", w_std: float = 1.0, b_std: float = 0.0) -> BitFailure:
    """Per-bit failure probabilities for every level m = 2..k (m = 1 never fails) of an M-member ensemble."""
    n_members = _check_members(n_members)
    if k < 2:
        empty = np.zeros(0)
        return BitFailure(m=np.zeros(0, dtype=np.int64), on=empty, off=empty)
    form = _statistics(k, kind, w_std, b_std)
    sd = np.sqrt(form.variance)
    on = np.exp(_log_fail(form.mu_on, sd, n_members))
    off = np.exp(_log_fail(-np.nan_to_num(form.mu_off, nan=-1.0), sd, n_members))
    off = np.where(np.isnan(form.mu_off), np.nan, off)
    return BitFailure(m=form.m, on=on, off=off)


def single_input_failure(
    k: int, m: int, n_members: int, *, kind: GPKind = "ntk", w_std: float = 1.0, b_std: float = 0.0
) -> float:
    """P(an input with m ones is not exact) for an M-member ensemble, exact product over its k independent bits."""
    n_members = _check_members(n_members)
    if isinstance(m, bool) or not isinstance(m, int | np.integer) or not 1 <= m <= k:
        raise ValueError(f"m: must be an integer in 1..k = 1..{k}, got {m!r}")
    if m == 1:
        return 0.0
    form = _statistics(k, kind, w_std, b_std)
    i = int(m) - 2
    sd = math.sqrt(float(form.variance[i]))
    root = math.sqrt(n_members)
    log_ok = float(m) * float(log_ndtr(form.mu_on[i] * root / sd))
    if m < k:
        log_ok += float(k - m) * float(log_ndtr(-form.mu_off[i] * root / sd))
    return float(-math.expm1(log_ok))


def all_inputs_failure(
    k: int, n_members: int, *, kind: GPKind = "ntk", w_std: float = 1.0, b_std: float = 0.0
) -> float:
    """The m-stratified union bound on P(some nonzero input is not exact) (may exceed 1; it is a bound)."""
    n_members = _check_members(n_members)
    if k < 2:
        return 0.0
    return math.exp(_log_union(k, _statistics(k, kind, w_std, b_std), n_members))


def _log_union(k: int, form: MForm, n_members: int) -> float:
    m = form.m.astype(np.float64)
    sd = np.sqrt(form.variance)
    log_binom = gammaln(k + 1.0) - gammaln(m + 1.0) - gammaln(k - m + 1.0)
    terms = [log_binom + np.log(m) + _log_fail(form.mu_on, sd, n_members)]
    has_off = ~np.isnan(form.mu_off)
    if has_off.any():
        terms.append(
            log_binom[has_off] + np.log(k - m[has_off]) + _log_fail(-form.mu_off[has_off], sd[has_off], n_members)
        )
    return float(logsumexp(np.concatenate(terms)))


def _smallest(meets: Callable[[int], bool]) -> int:
    """The smallest M >= 1 with `meets(M)`, for a monotone predicate (doubling, then bisection)."""
    if meets(1):
        return 1
    low, high = 1, 2
    while not meets(high):
        low, high = high, high * 2
        if high > MAX_ENSEMBLE:
            raise ValueError(f"no ensemble size up to {MAX_ENSEMBLE} meets the failure budget")
    while high - low > 1:
        middle = (low + high) // 2
        if meets(middle):
            high = middle
        else:
            low = middle
    return high


def ensemble_size_single(
    k: int,
    delta: float,
    *,
    m: int | None = None,
    kind: GPKind = "ntk",
    w_std: float = 1.0,
    b_std: float = 0.0,
) -> int:
    """Smallest M with P(the input with m ones is exact) >= 1 − δ (exact product); m=None: the worst m (m = 2)."""
    delta = _check_delta(delta)
    if k < 2 or m == 1:
        if m is not None and not 1 <= m <= k:
            raise ValueError(f"m: must be an integer in 1..k = 1..{k}, got {m!r}")
        return 1
    levels = range(2, k + 1) if m is None else [m]
    return max(
        _smallest(
            lambda n, level=level: single_input_failure(k, level, n, kind=kind, w_std=w_std, b_std=b_std) <= delta
        )
        for level in levels
    )


def ensemble_size_all(k: int, delta: float, *, kind: GPKind = "ntk", w_std: float = 1.0, b_std: float = 0.0) -> int:
    """Smallest M whose m-stratified union bound over all 2^k − 1 inputs is <= δ (O(k) per evaluation, any k)."""
    delta = _check_delta(delta)
    if k < 2:
        return 1
    form = _statistics(k, kind, w_std, b_std)
    log_delta = math.log(delta)
    return _smallest(lambda n: _log_union(k, form, n) <= log_delta)


def worst_ratio(k: int, *, kind: GPKind = "ntk", w_std: float = 1.0, b_std: float = 0.0) -> tuple[float, int, str]:
    """max over m >= 2 and bits of σ²/μ², with the level and bit ("on"/"off") where it is reached."""
    if k < 2:
        return 0.0, 1, "on"
    form = _statistics(k, kind, w_std, b_std)
    on = form.variance / form.mu_on**2
    with np.errstate(invalid="ignore"):
        off = np.where(np.isnan(form.mu_off), -np.inf, form.variance / np.nan_to_num(form.mu_off, nan=1.0) ** 2)
    if off.max() >= on.max():
        i = int(np.argmax(off))
        return float(off[i]), int(form.m[i]), "off"
    i = int(np.argmax(on))
    return float(on[i]), int(form.m[i]), "on"


def ensemble_size_crude(k: int, delta: float, *, kind: GPKind = "ntk", w_std: float = 1.0, b_std: float = 0.0) -> int:
    """The crude all-input bound ``⌈2 r ln(k·2^k/δ)⌉`` with r the worst σ²/μ² (grows like k²)."""
    delta = _check_delta(delta)
    if k < 2:
        return 1
    ratio, _, _ = worst_ratio(k, kind=kind, w_std=w_std, b_std=b_std)
    return max(1, math.ceil(2.0 * ratio * (math.log(k) + k * math.log(2.0) - math.log(delta))))


def ensemble_size(
    k: int,
    delta: float,
    *,
    bound: Bound = "all",
    m: int | None = None,
    kind: GPKind = "ntk",
    w_std: float = 1.0,
    b_std: float = 0.0,
) -> int:
    """M(k, δ) for `bound` in "single" (exact product, level `m` or the worst), "all" (m-stratified) or "crude"."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k: must be an integer >= 1, got {k!r}")
    if bound == "single":
        return ensemble_size_single(int(k), delta, m=m, kind=kind, w_std=w_std, b_std=b_std)
    if m is not None:
        raise ValueError(f"m: only meaningful with bound='single', got bound={bound!r}")
    if bound == "all":
        return ensemble_size_all(int(k), delta, kind=kind, w_std=w_std, b_std=b_std)
    if bound == "crude":
        return ensemble_size_crude(int(k), delta, kind=kind, w_std=w_std, b_std=b_std)
    raise ValueError(f"bound: expected one of {BOUNDS}, got {bound!r}")
