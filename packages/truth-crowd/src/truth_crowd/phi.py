"""Checco et al.'s Φ agreement (HCOMP 2017), as a maximum-likelihood fit of the reference's Beta model.

Reference model (`agreement_phi.run_phi`, spec §4.4): per item i the ratings on [lo, hi] are rescaled to
`y = (((x − lo)/(hi − lo))·(l − 1) + 0.5)/l` (l = the number of rating columns after padding) and
`y_ij ~ Beta(μ_i τ, (1 − μ_i) τ)`; Φ = 1 − 2^(1 − τ/2), so τ = 2 (uniform noise) gives 0 and τ → ∞ gives 1.

**What is implemented:** the joint maximum-likelihood estimate of (τ, μ_1..μ_n) by L-BFGS over (log τ, logit μ)
with the analytic gradient, and Φ at that τ. The reference puts near-flat priors on μ and τ (Normal, sd 10^6) and
reports Φ at the posterior *mean* of τ from a pymc3 Metropolis run (N = 1000, seed 123) with an HPD interval; our
point estimate is the posterior mode under those flat priors, and our interval is an item-resampling bootstrap
(`repro_core.metrics.bootstrap_ci`), not an HPD. Gold-item priors and the MCMC sampler are not implemented.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, special

from repro_core.metrics import bootstrap_ci
from truth_crowd.schema import to_reliability_matrix

__all__ = ["PhiResult", "phi_agreement", "phi_by_item", "phi_from_tau", "rescale_for_phi"]

logger = logging.getLogger(__name__)
_LOG_TAU_BOUNDS = (-10.0, 12.0)


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
        hess = -(tau**2) * (special.zeta(2, a) + special.zeta(2, b))
        g_item = np.bincount(flat, weights=grad.ravel(), minlength=n_grid * n_items).reshape(n_grid, n_items)
        h_item = np.bincount(flat, weights=hess.ravel(), minlength=n_grid * n_items).reshape(n_grid, n_items)
        step = g_item / np.where(counts > 0, h_item, -1.0)
        mu_item = np.clip(_first(m, item, n_items) - step, 1e-6, 1 - 1e-6)
        m = mu_item[:, item]
    a, b = m * tau, (1 - m) * tau
    ll = (a - 1) * log_y + (b - 1) * log_1my - special.betaln(a, b)
    profile = np.bincount(flat, weights=ll.ravel(), minlength=n_grid * n_items).reshape(n_grid, n_items)
    return grid, profile.T


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


@dataclass(frozen=True)
class PhiResult:
    """Φ with its bootstrap interval; `tau` is the fitted Beta precision, `n_items`/`n_ratings` the data used."""

    phi: float
    low: float
    high: float
    tau: float
    n_items: int
    n_ratings: int
    estimator: str = "MLE of the Beta model (posterior mode under flat priors); bootstrap over items"


def phi_agreement(
    ratings: np.ndarray | pd.DataFrame | Sequence[Sequence[float]],
    *,
    limits: tuple[float, float] = (-2.0, 2.0),
    n_resamples: int = 0,
    confidence: float = 0.95,
    seed: int = 0,
) -> PhiResult:
    """Φ of ratings `[n_items, n_cols]` (one row per item, NaN padding; rater identity is ignored, as in the reference).

    `n_resamples > 0` adds a percentile bootstrap interval over items; otherwise `low`/`high` are NaN. Each
    resample's MLE is exact up to a fine grid: an item's optimal μ_i given τ does not depend on the other items, so
    the resample's profile log-likelihood in τ is a count-weighted sum of per-item profiles, computed once on a
    grid of log τ (`_item_profiles`) and maximised for all resamples at once (parabolic refinement).
    """
    matrix = np.asarray(ratings, dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] < 1 or matrix.shape[1] < 2:
        raise ValueError(f"ratings must be a 2-D [n_items, n_cols] array with >= 2 columns, got {matrix.shape}")
    y_matrix = rescale_for_phi(matrix, limits)
    keep = np.isfinite(y_matrix)
    rows_used = np.flatnonzero(keep.any(axis=1))
    if rows_used.size == 0:
        raise ValueError("ratings contain no values")
    y_matrix, keep = y_matrix[rows_used], keep[rows_used]
    item, _ = np.nonzero(keep)
    y = y_matrix[keep]
    n_items = y_matrix.shape[0]
    tau, optimum = _fit_tau(y, item, n_items)
    low = high = float("nan")
    if n_resamples > 0:
        grid, profile = _item_profiles(y, item, n_items, np.log(tau), special.expit(optimum[1:]))

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
    logger.debug("Phi: tau=%.4f over %d items, %d ratings", tau, n_items, y.size)
    return PhiResult(float(phi_from_tau(tau)), low, high, tau, n_items, int(y.size))


def phi_by_item(
    judgments: pd.DataFrame,
    items: Sequence[str],
    *,
    by: str | None = "dataset",
    limits: tuple[float, float] = (-2.0, 2.0),
    n_resamples: int = 0,
    seed: int = 0,
) -> pd.DataFrame:
    """Tidy table of Φ per item (and per `by` group plus `ALL`): columns `item, group, phi, low, high, tau, n_items`.

    `judgments` is the wide table (one row per worker × statement).
    """
    groups: list[tuple[str, pd.DataFrame]] = [("ALL", judgments)]
    if by is not None:
        if by not in judgments.columns:
            raise ValueError(f"by={by!r} is not a column of judgments")
        groups = [(str(g), part) for g, part in judgments.groupby(by, observed=True)] + groups
    rows = []
    for item in items:
        for name, part in groups:
            matrix = to_reliability_matrix(part, item).to_numpy().T  # [statements, workers]
            packed = _pack_rows(matrix)
            result = phi_agreement(packed, limits=limits, n_resamples=n_resamples, seed=seed)
            rows.append(
                {
                    "item": item,
                    "group": name,
                    "phi": result.phi,
                    "low": result.low,
                    "high": result.high,
                    "tau": result.tau,
                    "n_items": result.n_items,
                }
            )
    return pd.DataFrame(rows)


def _pack_rows(matrix: np.ndarray) -> np.ndarray:
    """Left-pack each row's finite values (`[n_items, n_workers]` -> `[n_items, max ratings per item]`)."""
    finite = np.isfinite(matrix)
    width = max(int(finite.sum(axis=1).max()), 2)
    order = np.argsort(~finite, axis=1, kind="stable")
    packed = np.take_along_axis(matrix, order, axis=1)[:, :width]
    return packed
