"""Checco et al.'s Φ agreement (HCOMP 2017): the reference's Beta model, by Metropolis MCMC or maximum likelihood.

Reference model (`agreement_phi.run_phi`, spec §4.4): per item i the ratings on [lo, hi] are rescaled to
`y = (((x − lo)/(hi − lo))·(l − 1) + 0.5)/l` (l = the number of rating columns after padding) and
`y_ij ~ Beta(μ_i τ, (1 − μ_i) τ)`; Φ = 1 − 2^(1 − τ/2), so τ = 2 (uniform noise) gives 0 and τ → ∞ gives 1.
Priors: μ_i ~ Normal(0.5, sd 10^6) and τ ~ Normal(2, sd 10^6), i.e. flat on their supports (0, 1) and (0, ∞);
an item with a known gold value g gets μ_i ~ Normal(g rescaled, 1).

`method="mcmc"` (default; what the reference reports): a seeded random-walk Metropolis-within-Gibbs sampler over
(log τ, logit μ_i) with the Jacobians of those transforms, so its target is the reference's posterior. Given τ the
μ_i are independent, so all items are updated at once (one accept/reject per item), then τ; the likelihood only
needs the per-item sufficient statistics (n_i, Σ log y, Σ log(1 − y)), so an iteration costs O(n_items) and chains
are vectorised. Step sizes adapt during burn-in only. Φ is reported as the reference does: at the posterior *mean*
of τ, with the Φ of the τ HPD interval's bounds, plus Gelman-Rubin R̂ across chains. It matches the reference
*model*, not pymc3's sampler output (different proposals, chains and seeds).

`method="mle"`: the joint maximum-likelihood estimate of (τ, μ) by L-BFGS (the posterior mode under the flat
priors), with an optional item bootstrap interval (`repro_core.metrics.bootstrap_ci`).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, special

from repro_core.metrics import bootstrap_ci
from repro_core.optional import has_module
from repro_core.seeding import numpy_rng
from truth_crowd.schema import to_reliability_matrix

__all__ = [
    "PHI_METHODS",
    "PhiPosterior",
    "PhiResult",
    "gelman_rubin",
    "hpd_interval",
    "phi_agreement",
    "phi_by_item",
    "phi_from_tau",
    "phi_posterior",
    "rescale_for_phi",
]

logger = logging.getLogger(__name__)
_LOG_TAU_BOUNDS = (-10.0, 12.0)
#: |logit μ| bound of the sampler: keeps μ and 1 − μ away from 0 in float64 (a negligible truncation).
_LOGIT_BOUND = 30.0


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    """Run small dense problems (L-BFGS-B on ~200 parameters) on one BLAS thread when threadpoolctl is present.

    On a busy machine a multi-threaded OpenBLAS spin-waits: `_fit_tau` measured 0.19-0.30 s with two threads
    against 0.009 s with one (2-core machine under load). Without threadpoolctl this is a no-op.
    """
    if not has_module("threadpoolctl"):
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="blas"):
        yield


def phi_from_tau(tau: float | np.ndarray) -> float | np.ndarray:
    """Φ = 1 − 2^(1 − τ/2) (τ: the Beta precision)."""
    return 1.0 - np.power(2.0, 1.0 - np.asarray(tau, dtype=float) / 2.0)


def rescale_for_phi(ratings: np.ndarray, limits: tuple[float, float]) -> np.ndarray:
    """Map ratings `[n_items, n_cols]` on `limits` into (0, 1) as the reference does (NaN kept)."""
    lo, hi = float(limits[0]), float(limits[1])
    if not hi > lo:
        raise ValueError(f"limits must be (low, high) with high > low, got {limits!r}")
    x = np.asarray(ratings, dtype=float)
    finite = x[np.isfinite(x)]
    if finite.size and (finite.min() < lo or finite.max() > hi):
        raise ValueError(f"ratings fall outside limits {limits!r}: [{finite.min()}, {finite.max()}]")
    n_cols = x.shape[1]
    return (((x - lo) / (hi - lo)) * (n_cols - 1) + 0.5) / n_cols


def _fit_tau(
    y: np.ndarray, item: np.ndarray, n_items: int, start: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    """MLE of (log τ, logit μ) for observations `y: [n]` of items `item: [n]`; returns τ and the optimum vector."""
    log_y, log_1my = np.log(y), np.log1p(-y)
    if start is None:
        means = np.bincount(item, weights=y, minlength=n_items) / np.maximum(np.bincount(item, minlength=n_items), 1)
        start = np.concatenate([[np.log(2.0)], special.logit(np.clip(means, 1e-3, 1 - 1e-3))])

    def objective(params: np.ndarray) -> tuple[float, np.ndarray]:
        tau = np.exp(params[0])
        mu = special.expit(params[1:])
        a, b = mu[item] * tau, (1 - mu[item]) * tau
        ll = (a - 1) * log_y + (b - 1) * log_1my - special.betaln(a, b)
        digamma_ab = special.digamma(tau)
        g_a = log_y - special.digamma(a) + digamma_ab
        g_b = log_1my - special.digamma(b) + digamma_ab
        grad_tau = np.sum(g_a * a + g_b * b)
        grad_mu = np.bincount(item, weights=(g_a - g_b) * tau, minlength=n_items) * mu * (1 - mu)
        return -float(ll.sum()), -np.concatenate([[grad_tau], grad_mu])

    bounds = [_LOG_TAU_BOUNDS] + [(-15.0, 15.0)] * n_items
    result = optimize.minimize(objective, start, jac=True, method="L-BFGS-B", bounds=bounds)
    return float(np.exp(result.x[0])), result.x


def _item_profiles(
    y: np.ndarray,
    item: np.ndarray,
    n_items: int,
    log_tau: float,
    mu: np.ndarray,
    *,
    half_width: float = 2.0,
    n_grid: int = 81,
    newton_steps: int = 4,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-item profile log-likelihoods max_μ ℓ_i(μ, τ) on a grid of log τ: `(grid [G], profile [n_items, G])`.

    For fixed τ the Beta log-likelihood is concave in μ (d²/dμ² = −τ²(ψ'(a) + ψ'(b)) < 0; ψ' = ζ(2, ·)), so a few
    vectorised Newton steps from the full-data μ̂ find each item's optimum for every grid point at once.
    """
    grid = log_tau + np.linspace(-half_width, half_width, n_grid)
    tau = np.exp(grid)[:, None]  # [G, 1]
    log_y, log_1my = np.log(y)[None, :], np.log1p(-y)[None, :]
    m = np.broadcast_to(mu[item][None, :], (n_grid, y.size)).copy()  # [G, n] current μ of each observation's item
    flat = (item[None, :] + n_items * np.arange(n_grid)[:, None]).ravel()
    counts = np.bincount(item, minlength=n_items)[None, :]
    for _ in range(newton_steps):
        a, b = m * tau, (1 - m) * tau
        grad = tau * (log_y - log_1my - special.digamma(a) + special.digamma(b))
        hess = -(tau**2) * (_trigamma(a) + _trigamma(b))
        g_item = np.bincount(flat, weights=grad.ravel(), minlength=n_grid * n_items).reshape(n_grid, n_items)
        h_item = np.bincount(flat, weights=hess.ravel(), minlength=n_grid * n_items).reshape(n_grid, n_items)
        step = g_item / np.where(counts > 0, h_item, -1.0)
        mu_item = np.clip(_first(m, item, n_items) - step, 1e-6, 1 - 1e-6)
        m = mu_item[:, item]
    a, b = m * tau, (1 - m) * tau
    ll = (a - 1) * log_y + (b - 1) * log_1my - special.betaln(a, b)
    profile = np.bincount(flat, weights=ll.ravel(), minlength=n_grid * n_items).reshape(n_grid, n_items)
    return grid, profile.T


def _trigamma(x: np.ndarray) -> np.ndarray:
    """ψ'(x) for x > 0 by six recurrence steps and the asymptotic series (relative error < 1e-9; scipy's
    `zeta(2, x)` is ~30x slower on large arrays and this only feeds Newton steps)."""
    x = np.asarray(x, dtype=float)
    total = np.zeros_like(x)
    for k in range(6):
        total += 1.0 / (x + k) ** 2
    z = x + 6.0
    inv = 1.0 / z
    inv2 = inv * inv
    return total + inv + 0.5 * inv2 + inv * inv2 * (1.0 / 6.0 - inv2 * (1.0 / 30.0 - inv2 * (1.0 / 42.0 - inv2 / 30.0)))


def _first(m: np.ndarray, item: np.ndarray, n_items: int) -> np.ndarray:
    """The per-item value `[G, n_items]` of a per-observation array `m: [G, n]` constant within items."""
    first = np.zeros(n_items, dtype=np.int64)
    first[item[::-1]] = np.arange(item.size)[::-1]
    return m[:, first]


def _grid_argmax(grid: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Maximiser over `grid [G]` of each row of `values [b, G]`, refined by a parabola through the top 3 points."""
    k = np.clip(values.argmax(axis=1), 1, grid.size - 2)
    rows = np.arange(values.shape[0])
    left, mid, right = values[rows, k - 1], values[rows, k], values[rows, k + 1]
    denom = left - 2 * mid + right
    shift = np.where(denom < 0, 0.5 * (left - right) / np.where(denom < 0, denom, -1.0), 0.0)
    return grid[k] + np.clip(shift, -1, 1) * (grid[1] - grid[0])


#: Estimators of `phi_agreement`: Metropolis posterior (the reference's report) or maximum likelihood.
PHI_METHODS: tuple[str, ...] = ("mcmc", "mle")


def hpd_interval(samples: np.ndarray, mass: float = 0.95) -> tuple[float, float]:
    """Highest-posterior-density interval of 1-D `samples [n]`: the shortest window holding `mass` of them."""
    x = np.sort(np.asarray(samples, dtype=float).ravel())
    if x.size == 0 or not 0 < mass < 1:
        raise ValueError(f"hpd_interval needs samples and 0 < mass < 1, got {x.size} samples, mass={mass}")
    k = min(max(int(np.ceil(mass * x.size)), 1), x.size)
    widths = x[k - 1 :] - x[: x.size - k + 1]
    i = int(np.argmin(widths))
    return float(x[i]), float(x[i + k - 1])


def gelman_rubin(chains: np.ndarray) -> float:
    """Potential scale reduction R̂ of `chains [n_chains, n_draws]` (Gelman & Rubin 1992; ≈ 1 when mixed)."""
    x = np.asarray(chains, dtype=float)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 2:
        return float("nan")
    n = x.shape[1]
    within = x.var(axis=1, ddof=1).mean()
    between = n * x.mean(axis=1).var(ddof=1)
    if within == 0:
        return float("nan")
    return float(np.sqrt(((n - 1) / n * within + between / n) / within))


@dataclass(frozen=True)
class PhiPosterior:
    """Metropolis draws: `tau [P, n_chains, n_draws]`, `mu_mean [P, n_items]`, acceptances `[P]` for a batch of P
    problems (`phi_posterior` returns one problem: `tau [n_chains, n_draws]`, `mu_mean [n_items]`, floats)."""

    tau: np.ndarray
    mu_mean: np.ndarray
    acceptance_tau: np.ndarray | float
    acceptance_mu: np.ndarray | float


@dataclass(frozen=True)
class _Problem:
    """One Φ fit: observations `y [n]` in (0, 1) of items `item [n]`, rescaled gold values `gold [n_items]` or None."""

    y: np.ndarray
    item: np.ndarray
    n_items: int
    gold: np.ndarray | None


def _sample(
    problems: Sequence[_Problem],
    starts: Sequence[tuple[float, np.ndarray]],
    *,
    n_samples: int,
    n_burn: int,
    n_chains: int,
    seed: int,
) -> PhiPosterior:
    """Random-walk Metropolis-within-Gibbs on (log τ, logit μ) for P problems at once (arrays `[P, C, I]`).

    Per item the log-likelihood is `(a − 1) S1 + (b − 1) S2 − n (lnΓ(a) + lnΓ(b) − lnΓ(τ))` with a = μτ, b = (1 − μ)τ
    and S1 = Σ log y, S2 = Σ log(1 − y): `part` caches everything but the lnΓ(τ) term, which is constant in a μ
    update and one number per chain in a τ update. Given τ the μ_i are independent, so all items move at once (one
    accept/reject per item), then τ. Problems are padded to the largest item count with empty items (n = 0: no
    likelihood, they never touch τ). Step sizes adapt during burn-in only (Robbins-Monro towards 44% acceptance).
    """
    if n_samples < 2 or n_burn < 0 or n_chains < 1:
        raise ValueError(f"need n_samples >= 2, n_burn >= 0, n_chains >= 1; got {n_samples}, {n_burn}, {n_chains}")
    rng = numpy_rng(seed, "phi-mcmc")
    n_p, width = len(problems), max(pr.n_items for pr in problems)
    n, s1, s2 = np.zeros((n_p, 1, width)), np.zeros((n_p, 1, width)), np.zeros((n_p, 1, width))
    g, has_gold = np.zeros((n_p, 1, width)), np.zeros((n_p, 1, width), dtype=bool)
    m0 = np.zeros((n_p, 1, width))
    for k, (pr, (_, mu0)) in enumerate(zip(problems, starts, strict=True)):
        n[k, 0, : pr.n_items] = np.bincount(pr.item, minlength=pr.n_items)
        s1[k, 0, : pr.n_items] = np.bincount(pr.item, weights=np.log(pr.y), minlength=pr.n_items)
        s2[k, 0, : pr.n_items] = np.bincount(pr.item, weights=np.log1p(-pr.y), minlength=pr.n_items)
        m0[k, 0, : pr.n_items] = special.logit(np.clip(mu0, 1e-4, 1 - 1e-4))
        if pr.gold is not None:
            has_gold[k, 0, : pr.n_items] = np.isfinite(pr.gold)
            g[k, 0, : pr.n_items] = np.where(np.isfinite(pr.gold), pr.gold, 0.0)
    n_total = n.sum(axis=(1, 2))[:, None]  # [P, 1]
    tau0 = np.log(np.array([st[0] for st in starts], dtype=float))[:, None]
    t = tau0 + 0.05 * rng.standard_normal((n_p, n_chains))  # [P, C] log τ
    m = m0 + 0.05 * rng.standard_normal((n_p, n_chains, width))  # [P, C, I] logit μ

    def part_of(mu: np.ndarray, tau: np.ndarray) -> np.ndarray:
        # [P, C, I]: the item log-likelihood without its n·lnΓ(τ) term.
        a, b = mu * tau[..., None], (1.0 - mu) * tau[..., None]
        return (a - 1.0) * s1 + (b - 1.0) * s2 - n * (special.gammaln(a) + special.gammaln(b))

    def prior_of(mu: np.ndarray) -> np.ndarray:
        # [P, C, I]: log Jacobian of logit (flat prior on μ) plus the gold items' Normal(g, 1) prior.
        return np.log(mu) + np.log1p(-mu) - 0.5 * has_gold * (mu - g) ** 2

    mu = special.expit(m)
    part, prior = part_of(mu, np.exp(t)), prior_of(mu)
    step_m = np.where(n > 0, 0.5, 0.0) * np.ones(m.shape)  # padded items stay put
    step_t = np.full(t.shape, 0.1)
    draws = np.empty((n_p, n_chains, n_samples))
    mu_sum = np.zeros((n_p, width))
    accepted_t, accepted_m = np.zeros(n_p), np.zeros(n_p)
    real = (n > 0).astype(float)  # [P, 1, I] items with data (acceptance is averaged over them)
    for it in range(n_burn + n_samples):
        # μ block: one accept/reject per item and chain.
        m_new = np.clip(m + step_m * rng.standard_normal(m.shape), -_LOGIT_BOUND, _LOGIT_BOUND)
        mu_new = special.expit(m_new)
        part_new, prior_new = part_of(mu_new, np.exp(t)), prior_of(mu_new)
        accept = np.log(rng.random(m.shape)) < (part_new + prior_new) - (part + prior)
        m = np.where(accept, m_new, m)
        mu = np.where(accept, mu_new, mu)
        part = np.where(accept, part_new, part)
        prior = np.where(accept, prior_new, prior)
        # τ: the summed likelihood plus the log Jacobian of log τ (flat prior on τ).
        t_new = np.maximum(t + step_t * rng.standard_normal(t.shape), _LOG_TAU_BOUNDS[0])
        part_t = part_of(mu, np.exp(t_new))
        log_ratio = (
            part_t.sum(axis=-1)
            - part.sum(axis=-1)
            + n_total * (special.gammaln(np.exp(t_new)) - special.gammaln(np.exp(t)))
            + (t_new - t)
        )
        accept_t = np.log(rng.random(t.shape)) < log_ratio
        t = np.where(accept_t, t_new, t)
        part = np.where(accept_t[..., None], part_t, part)
        if it < n_burn:
            rate = 1.0 / np.sqrt(it + 1.0)
            step_m *= np.exp(rate * (accept - 0.44))
            step_t *= np.exp(rate * (accept_t - 0.44))
        else:
            draws[..., it - n_burn] = np.exp(t)
            mu_sum += mu.mean(axis=1)
            accepted_t += accept_t.mean(axis=1)
            accepted_m += (accept * real).sum(axis=(1, 2)) / (real.sum(axis=(1, 2)) * n_chains)
    return PhiPosterior(draws, mu_sum / n_samples, accepted_t / n_samples, accepted_m / n_samples)


def phi_posterior(
    y: np.ndarray,
    item: np.ndarray,
    n_items: int,
    *,
    gold: np.ndarray | None = None,
    n_samples: int = 1000,
    n_burn: int = 1000,
    n_chains: int = 4,
    seed: int = 0,
    start: tuple[float, np.ndarray] | None = None,
) -> PhiPosterior:
    """Metropolis draws of the reference's posterior for observations `y [n]` in (0, 1) of `item [n]`.

    Returns one problem's `PhiPosterior`: `tau [n_chains, n_samples]`, `mu_mean [n_items]`, scalar acceptances.

    `gold [n_items]`: rescaled gold values (NaN: none) for the Normal(g, 1) prior on μ_i; `start`: (τ, μ [n_items])
    for every chain (default: the MLE); chains start from jittered copies.
    """
    if start is None:
        with _one_blas_thread():
            tau0, optimum = _fit_tau(y, item, n_items)
        start = (tau0, special.expit(optimum[1:]))
    problem = _Problem(np.asarray(y, dtype=float), np.asarray(item), int(n_items), gold)
    post = _sample([problem], [start], n_samples=n_samples, n_burn=n_burn, n_chains=n_chains, seed=seed)
    return PhiPosterior(post.tau[0], post.mu_mean[0], post.acceptance_tau[0], post.acceptance_mu[0])


@dataclass(frozen=True)
class PhiResult:
    """Φ with its interval; `tau` is the Beta precision behind `phi`, `n_items`/`n_ratings` the data used.

    mcmc: `phi` = Φ(posterior mean of τ), `low`/`high` = Φ of the τ HPD bounds, `rhat` the Gelman-Rubin R̂ of τ;
    mle: `phi` = Φ(τ̂), `low`/`high` an item-bootstrap percentile interval (NaN without resamples). `phi_mle` and
    `tau_mle` are always the maximum-likelihood values.
    """

    phi: float
    low: float
    high: float
    tau: float
    n_items: int
    n_ratings: int
    estimator: str = "MLE of the Beta model (posterior mode under flat priors); bootstrap over items"
    method: str = "mle"
    tau_mle: float = float("nan")
    phi_mle: float = float("nan")
    rhat: float = float("nan")
    acceptance: float = float("nan")


def _problem(
    ratings: np.ndarray | pd.DataFrame | Sequence[Sequence[float]],
    limits: tuple[float, float] | None,
    gold: Sequence[float] | np.ndarray | None,
) -> _Problem:
    """Validate ratings `[n_items, n_cols]` (and `gold [n_items]`) and rescale them as the reference does.

    `limits=None` takes the lowest and highest rating present (pass the scale's ends when they may be unused)."""
    matrix = np.asarray(ratings, dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] < 1 or matrix.shape[1] < 2:
        raise ValueError(f"ratings must be a 2-D [n_items, n_cols] array with >= 2 columns, got {matrix.shape}")
    if limits is None:
        present = matrix[np.isfinite(matrix)]
        if present.size == 0 or present.min() == present.max():
            raise ValueError("limits=None needs ratings with two or more distinct values; pass the scale's limits")
        limits = (float(present.min()), float(present.max()))
    gold_y = None
    if gold is not None:
        gold_x = np.asarray(gold, dtype=float)
        if gold_x.shape != (matrix.shape[0],):
            raise ValueError(f"gold must have one value per item ({matrix.shape[0]}), got shape {gold_x.shape}")
        lo, hi = float(limits[0]), float(limits[1])
        if np.any(np.isfinite(gold_x) & ((gold_x < lo) | (gold_x > hi))):
            raise ValueError(f"gold values fall outside limits {limits!r}")
        gold_y = (((gold_x - lo) / (hi - lo)) * (matrix.shape[1] - 1) + 0.5) / matrix.shape[1]
    y_matrix = rescale_for_phi(matrix, limits)
    keep = np.isfinite(y_matrix)
    rows_used = np.flatnonzero(keep.any(axis=1))
    if rows_used.size == 0:
        raise ValueError("ratings contain no values")
    y_matrix, keep = y_matrix[rows_used], keep[rows_used]
    item, _ = np.nonzero(keep)
    return _Problem(y_matrix[keep], item, y_matrix.shape[0], None if gold_y is None else gold_y[rows_used])


def _check_options(method: str, n_resamples: int, hpd: float) -> None:
    if method not in PHI_METHODS:
        raise ValueError(f"method must be one of {PHI_METHODS}, got {method!r}")
    if method == "mcmc" and n_resamples:
        raise ValueError("n_resamples (item bootstrap) applies to method='mle'; mcmc reports an HPD interval")
    if not 0 < hpd < 1:
        raise ValueError(f"hpd must be in (0, 1), got {hpd}")


def _estimate(
    problems: Sequence[_Problem],
    *,
    method: str,
    n_samples: int,
    n_burn: int,
    n_chains: int,
    hpd: float,
    n_resamples: int,
    confidence: float,
    seed: int,
) -> list[PhiResult]:
    """Φ for each problem: the MLE always, then one batched Metropolis run (mcmc) or item bootstraps (mle)."""
    with _one_blas_thread():
        fits = [_fit_tau(pr.y, pr.item, pr.n_items) for pr in problems]
        if method == "mcmc":
            post = _sample(
                problems,
                [(tau, special.expit(opt[1:])) for tau, opt in fits],
                n_samples=n_samples,
                n_burn=n_burn,
                n_chains=n_chains,
                seed=seed,
            )
            results = []
            for k, (pr, (tau_mle, _)) in enumerate(zip(problems, fits, strict=True)):
                tau_mean = float(post.tau[k].mean())
                t_low, t_high = hpd_interval(post.tau[k], hpd)
                results.append(
                    PhiResult(
                        float(phi_from_tau(tau_mean)),
                        float(phi_from_tau(t_low)),
                        float(phi_from_tau(t_high)),
                        tau_mean,
                        pr.n_items,
                        int(pr.y.size),
                        estimator=(
                            f"Metropolis posterior of the Beta model: Phi at the posterior mean of tau, {hpd:.0%} HPD"
                        ),
                        method="mcmc",
                        tau_mle=tau_mle,
                        phi_mle=float(phi_from_tau(tau_mle)),
                        rhat=gelman_rubin(post.tau[k]),
                        acceptance=float(post.acceptance_tau[k]),
                    )
                )
            return results
        return [
            _mle_result(pr, tau, opt, n_resamples=n_resamples, confidence=confidence, seed=seed)
            for pr, (tau, opt) in zip(problems, fits, strict=True)
        ]


def _mle_result(
    pr: _Problem, tau_mle: float, optimum: np.ndarray, *, n_resamples: int, confidence: float, seed: int
) -> PhiResult:
    """Φ at the MLE with an optional item bootstrap interval.

    Each resample's MLE is exact up to a fine grid: an item's optimal μ_i given τ does not depend on the other items,
    so the resample's profile log-likelihood in τ is a count-weighted sum of per-item profiles, computed once on a
    grid of log τ (`_item_profiles`) and maximised for all resamples at once (parabolic refinement).
    """
    low = high = float("nan")
    n_items = pr.n_items
    if n_resamples > 0:
        grid, profile = _item_profiles(pr.y, pr.item, n_items, np.log(tau_mle), special.expit(optimum[1:]))

        def statistic(index: np.ndarray) -> np.ndarray:
            # index: [b, n_items] resampled item indices -> weights [b, n_items] -> profile log-lik [b, grid].
            b = index.shape[0]
            flat = (index.astype(np.int64) + n_items * np.arange(b)[:, None]).ravel()
            weights = np.bincount(flat, minlength=b * n_items).reshape(b, n_items).astype(float)
            return phi_from_tau(np.exp(_grid_argmax(grid, weights @ profile)))

        ci = bootstrap_ci(
            np.arange(n_items), statistic, n_resamples=n_resamples, confidence=confidence, seed=seed, vectorized=True
        )
        low, high = float(ci.low), float(ci.high)
    logger.debug("Phi (mle): tau=%.4f over %d items, %d ratings", tau_mle, n_items, pr.y.size)
    phi_mle = float(phi_from_tau(tau_mle))
    return PhiResult(phi_mle, low, high, tau_mle, n_items, int(pr.y.size), tau_mle=tau_mle, phi_mle=phi_mle)


def phi_agreement(
    ratings: np.ndarray | pd.DataFrame | Sequence[Sequence[float]],
    *,
    limits: tuple[float, float] | None = None,
    method: str = "mcmc",
    n_samples: int = 1000,
    n_burn: int = 1000,
    n_chains: int = 4,
    hpd: float = 0.95,
    gold: Sequence[float] | np.ndarray | None = None,
    n_resamples: int = 0,
    confidence: float = 0.95,
    seed: int = 0,
) -> PhiResult:
    """Φ of ratings `[n_items, n_cols]` (one row per item, NaN padding; rater identity is ignored, as in the reference).

    `method="mcmc"` (default): posterior by Metropolis (`n_chains` chains of `n_burn` + `n_samples` iterations,
    seeded), Φ at the posterior mean of τ and its `hpd` interval, as `agreement_phi.run_phi` reports them;
    `gold [n_items]` gives known item values on the rating scale (NaN: none) for the reference's Normal(g, 1) prior
    on μ_i. `method="mle"`: maximum likelihood; `n_resamples > 0` adds a percentile bootstrap interval over items.
    """
    _check_options(method, n_resamples, hpd)
    return _estimate(
        [_problem(ratings, limits, gold)],
        method=method,
        n_samples=n_samples,
        n_burn=n_burn,
        n_chains=n_chains,
        hpd=hpd,
        n_resamples=n_resamples,
        confidence=confidence,
        seed=seed,
    )[0]


def phi_by_item(
    judgments: pd.DataFrame,
    items: Sequence[str],
    *,
    by: str | None = "dataset",
    limits: tuple[float, float] | None = None,
    method: str = "mcmc",
    n_samples: int = 1000,
    n_burn: int = 1000,
    n_chains: int = 4,
    n_resamples: int = 0,
    seed: int = 0,
) -> pd.DataFrame:
    """Tidy table of Φ per item (and per `by` group plus `ALL`).

    Columns `item, group, method, phi, low, high, tau, phi_mle, rhat, n_items`; `judgments` is the wide table (one
    row per worker × statement). With `method="mcmc"` all (item, group) fits share one vectorised sampler run, so a
    row's draws depend on the seed and on the other rows of the call. `n_resamples` is the bootstrap of `"mle"`.
    `limits=None`: the lowest and highest answer over all `items` (pass the data's scale ends, as the CLI does).
    """
    _check_options(method, n_resamples, 0.95)
    if limits is None:
        present = judgments[list(items)].to_numpy(dtype=float, na_value=np.nan)
        present = present[np.isfinite(present)]
        if present.size == 0 or present.min() == present.max():
            raise ValueError("limits=None needs answers with two or more distinct values; pass the scale's limits")
        limits = (float(present.min()), float(present.max()))
    groups: list[tuple[str, pd.DataFrame]] = [("ALL", judgments)]
    if by is not None:
        if by not in judgments.columns:
            raise ValueError(f"by={by!r} is not a column of judgments")
        groups = [(str(g), part) for g, part in judgments.groupby(by, observed=True)] + groups
    keys = list(itertools.product(items, groups))
    problems = [
        _problem(_pack_rows(to_reliability_matrix(part, item).to_numpy().T), limits, None)  # [statements, workers]
        for item, (_, part) in keys
    ]
    results = _estimate(
        problems,
        method=method,
        n_samples=n_samples,
        n_burn=n_burn,
        n_chains=n_chains,
        hpd=0.95,
        n_resamples=n_resamples,
        confidence=0.95,
        seed=seed,
    )
    rows = [
        {
            "item": item,
            "group": name,
            "method": r.method,
            "phi": r.phi,
            "low": r.low,
            "high": r.high,
            "tau": r.tau,
            "phi_mle": r.phi_mle,
            "rhat": r.rhat,
            "n_items": r.n_items,
        }
        for (item, (name, _)), r in zip(keys, results, strict=True)
    ]
    return pd.DataFrame(rows)


def _pack_rows(matrix: np.ndarray) -> np.ndarray:
    """Left-pack each row's finite values (`[n_items, n_workers]` -> `[n_items, max ratings per item]`)."""
    finite = np.isfinite(matrix)
    width = max(int(finite.sum(axis=1).max()), 2)
    order = np.argsort(~finite, axis=1, kind="stable")
    packed = np.take_along_axis(matrix, order, axis=1)[:, :width]
    return packed
