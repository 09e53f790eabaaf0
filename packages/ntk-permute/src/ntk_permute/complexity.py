"""Ensemble complexity: how many independent networks make the rounded ensemble mean exact (spec 2.8, 5, 6.2).

The mean of M independent members at (x, bit i) is N(μ_i(x), σ²(x)/M), and the output bits are independent GPs.
With the paper's sign rule (threshold 0; the 1e-10 tolerance changes nothing at this scale) a bit fails with
probability ``p = Φ(−|μ| √M / σ)``; μ and σ depend on the level m = popcount(x) only (`ntk_permute.closed_form`).

Ensemble sizes are the smallest integer M meeting a failure budget δ:

- single input of level m, **exact product**: ``1 − (1 − p_on)^m (1 − p_off)^(k − m) <= δ``; the worst input is
  m = 2 (`ensemble_size_single` with m=None takes the max over m: one search with every level at once, dropping a
  level as soon as it meets the budget);
- all 2^k − 1 inputs, **m-stratified union bound**: ``Σ_m C(k, m) [m p_on(m) + (k − m) p_off(m)] <= δ`` (log-space;
  the search starts from the crude bound below, an upper bracket, and drops the terms that are below e^−80 of the
  sum everywhere in the bracket, so most evaluations touch a few levels only);
- all inputs, **crude quadratic bound** (for comparison with the paper's O(k²)): the Chernoff bound
  ``Φ(−z) <= ½ e^{−z²/2}`` with the worst ratio r = max σ²/μ² for each of the k·2^k events:
  ``M = ⌈2 r ln(k·2^k/δ)⌉`` as written in the spec (the single-input analogue is ``⌈2 r ln(k/2δ)⌉``).

Training inputs (m = 1) are interpolated with zero variance and never fail.

Every size except the single input at a given level needs the statistics of all k levels (O(k) time and memory),
so k is limited to `MAX_K` (2^20: about a second per bound); larger k raise a ValueError up front instead of running for
minutes or running out of memory.
"""

from __future__ import annotations

import functools
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
    "MAX_K",
    "BitFailure",
    "all_inputs_failure",
    "bit_failure",
    "check_k",
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
#: Largest k for the sizes that need every level's statistics (all bounds but a single input at a given level).
MAX_K = 2**20
#: A union-bound term this many nats below the sum (everywhere in the search bracket) cannot change it in float64.
_NEGLIGIBLE_NATS = 80.0


def check_k(k: int, what: str = "k") -> int:
    """`k` as an int if it is in 1..`MAX_K`, else a ValueError naming `what` and the limit."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"{what}: must be an integer >= 1, got {k!r}")
    if k > MAX_K:
        raise ValueError(
            f"{what} {k}: above the limit {MAX_K} (2^20) of the ensemble sizes, which need the statistics of all k "
            "levels (O(k) time and memory)"
        )
    return int(k)


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


@functools.lru_cache(maxsize=2)
def _statistics(k: int, kind: GPKind, w_std: float, b_std: float) -> MForm:
    """The t = ∞ statistics of levels 2..k (cached: the CLI asks for several bounds and budgets at one k)."""
    k = check_k(k)
    form = m_form(k, _levels(k), kind=kind, w_std=w_std, b_std=b_std)
    bad_on = form.mu_on <= 0
    off = form.mu_off[~np.isnan(form.mu_off)]
    if bad_on.any() or (off >= 0).any():
        raise ValueError(
            f"the sign rule fails for k = {k} ({kind}-GP, w_std={w_std}, b_std={b_std}): some mean has the wrong "
            "sign, so no ensemble size makes the rounded mean exact"
        )
    for values in (form.m, form.mu_on, form.mu_off, form.variance):
        values.flags.writeable = False  # shared by the cache
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
    terms = _UnionTerms.of(k, _statistics(k, kind, w_std, b_std))
    return math.exp(float(logsumexp(terms.at(n_members))))


@dataclass(frozen=True)
class _UnionTerms:
    """The union bound's terms ``log(C(k, m)·count) + log Φ(−μ √M/σ)``, one per (level, on/off bit kind)."""

    weight: np.ndarray
    mu: np.ndarray
    sd: np.ndarray

    @classmethod
    def of(cls, k: int, form: MForm) -> _UnionTerms:
        m = form.m.astype(np.float64)
        sd = np.sqrt(form.variance)
        log_binom = gammaln(k + 1.0) - gammaln(m + 1.0) - gammaln(k - m + 1.0)
        has_off = ~np.isnan(form.mu_off)
        return cls(
            weight=np.concatenate([log_binom + np.log(m), log_binom[has_off] + np.log(k - m[has_off])]),
            mu=np.concatenate([form.mu_on, -form.mu_off[has_off]]),
            sd=np.concatenate([sd, sd[has_off]]),
        )

    def at(self, n_members: int, index: np.ndarray | None = None) -> np.ndarray:
        """The log-terms at ensemble size M (of the terms `index`, default all)."""
        if index is None:
            return self.weight + _log_fail(self.mu, self.sd, n_members)
        return self.weight[index] + _log_fail(self.mu[index], self.sd[index], n_members)


def _smallest(meets: Callable[[int], bool], low: int = 0) -> int:
    """The smallest M > `low` with `meets(M)` (`low`: a size known to fail, or 0), for a monotone predicate.

    Doubling from low + 1, then bisection. Every call after one with `meets(M)` false is at a larger M (callers may
    drop what that M settles).
    """
    high = low + 1
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


def _smallest_union(terms: _UnionTerms, log_delta: float, low: int) -> int:
    """The smallest M > `low` with log Σ terms(M) <= log δ (`low`: a size known to fail, or 0).

    Steps of ×16, then bisection. Once a size meets δ, terms below the sum there by `_NEGLIGIBLE_NATS` are dropped:
    each term decreases with M, so term(M) <= term(low) < sum(high) − 80 <= sum(M) − 80 for every M in
    [low, high], and dropping it cannot change the sum in float64.
    """
    index = np.arange(terms.weight.size)
    at_low: np.ndarray | None = None
    high = low + 1
    while True:
        values = terms.at(high, index)
        at_high = float(logsumexp(values))
        if at_high <= log_delta:
            break
        if high >= MAX_ENSEMBLE:
            raise ValueError(f"no ensemble size up to {MAX_ENSEMBLE} meets the failure budget")
        # Steps of 16: each step before a size meets δ costs a full O(k) evaluation, later ones are cheap.
        low, at_low, high = high, values, min(high * 16, MAX_ENSEMBLE)
    while high - low > 1:
        if at_low is not None:
            keep = at_low >= at_high - _NEGLIGIBLE_NATS
            if not keep.all():
                index, at_low = index[keep], at_low[keep]
        middle = (low + high) // 2
        values = terms.at(middle, index)
        total = float(logsumexp(values))
        if total <= log_delta:
            high, at_high = middle, total
        else:
            low, at_low = middle, values
    return high


def _level_ratios(form: MForm) -> np.ndarray:
    """max(σ²/μ_on², σ²/μ_off²) per level (the on-bit alone at m = k)."""
    on = form.variance / form.mu_on**2
    with np.errstate(invalid="ignore"):
        off = form.variance / form.mu_off**2
    return np.where(np.isnan(off), on, np.maximum(on, off))


def _single_lower(form: MForm, k: int, delta: float) -> int:
    """The exact single-input size at the level with the largest σ²/μ²: a lower bound on both searches below."""
    worst = np.array([int(np.argmax(_level_ratios(form)))])
    return _smallest(lambda n: bool(_single_failures(form, k, worst, n)[0] <= delta))


def _check_level(m: int | None, k: int) -> int | None:
    if m is None:
        return None
    if isinstance(m, bool) or not isinstance(m, int | np.integer) or not 1 <= m <= k:
        raise ValueError(f"m: must be an integer in 1..k = 1..{k}, got {m!r}")
    return int(m)


def _single_failures(form: MForm, k: int, index: np.ndarray, n_members: int) -> np.ndarray:
    """`single_input_failure` at the levels `form.m[index]`, elementwise (the same arithmetic, vectorised)."""
    root = math.sqrt(n_members)
    sd = np.sqrt(form.variance[index])
    levels = form.m[index].astype(np.float64)
    off = form.mu_off[index]
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ok = levels * log_ndtr(form.mu_on[index] * root / sd)
        log_off = (k - levels) * log_ndtr(-off * root / sd)
    log_ok = np.where(np.isnan(off), log_ok, log_ok + log_off)
    return -np.expm1(log_ok)


def ensemble_size_single(
    k: int,
    delta: float,
    *,
    m: int | None = None,
    kind: GPKind = "ntk",
    w_std: float = 1.0,
    b_std: float = 0.0,
) -> int:
    """Smallest M with P(the input with m ones is exact) >= 1 − δ (exact product); m=None: the worst m (m = 2).

    With m=None every level is searched at once (the answer is the smallest M that meets δ at all levels); a
    level that meets δ at a rejected M meets it at every larger M and is dropped, so the search is O(k) overall.
    """
    delta = _check_delta(delta)
    k = check_k(k)
    m = _check_level(m, k)
    if k < 2 or m == 1:
        return 1
    form = _statistics(k, kind, w_std, b_std)
    low = 0
    if m is None:
        # Lower bound: the size of the level with the largest ratio r_m. Upper bound per level (Chernoff,
        # Φ(−z) <= ½ e^{−z²/2}, at most k bits): 2 r_m ln(k/2δ). Levels whose upper bound is below the lower bound
        # meet δ wherever the answer can be (a 1% and +1 margin covers rounding).
        low = _single_lower(form, k, delta) - 1
        upper = 2.0 * _level_ratios(form) * math.log(k / (2.0 * delta))
        index = np.flatnonzero(upper * 1.01 + 1.0 >= low)
    else:
        index = np.array([m - 2])

    def meets(n_members: int) -> bool:
        nonlocal index
        settled = _single_failures(form, k, index, n_members) <= delta
        if settled.all():
            return True
        index = index[~settled]
        return False

    return _smallest(meets, low)


def ensemble_size_all(k: int, delta: float, *, kind: GPKind = "ntk", w_std: float = 1.0, b_std: float = 0.0) -> int:
    """Smallest M whose m-stratified union bound over all 2^k − 1 inputs is <= δ (k <= `MAX_K`: seconds)."""
    delta = _check_delta(delta)
    k = check_k(k)
    if k < 2:
        return 1
    form = _statistics(k, kind, w_std, b_std)
    # The union bound over all inputs is at least the failure of one input, so the worst level's single-input
    # size is a lower bound.
    return _smallest_union(_UnionTerms.of(k, form), math.log(delta), _single_lower(form, k, delta) - 1)


def _worst_ratio_of(form: MForm) -> tuple[float, int, str]:
    on = form.variance / form.mu_on**2
    with np.errstate(invalid="ignore"):
        off = np.where(np.isnan(form.mu_off), -np.inf, form.variance / np.nan_to_num(form.mu_off, nan=1.0) ** 2)
    if off.max() >= on.max():
        i = int(np.argmax(off))
        return float(off[i]), int(form.m[i]), "off"
    i = int(np.argmax(on))
    return float(on[i]), int(form.m[i]), "on"


def worst_ratio(k: int, *, kind: GPKind = "ntk", w_std: float = 1.0, b_std: float = 0.0) -> tuple[float, int, str]:
    """max over m >= 2 and bits of σ²/μ², with the level and bit ("on"/"off") where it is reached."""
    k = check_k(k)
    if k < 2:
        return 0.0, 1, "on"
    return _worst_ratio_of(_statistics(k, kind, w_std, b_std))


def _crude(k: int, delta: float, ratio: float) -> int:
    return max(1, math.ceil(2.0 * ratio * (math.log(k) + k * math.log(2.0) - math.log(delta))))


def ensemble_size_crude(k: int, delta: float, *, kind: GPKind = "ntk", w_std: float = 1.0, b_std: float = 0.0) -> int:
    """The crude all-input bound ``⌈2 r ln(k·2^k/δ)⌉`` with r the worst σ²/μ² (grows like k²)."""
    delta = _check_delta(delta)
    k = check_k(k)
    if k < 2:
        return 1
    ratio, _, _ = worst_ratio(k, kind=kind, w_std=w_std, b_std=b_std)
    return _crude(k, delta, ratio)


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
    k = check_k(k)
    if bound == "single":
        return ensemble_size_single(int(k), delta, m=m, kind=kind, w_std=w_std, b_std=b_std)
    if m is not None:
        raise ValueError(f"m: only meaningful with bound='single', got bound={bound!r}")
    if bound == "all":
        return ensemble_size_all(int(k), delta, kind=kind, w_std=w_std, b_std=b_std)
    if bound == "crude":
        return ensemble_size_crude(int(k), delta, kind=kind, w_std=w_std, b_std=b_std)
    raise ValueError(f"bound: expected one of {BOUNDS}, got {bound!r}")
