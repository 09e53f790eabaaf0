"""Internal agreement: Krippendorff's alpha (coincidence-matrix form, any level, missing data), Fleiss' and Cohen's
kappa (statsmodels), and unit-resampling bootstrap intervals.

Alpha follows spec 5.1: for each unit u with m_u >= 2 values, coincidences `o_ck = sum_u n_uck / (m_u - 1)`, then
`alpha = 1 - sum(o * d) / sum(e * d)` with `e_ck = (n_c n_k - [c = k] n_c) / (n - 1)`. The whole computation is a few
matrix products over the units x values count matrix: no Python loop over units or judgments. It equals
`krippendorff.alpha` (the GPL reference, used in our tests only) to 1e-9.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from repro_core.metrics import BootstrapCI, bootstrap_ci

__all__ = [
    "LEVELS",
    "AlphaResult",
    "KappaResult",
    "alpha_by_item",
    "cohen_kappa",
    "cohen_kappa_ci",
    "fleiss_kappa",
    "fleiss_kappa_ci",
    "krippendorff_alpha",
    "krippendorff_alpha_ci",
    "value_counts_matrix",
]

Level = Literal["nominal", "ordinal", "interval", "ratio"]
#: The levels of measurement alpha supports.
LEVELS: tuple[str, ...] = ("nominal", "ordinal", "interval", "ratio")


#: Domains up to this size are counted by one comparison pass per value (no sort, no search over the judgments).
_SMALL_DOMAIN = 32


def _as_matrix(reliability_data: np.ndarray | pd.DataFrame | Sequence[Sequence[float]]) -> np.ndarray:
    matrix = np.asarray(reliability_data, dtype=float)
    if matrix.ndim != 2:
        raise ValueError(f"reliability_data must be 2-D [n_raters, n_units], got shape {matrix.shape}")
    return matrix


def _check_finite(matrix: np.ndarray) -> None:
    if np.isinf(matrix).any():
        raise ValueError("reliability_data contains an infinite value; use NaN for missing ratings")


def _count_by_comparison(matrix: np.ndarray, domain: np.ndarray) -> np.ndarray:
    """`counts [n_units, n_values]` by one `matrix == value` pass per value (fast for a small domain)."""
    counts = np.empty((domain.size, matrix.shape[1])).T  # column-major: each value's column is contiguous
    for k, value in enumerate(domain):
        counts[:, k] = np.count_nonzero(matrix == value, axis=0)
    return counts


def value_counts_matrix(
    reliability_data: np.ndarray | pd.DataFrame, value_domain: Sequence[float] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Units x values count matrix `n_uc` and the value domain.

    Args:
        reliability_data: `[n_raters, n_units]`, NaN for a missing rating.
        value_domain: the possible values (ascending for ordinal/interval/ratio); default: the values present.

    Returns:
        `counts: [n_units, n_values]` and `domain: [n_values]` (the given order, or ascending when inferred).

    With a domain of at most 32 values (every Likert scale) the counts come from one comparison pass per value and
    are checked to add up to the number of ratings, so no sort or search over the judgments is needed; otherwise
    the codes come from `searchsorted` and one `bincount` over (unit, code).
    """
    matrix = _as_matrix(reliability_data)
    if value_domain is not None:
        domain = np.asarray(value_domain, dtype=float)
        if domain.ndim != 1 or np.unique(domain).size != domain.size:
            raise ValueError("value_domain must be 1-D without repeated values")
        if domain.size <= _SMALL_DOMAIN and np.isfinite(domain).all():
            counts = _count_by_comparison(matrix, domain)
            if counts.sum() == np.count_nonzero(~np.isnan(matrix)):
                return counts, domain
            # Some rating is not in the domain (or infinite): the general path below names it.
    _check_finite(matrix)
    transposed = matrix.T  # [n_units, n_raters]: nonzero() then walks units in order
    units, raters = np.nonzero(~np.isnan(transposed))
    values = transposed[units, raters]
    if value_domain is None:
        domain, codes = np.unique(values, return_inverse=True)  # one sort gives the domain and the codes
        if domain.size <= _SMALL_DOMAIN:
            return _count_by_comparison(matrix, domain), domain
    else:
        order = np.argsort(domain, kind="stable")
        sorted_domain = domain[order]
        position = np.minimum(np.searchsorted(sorted_domain, values), max(domain.size - 1, 0))
        if values.size and (domain.size == 0 or not np.array_equal(sorted_domain[position], values)):
            unknown = np.setdiff1d(values, domain)
            raise ValueError(f"value_domain misses value(s) present in the data: {unknown[:5].tolist()}")
        codes = order[position]
    flat = np.bincount(units * domain.size + codes, minlength=matrix.shape[1] * domain.size)
    return flat.reshape(matrix.shape[1], domain.size).astype(float), domain


def _distance(domain: np.ndarray, n_c: np.ndarray, level: Level) -> np.ndarray:
    """Squared distances delta^2 between the values of the domain, `[n_values, n_values]`."""
    c, k = domain[:, None], domain[None, :]
    if level == "nominal":
        return (c != k).astype(float)
    if level == "interval":
        return (c - k) ** 2
    if level == "ratio":
        total = c + k
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(total != 0, (c - k) / np.where(total != 0, total, 1.0), 0.0)
        return ratio**2
    if level == "ordinal":
        cumulative = np.concatenate([[0.0], np.cumsum(n_c)])
        i = np.arange(domain.size)
        lo, hi = np.minimum(i[:, None], i[None, :]), np.maximum(i[:, None], i[None, :])
        between = cumulative[hi + 1] - cumulative[lo]  # sum of n_g for g from lo to hi
        return (between - (n_c[:, None] + n_c[None, :]) / 2.0) ** 2
    raise ValueError(f"level must be one of {LEVELS}, got {level!r}")


def _alpha_from_counts(counts: np.ndarray, domain: np.ndarray, level: Level) -> float:
    """Alpha from the units x values counts `[n_units, n_values]` (the ordering of the domain matters for ordinal)."""
    m = counts.sum(axis=1)
    pairable = m >= 2
    if not pairable.all():
        counts, m = counts[pairable], m[pairable]
    weights = 1.0 / (m - 1.0)
    weighted = counts * weights[:, None]
    coincidence = counts.T @ weighted - np.diag(weighted.sum(axis=0))  # o_ck, [n_values, n_values]
    n_c = coincidence.sum(axis=0)
    n = n_c.sum()
    if n <= 1:
        return float("nan")
    order = np.argsort(domain, kind="stable")
    domain, n_c, coincidence = domain[order], n_c[order], coincidence[np.ix_(order, order)]
    delta = _distance(domain, n_c, level)
    expected = (np.outer(n_c, n_c) - np.diag(n_c)) / (n - 1.0)
    observed_disagreement = float((coincidence * delta).sum())
    expected_disagreement = float((expected * delta).sum())
    if expected_disagreement == 0.0:
        return float("nan")  # a single value in the pairable data: alpha is undefined
    return 1.0 - observed_disagreement / expected_disagreement


def krippendorff_alpha(
    reliability_data: np.ndarray | pd.DataFrame | Sequence[Sequence[float]],
    *,
    level: Level = "interval",
    value_domain: Sequence[float] | None = None,
) -> float:
    """Krippendorff's alpha of `reliability_data: [n_raters, n_units]` (NaN = missing), as `krippendorff.alpha`.

    Units with fewer than two ratings do not count. Returns NaN when alpha is undefined (no pairable unit, or only
    one value among the pairable ratings); the reference raises instead. `value_domain` matters for ordinal alpha
    only through values no unit used (they carry zero mass); pass the scale (e.g. -2..2) for clarity.
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    counts, domain = value_counts_matrix(reliability_data, value_domain)
    return _alpha_from_counts(counts, domain, level)


@dataclass(frozen=True)
class AlphaResult:
    """Alpha with a unit-resampling bootstrap interval."""

    alpha: float
    low: float
    high: float
    level: str
    n_units: int
    n_pairable_values: int
    confidence: float


def krippendorff_alpha_ci(
    reliability_data: np.ndarray | pd.DataFrame,
    *,
    level: Level = "interval",
    value_domain: Sequence[float] | None = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> AlphaResult:
    """Alpha and a percentile bootstrap interval from resampling units (columns) with replacement.

    Uses `repro_core.metrics.bootstrap_ci` on the unit indices; each resample recomputes alpha from the resampled
    rows of the units x values count matrix.
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    counts, domain = value_counts_matrix(reliability_data, value_domain)
    pairable = counts.sum(axis=1) >= 2
    counts = counts[pairable]
    if counts.shape[0] < 2:
        raise ValueError("alpha's bootstrap needs at least two units with two or more ratings")

    def statistic(index: np.ndarray) -> float:
        value = _alpha_from_counts(counts[index.astype(np.int64)], domain, level)
        return 0.0 if np.isnan(value) else value  # a degenerate resample (one value only) counts as no agreement

    ci: BootstrapCI = bootstrap_ci(
        np.arange(counts.shape[0]), statistic, n_resamples=n_resamples, confidence=confidence, seed=seed
    )
    return AlphaResult(
        alpha=_alpha_from_counts(counts, domain, level),
        low=float(ci.low),
        high=float(ci.high),
        level=level,
        n_units=int(counts.shape[0]),
        n_pairable_values=int(counts.sum()),
        confidence=confidence,
    )


def alpha_by_item(
    judgments: pd.DataFrame,
    items: Sequence[str],
    *,
    levels: Sequence[str] = ("interval",),
    by: str | None = "dataset",
    value_domain: Sequence[float] | None = (-2, -1, 0, 1, 2),
) -> pd.DataFrame:
    """Alpha per item, level and group (`by` column of the wide table, e.g. dataset) plus an `ALL` group.

    Returns a tidy frame with columns `group, item, level, alpha, n_units`.
    """
    groups: list[tuple[str, pd.DataFrame]] = []
    if by is not None:
        for name, frame in judgments.groupby(by, observed=True, sort=True):
            groups.append((str(name), frame))
    groups.append(("ALL", judgments))
    rows = []
    for name, frame in groups:
        for item in items:
            matrix = frame.pivot(index="worker_id", columns="statement_id", values=item).astype(float)
            counts, domain = value_counts_matrix(matrix.to_numpy().copy(), value_domain)
            for level in levels:
                rows.append(
                    {
                        "group": name,
                        "item": item,
                        "level": level,
                        "alpha": _alpha_from_counts(counts, domain, level),  # type: ignore[arg-type]
                        "n_units": int((counts.sum(axis=1) >= 2).sum()),
                    }
                )
    return pd.DataFrame(rows)


def fleiss_kappa(
    answers: pd.DataFrame, *, n_raters: int | None = None, method: Literal["fleiss", "randolph"] = "fleiss"
) -> float:
    """Fleiss' (or Randolph's) kappa of a crowd-kit frame `worker, task, label`, via statsmodels.

    Fleiss' kappa needs the same number of ratings per task: only tasks with exactly `n_raters` ratings (default:
    the most common count) are used.
    """
    from statsmodels.stats.inter_rater import fleiss_kappa as _fleiss

    per_task = answers.groupby("task").size()
    if per_task.empty:
        raise ValueError("fleiss_kappa: no answers")
    k = int(per_task.mode().iloc[0]) if n_raters is None else int(n_raters)
    tasks = per_task.index[per_task == k]
    if len(tasks) == 0:
        raise ValueError(f"fleiss_kappa: no task has exactly {k} ratings")
    kept = answers[answers["task"].isin(tasks)]
    table = pd.crosstab(kept["task"], kept["label"]).to_numpy()
    return float(_fleiss(table, method=method))


@dataclass(frozen=True)
class KappaResult:
    """Fleiss', Randolph's or Cohen's kappa with a bootstrap interval over tasks (items)."""

    kappa: float
    low: float
    high: float
    n_tasks: int
    n_raters: int
    method: str


def _kappa_from_tables(tables: np.ndarray, n_raters: int, method: str) -> np.ndarray:
    """Kappa of count tables `[b, n_tasks, n_categories]` (each row sums to `n_raters`) -> `[b]` (Fleiss 1971)."""
    n_tasks = tables.shape[1]
    agreement = ((tables**2).sum(axis=2) - n_raters) / (n_raters * (n_raters - 1.0))  # P_i, [b, n_tasks]
    p_bar = agreement.mean(axis=1)
    if method == "randolph":
        p_e = np.full_like(p_bar, 1.0 / tables.shape[2])
    else:
        shares = tables.sum(axis=1) / (n_tasks * n_raters)  # p_k, [b, n_categories]
        p_e = (shares**2).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (p_bar - p_e) / (1.0 - p_e)


def fleiss_kappa_ci(
    answers: pd.DataFrame,
    *,
    n_raters: int | None = None,
    method: Literal["fleiss", "randolph"] = "fleiss",
    categories: Sequence[object] | None = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> KappaResult:
    """Fleiss' (or Randolph's) kappa of a crowd-kit frame with a percentile bootstrap over tasks (vectorised).

    Same task selection as `fleiss_kappa` (tasks with exactly `n_raters` ratings, default the modal count); the
    point estimate equals statsmodels'. `categories` fixes the category set (Randolph's kappa depends on its size;
    default: the labels present).
    """
    if method not in ("fleiss", "randolph"):
        raise ValueError(f"method must be 'fleiss' or 'randolph', got {method!r}")
    per_task = answers.groupby("task").size()
    if per_task.empty:
        raise ValueError("fleiss_kappa_ci: no answers")
    k = int(per_task.mode().iloc[0]) if n_raters is None else int(n_raters)
    if k < 2:
        raise ValueError(f"fleiss_kappa_ci: needs at least 2 ratings per task, got n_raters={k}")
    tasks = per_task.index[per_task == k]
    if len(tasks) < 2:
        raise ValueError(f"fleiss_kappa_ci: needs at least 2 tasks with exactly {k} ratings")
    kept = answers[answers["task"].isin(tasks)]
    table = pd.crosstab(kept["task"], kept["label"])
    if categories is not None:
        missing = set(table.columns) - set(categories)
        if missing:
            raise ValueError(f"categories miss label(s) present in the answers: {sorted(missing, key=str)[:5]}")
        table = table.reindex(columns=list(categories), fill_value=0)
    counts = table.to_numpy(dtype=float)  # [n_tasks, n_categories]

    def statistic(index: np.ndarray) -> np.ndarray:
        return _kappa_from_tables(counts[index.astype(np.int64)], k, method)  # index: [b, n_tasks]

    ci = bootstrap_ci(
        np.arange(counts.shape[0]),
        statistic,
        n_resamples=n_resamples,
        confidence=confidence,
        seed=seed,
        vectorized=True,
    )
    kappa = float(_kappa_from_tables(counts[None], k, method)[0])
    return KappaResult(kappa, float(ci.low), float(ci.high), int(counts.shape[0]), k, method)


def cohen_kappa(
    rater_a: Sequence[object] | np.ndarray,
    rater_b: Sequence[object] | np.ndarray,
    *,
    weights: Literal["linear", "quadratic"] | None = None,
    categories: Sequence[object] | None = None,
) -> float:
    """Cohen's kappa (optionally linear/quadratic weighted) between two raters' labels `[n]`, via statsmodels."""
    from statsmodels.stats.inter_rater import cohens_kappa

    a, b, k = _pair_codes(rater_a, rater_b, categories)
    table = np.bincount(a * k + b, minlength=k * k).reshape(k, k).astype(float)
    result = cohens_kappa(table, wt=weights, return_results=True)
    return float(result.kappa)


def _pair_codes(
    rater_a: Sequence[object] | np.ndarray, rater_b: Sequence[object] | np.ndarray, categories: Sequence[object] | None
) -> tuple[np.ndarray, np.ndarray, int]:
    """Category codes `([n], [n], n_categories)` of two raters' labels, in `categories` order (default: sorted)."""
    a, b = np.asarray(rater_a), np.asarray(rater_b)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"rater_a and rater_b must be 1-D of equal length, got {a.shape} and {b.shape}")
    cats = sorted(set(a.tolist()) | set(b.tolist())) if categories is None else list(categories)
    index = {c: i for i, c in enumerate(cats)}
    missing = (set(a.tolist()) | set(b.tolist())) - set(index)
    if missing:
        raise ValueError(f"categories miss label(s) present in the ratings: {sorted(missing, key=str)[:5]}")
    return np.array([index[x] for x in a.tolist()]), np.array([index[x] for x in b.tolist()]), len(cats)


def _cohen_from_tables(tables: np.ndarray, weights: str | None) -> np.ndarray:
    """Cohen's kappa of confusion tables `[b, k, k]` -> `[b]`: 1 - sum(w O) / sum(w E), disagreement weights w.

    w is 1 off the diagonal (unweighted), |i - j| (linear) or (i - j)^2 (quadratic), as statsmodels' `cohens_kappa`.
    """
    k = tables.shape[-1]
    distance = np.abs(np.subtract.outer(np.arange(k), np.arange(k))).astype(float)
    w = {None: (distance > 0).astype(float), "linear": distance, "quadratic": distance**2}[weights]
    observed = tables / tables.sum(axis=(1, 2), keepdims=True)
    expected = observed.sum(axis=2)[:, :, None] * observed.sum(axis=1)[:, None, :]
    return 1.0 - (w * observed).sum(axis=(1, 2)) / (w * expected).sum(axis=(1, 2))


def cohen_kappa_ci(
    rater_a: Sequence[object] | np.ndarray,
    rater_b: Sequence[object] | np.ndarray,
    *,
    weights: Literal["linear", "quadratic"] | None = None,
    categories: Sequence[object] | None = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> KappaResult:
    """Cohen's kappa of `cohen_kappa` with a percentile bootstrap over the rated items (vectorised).

    Each resample draws items with replacement and recomputes the confusion table with one `bincount`, so 1,000
    resamples cost about as much as a few point estimates. The point estimate equals statsmodels'.
    """
    if weights not in (None, "linear", "quadratic"):
        raise ValueError(f"weights must be None, 'linear' or 'quadratic', got {weights!r}")
    a, b, k = _pair_codes(rater_a, rater_b, categories)
    if len(a) < 2:
        raise ValueError("cohen_kappa_ci: needs at least 2 rated items")
    codes = a * k + b  # [n], the cell of each item in the k x k table

    def statistic(index: np.ndarray) -> np.ndarray:  # index: [r, n] resampled item positions
        rows = np.arange(index.shape[0])[:, None] * (k * k)
        flat = np.bincount((rows + codes[index.astype(np.int64)]).ravel(), minlength=index.shape[0] * k * k)
        return _cohen_from_tables(flat.reshape(index.shape[0], k, k).astype(float), weights)

    ci = bootstrap_ci(
        np.arange(len(codes)), statistic, n_resamples=n_resamples, confidence=confidence, seed=seed, vectorized=True
    )
    kappa = cohen_kappa(rater_a, rater_b, weights=weights, categories=categories)
    method = "cohen" if weights is None else f"cohen-{weights}"
    return KappaResult(kappa, float(ci.low), float(ci.high), len(codes), 2, method)
