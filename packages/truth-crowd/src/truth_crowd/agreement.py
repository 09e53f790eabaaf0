"""Internal agreement: Krippendorff's alpha (coincidence-matrix form, any level, missing data), Fleiss' and Cohen's
kappa (statsmodels), and unit-resampling bootstrap intervals.

Alpha follows spec 5.1: for each unit u with m_u >= 2 values, coincidences `o_ck = sum_u n_uck / (m_u - 1)`, then
`alpha = 1 - sum(o * d) / sum(e * d)` with `e_ck = (n_c n_k - [c = k] n_c) / (n - 1)`. The whole computation is a few
matrix products over the units x values count matrix: no Python loop over units or judgments. It equals
`krippendorff.alpha` (the GPL reference, used in our tests only) to 1e-9.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from repro_core.metrics import BootstrapCI, bootstrap_ci

__all__ = [
    "LEVELS",
    "AlphaResult",
    "DistanceFunction",
    "KappaResult",
    "alpha_by_item",
    "answers_value_counts",
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


#: Ratings are pulled out of a reliability matrix in row blocks of about this many cells, so the NaN mask and the
#: index arrays stay small and are reused (a fresh allocation of a matrix-sized temporary costs more than the work).
_BLOCK_CELLS = 1 << 20
#: Integer-valued data whose range spans at most this many values is coded by a lookup table, not by a sort.
_LOOKUP_SPAN = 1 << 16
#: Repeated (rater, unit) pairs are found by a count table up to this many possible pairs, by hashing beyond.
_PAIR_TABLE = 1 << 23
#: A matrix without NaN over at most this many values is counted by comparison passes (`_dense_counts`).
_SMALL_DOMAIN = 32

#: A distance function in the `krippendorff` package's convention: `distance(v1, v2, i1=, i2=, n_v=)` returns the
#: squared distances delta^2 between broadcast arrays of values `v1`, `v2` (with their positions `i1`, `i2` in the
#: domain and `n_v` the pairable values per domain entry), so a metric written for that package works unchanged.
DistanceFunction = Callable[..., np.ndarray]


def _as_matrix(reliability_data: np.ndarray | pd.DataFrame | Sequence[Sequence[float]]) -> np.ndarray:
    matrix = np.asarray(reliability_data)
    if matrix.ndim != 2:
        raise ValueError(f"reliability_data must be 2-D [n_raters, n_units], got shape {matrix.shape}")
    if matrix.dtype.kind in "fiub":
        return matrix.astype(float, copy=False)
    try:
        return matrix.astype(float)
    except (TypeError, ValueError):
        return matrix.astype(object)  # categories (strings): coded by `_categorical_ratings`


def _matrix_pieces(matrix: np.ndarray) -> tuple[list[tuple[np.ndarray, np.ndarray | None, int, int]], bool]:
    """The ratings of a float `[n_raters, n_units]` matrix, read once in memory order and in row blocks.

    Returns `(pieces, units_major)`; each piece is `(values, units, start, n_rows)`: a block without NaN keeps its
    cells as a view and `units=None` (its units follow from the block's position), a block with NaN gives its
    non-NaN values and their units (`flatnonzero` of a NaN mask in a reused buffer: nothing matrix-sized is
    allocated, and fresh large allocations cost more than the arithmetic on a busy machine).
    """
    units_major = matrix.flags.f_contiguous and not matrix.flags.c_contiguous
    grid = matrix.T if units_major else np.ascontiguousarray(matrix)  # walk the matrix in memory order
    n_outer, n_inner = grid.shape
    rows = max(1, _BLOCK_CELLS // max(n_inner, 1))
    mask = np.empty(min(rows, n_outer) * n_inner, dtype=bool)
    pieces: list[tuple[np.ndarray, np.ndarray | None, int, int]] = []
    for start in range(0, n_outer, rows):
        block = grid[start : start + rows]
        flat = block.ravel()
        missing = mask[: flat.size]
        np.isnan(flat, out=missing)
        if not missing.any():
            pieces.append((flat, None, start, block.shape[0]))
            continue
        index = np.flatnonzero(np.logical_not(missing, out=missing))
        units = start + index // n_inner if units_major else index % n_inner
        pieces.append((flat[index], units, start, block.shape[0]))
    return pieces, units_major


def _integral_span(pieces: Sequence[np.ndarray]) -> tuple[float, int] | None:
    """`(lowest, span)` when every value is an integer and the range is small enough for a lookup table."""
    pieces = [v for v in pieces if v.size]
    if not pieces:
        return None
    low, high = min(float(v.min()) for v in pieces), max(float(v.max()) for v in pieces)
    if not (np.isfinite(low) and np.isfinite(high)) or high - low > _LOOKUP_SPAN:
        return None
    if not all(v.dtype.kind in "iub" or np.array_equal(v, np.floor(v)) for v in pieces):
        return None
    return low, int(high - low)


def _offset(values: np.ndarray, low: float) -> np.ndarray:
    """`values - low` as array indices (integer input stays integer: no float round trip)."""
    if values.dtype.kind in "iu":
        return values.astype(np.intp, copy=False) - int(low)
    return (values - low).astype(np.intp)


def _coder(
    pieces: Sequence[np.ndarray], value_domain: np.ndarray | None
) -> tuple[Callable[[np.ndarray], np.ndarray], np.ndarray]:
    """`(code, domain)`: `code(values)` gives each value's position in the domain (given, or the values present,
    ascending). Integers of a small range go through a lookup table (no sort, no search); anything else through
    one sort (`np.unique`) or `searchsorted`. A value outside a given domain is a `ValueError`."""
    if any(np.isinf(v).any() for v in pieces):
        raise ValueError("reliability_data contains an infinite value; use NaN for missing ratings")
    span = _integral_span(pieces)
    if value_domain is None:
        if span is not None:
            low, width = span
            present = np.zeros(width + 1, dtype=bool)
            for v in pieces:
                present |= np.bincount(_offset(v, low), minlength=width + 1) > 0
            lookup = np.cumsum(present) - 1
            return (lambda v: lookup[_offset(v, low)]), low + np.flatnonzero(present).astype(float)
        domain = np.unique(np.concatenate(pieces)) if pieces else np.empty(0)
        return (lambda v: np.searchsorted(domain, v)), domain
    domain = value_domain
    if span is not None and np.isfinite(domain).all():
        low, width = span
        table = np.full(width + 1, -1, dtype=np.intp)
        offset = domain - low
        inside = (offset >= 0) & (offset <= width) & (offset == np.floor(offset))
        table[offset[inside].astype(np.intp)] = np.flatnonzero(inside)

        def code(v: np.ndarray) -> np.ndarray:
            codes = table[_offset(v, low)]
            if (codes < 0).any():
                _unknown(v, domain)
            return codes

        return code, domain
    order = np.argsort(domain, kind="stable")
    sorted_domain = domain[order]

    def search(v: np.ndarray) -> np.ndarray:
        if v.size == 0:
            return np.empty(0, dtype=np.intp)
        position = np.minimum(np.searchsorted(sorted_domain, v), max(domain.size - 1, 0))
        if domain.size == 0 or not np.array_equal(sorted_domain[position], v):
            _unknown(v, domain)
        return order[position]

    return search, domain


def _unknown(values: np.ndarray, domain: np.ndarray) -> None:
    unknown = np.setdiff1d(values, domain)
    raise ValueError(f"value_domain misses value(s) present in the data: {unknown[:5].tolist()}")


def _codes(values: np.ndarray, value_domain: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """`(codes [n], domain [K])` of one array of values (see `_coder`)."""
    code, domain = _coder([values], value_domain)
    return code(values), domain


def _dense_counts(
    grid: np.ndarray, units_major: bool, value_domain: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray] | None:
    """Counts of a matrix without NaN over a small domain (<= 32 values: every Likert scale) by one `grid == value`
    pass per value and row block, or None when the domain is larger or some value is outside it (the general path
    then codes the values, or names the unknown ones). `grid` is in memory order: `[raters, units]`, or
    `[units, raters]` when `units_major`. Cheaper than coding: no index arrays, only comparisons and counts."""
    if value_domain is None:
        low, high = float(grid.min()), float(grid.max())
        if not (np.isfinite(low) and np.isfinite(high)) or high - low >= _SMALL_DOMAIN or low != np.floor(low):
            return None
        candidates = np.arange(low, high + 1.0)
    else:
        if value_domain.size > _SMALL_DOMAIN or not np.isfinite(value_domain).all():
            return None
        candidates = value_domain
    n_outer, n_inner = grid.shape
    n_units = n_inner if not units_major else n_outer
    counts = np.zeros((candidates.size, n_units)).T  # column-major: each value's column is contiguous
    rows = max(1, _BLOCK_CELLS // max(n_inner, 1))
    for start in range(0, n_outer, rows):
        block = grid[start : start + rows]
        for k, value in enumerate(candidates):
            if units_major:
                counts[start : start + rows, k] = np.count_nonzero(block == value, axis=1)
            else:
                counts[:, k] += np.count_nonzero(block == value, axis=0)
    if counts.sum() != grid.size:
        return None
    if value_domain is None:
        used = counts.sum(axis=0) > 0
        return (counts, candidates) if used.all() else (counts[:, used], candidates[used])
    return counts, candidates


def _categorical_ratings(
    matrix: np.ndarray, value_domain: Sequence[object] | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`(units, codes, domain)` of a matrix of categories (strings); None, NaN and "" are missing."""
    missing = pd.isna(matrix) | (matrix == "")
    present = ~np.asarray(missing, dtype=bool)
    _, units = np.nonzero(present)
    values = matrix[present]  # row-major, as nonzero walks it
    if value_domain is None:
        try:
            domain = np.array(sorted(set(values.tolist())), dtype=object)
        except TypeError:
            raise ValueError("reliability_data mixes categories that cannot be ordered (e.g. 2 and '2')") from None
    else:
        domain = np.asarray(list(value_domain), dtype=object)
    index = pd.Index(domain)
    if not index.is_unique:
        raise ValueError("value_domain must be 1-D without repeated values")
    codes = index.get_indexer(values)
    if (codes < 0).any():
        raise ValueError(
            f"value_domain misses value(s) present in the data: {sorted(set(values[codes < 0]), key=str)[:5]}"
        )
    return units, codes, domain


def _counts(units: np.ndarray, codes: np.ndarray, n_units: int, n_values: int) -> np.ndarray:
    flat = np.bincount(units * n_values + codes, minlength=n_units * n_values)
    return flat.reshape(n_units, n_values).astype(float)


def value_counts_matrix(
    reliability_data: np.ndarray | pd.DataFrame, value_domain: Sequence[object] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Units x values count matrix `n_uc` and the value domain.

    Args:
        reliability_data: `[n_raters, n_units]`, NaN for a missing rating; numbers, or categories (strings, with
            None/NaN/"" missing) for nominal alpha or a custom distance.
        value_domain: the possible values (ascending for ordinal/interval/ratio); default: the values present.

    Returns:
        `counts: [n_units, n_values]` and `domain: [n_values]` (the given order, or ascending when inferred).

    The ratings are pulled out of the matrix in one blocked pass (NaN mask, `flatnonzero`; blocks without NaN are
    used in place), coded by a lookup table when they are integers of a small range (every Likert or 0..100 scale)
    or by one sort otherwise, and counted by one `bincount` over (unit, code): the matrix is read once whatever the
    domain, and nothing matrix-sized is allocated.
    """
    matrix = _as_matrix(reliability_data)
    domain = None
    if value_domain is not None:
        try:
            domain = np.asarray(value_domain, dtype=float)
        except (TypeError, ValueError):
            domain = None
            if matrix.dtype != object:
                raise ValueError("value_domain holds categories but the ratings are numbers") from None
        if domain is not None and (domain.ndim != 1 or np.unique(domain).size != domain.size):
            raise ValueError("value_domain must be 1-D without repeated values")
    if matrix.dtype == object:
        units, codes, categories = _categorical_ratings(matrix, value_domain)
        return _counts(units, codes, matrix.shape[1], len(categories)), categories
    pieces, units_major = _matrix_pieces(matrix)
    if pieces and all(units is None for _, units, _, _ in pieces):  # no NaN at all
        dense = _dense_counts(matrix.T if units_major else matrix, units_major, domain)
        if dense is not None:
            return dense
    code, domain = _coder([values for values, *_ in pieces], domain)
    n_units, n_values = matrix.shape[1], domain.size
    flat = []
    for values, units, start, n_rows in pieces:
        codes = code(values)
        if units is not None:
            flat.append(units * n_values + codes)
        elif units_major:  # a dense block of units start..start + n_rows, each row one unit
            flat.append((codes.reshape(n_rows, -1) + ((start + np.arange(n_rows)) * n_values)[:, None]).ravel())
        else:  # a dense block of raters: each row holds every unit
            flat.append((codes.reshape(n_rows, -1) + (np.arange(n_units) * n_values)[None, :]).ravel())
    joined = np.concatenate(flat) if flat else np.empty(0, dtype=np.intp)
    counts = np.bincount(joined, minlength=n_units * n_values)
    return counts.reshape(n_units, n_values).astype(float), domain


def answers_value_counts(
    answers: pd.DataFrame,
    value_domain: Sequence[object] | None = None,
    *,
    unit: str = "task",
    value: str = "label",
    rater: str | None = "worker",
) -> tuple[np.ndarray, np.ndarray]:
    """Units x values counts straight from a long table (crowd-kit's `worker, task, label`; or name the columns,
    e.g. `unit="statement_id", value="value", rater="worker_id"` for `to_long`'s table), without a raters x units
    matrix: alpha ignores who rated, so only (unit, value) pairs are counted.

    A rater that rates a unit twice is refused (`ValueError`), as `to_reliability_matrix` does; `rater=None` skips
    the check (each row is then one rating). Missing values (NaN/None) are not ratings. Integer unit ids of a small
    range are used as codes directly; other ids are hashed once (`pandas.factorize`).
    """
    missing = [c for c in (unit, value) if c not in answers.columns]
    if rater is not None and rater not in answers.columns:
        missing.append(rater)
    if missing:
        raise ValueError(f"answers lack column(s) {missing}")
    raw = answers[value]
    keep = raw.notna().to_numpy()
    if not keep.all():
        answers = answers[keep]
        raw = answers[value]
    unit_codes, n_units = _unit_codes(answers[unit])
    if rater is not None:
        rater_codes, n_raters = _unit_codes(answers[rater])
        pair = rater_codes.astype(np.int64) * n_units + unit_codes
        if n_raters * n_units <= _PAIR_TABLE:
            repeated = bool(pair.size) and int(np.bincount(pair, minlength=n_raters * n_units).max()) > 1
        else:
            repeated = not pd.Index(pair).is_unique
        if repeated:
            from truth_crowd.aggregation import check_unique_pairs

            check_unique_pairs(answers[[rater, unit]].set_axis(["worker", "task"], axis=1))
    if pd.api.types.is_numeric_dtype(raw.dtype) and not pd.api.types.is_bool_dtype(raw.dtype):
        values = raw.to_numpy() if raw.dtype.kind in "iu" else raw.to_numpy(dtype=float)
        domain = None if value_domain is None else np.asarray(value_domain, dtype=float)
        if domain is not None and (domain.ndim != 1 or np.unique(domain).size != domain.size):
            raise ValueError("value_domain must be 1-D without repeated values")
        codes, domain = _codes(values, domain)
        return _counts(unit_codes, codes, n_units, domain.size), domain
    column = raw.to_numpy(dtype=object)[None, :]
    _, codes, categories = _categorical_ratings(column, value_domain)
    return _counts(unit_codes, codes, n_units, len(categories)), categories


def _unit_codes(ids: pd.Series) -> tuple[np.ndarray, int]:
    """Integer codes of unit ids: integer ids of a small range are their own codes (no hashing)."""
    if pd.api.types.is_integer_dtype(ids.dtype) and len(ids):
        raw = ids.to_numpy()
        low, high = int(raw.min()), int(raw.max())
        if high - low <= 4 * len(ids):
            return (raw - low).astype(np.intp, copy=False), high - low + 1
    if isinstance(ids.dtype, pd.CategoricalDtype):
        codes = ids.cat.codes.to_numpy()
        if (codes < 0).any():
            raise ValueError("answers: a unit id is missing")
        return codes.astype(np.intp), len(ids.cat.categories)
    codes, uniques = pd.factorize(ids, sort=False)
    if (codes < 0).any():
        raise ValueError("answers: a unit id is missing")
    return codes.astype(np.intp), len(uniques)


def _distance(domain: np.ndarray, n_c: np.ndarray, level: Level | DistanceFunction) -> np.ndarray:
    """Squared distances delta^2 between the values of the domain, `[n_values, n_values]`."""
    c, k = domain[:, None], domain[None, :]
    if callable(level):
        i = np.arange(domain.size)
        delta = np.asarray(level(c, k, i1=i[:, None], i2=i[None, :], n_v=n_c), dtype=float)
        if delta.shape != (domain.size, domain.size) or not np.isfinite(delta).all():
            raise ValueError(
                f"the distance function must return finite values of shape {(domain.size, domain.size)} "
                f"for the broadcast domain, got shape {delta.shape}"
            )
        return delta
    if level == "nominal":
        return (c != k).astype(float)
    if domain.dtype == object:
        if level != "ordinal":
            raise ValueError(f"{level} alpha needs numbers; categories (strings) allow nominal or ordinal alpha")
    elif level == "interval":
        return (c - k) ** 2
    elif level == "ratio":
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
    raise ValueError(f"level must be one of {LEVELS} or a distance function, got {level!r}")


def _alpha_from_counts(
    counts: np.ndarray, domain: np.ndarray, level: Level | DistanceFunction, *, keep_order: bool = False
) -> float:
    """Alpha from the units x values counts `[n_units, n_values]`.

    Numeric domains are put in ascending order (it matters for ordinal alpha) unless `keep_order`; categories and
    custom distances keep the domain's order, as the `krippendorff` package does.
    """
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
    if not keep_order and not callable(level) and domain.dtype != object:
        order = np.argsort(domain, kind="stable")
        domain, n_c, coincidence = domain[order], n_c[order], coincidence[np.ix_(order, order)]
    delta = _distance(domain, n_c, level)
    expected = (np.outer(n_c, n_c) - np.diag(n_c)) / (n - 1.0)
    observed_disagreement = float((coincidence * delta).sum())
    expected_disagreement = float((expected * delta).sum())
    if expected_disagreement == 0.0:
        return float("nan")  # a single value in the pairable data: alpha is undefined
    return 1.0 - observed_disagreement / expected_disagreement


def _check_level(level: object) -> None:
    if not callable(level) and level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS} or a distance function, got {level!r}")


def krippendorff_alpha(
    reliability_data: np.ndarray | pd.DataFrame | Sequence[Sequence[object]] | None = None,
    *,
    level: Level | DistanceFunction = "interval",
    value_domain: Sequence[object] | None = None,
    value_counts: np.ndarray | pd.DataFrame | None = None,
    answers: pd.DataFrame | None = None,
) -> float:
    """Krippendorff's alpha, as `krippendorff.alpha`, from one of three inputs:

    - `reliability_data: [n_raters, n_units]` (NaN = missing; numbers, or categories such as strings for nominal,
      ordinal with an ordered `value_domain`, or a custom distance);
    - `value_counts: [n_units, n_values]`, how many raters gave each value to each unit (the package's other input;
      `value_domain` then names the columns, default 0..n_values-1);
    - `answers`, a long table `worker, task, label` (crowd-kit's layout; `answers_value_counts` for other column
      names), counted without building the raters x units matrix.

    `level` is "nominal", "ordinal", "interval", "ratio" or a distance function in the `krippendorff` package's
    convention (`DistanceFunction`: squared distance of broadcast value arrays). Units with fewer than two ratings
    do not count. Returns NaN when alpha is undefined (no pairable unit, or only one value among the pairable
    ratings); the reference raises instead. `value_domain` matters for ordinal alpha only through values no unit
    used (they carry zero mass), and for custom distances through its order.
    """
    _check_level(level)
    given = sum(x is not None for x in (reliability_data, value_counts, answers))
    if given != 1:
        raise ValueError("give exactly one of reliability_data, value_counts or answers")
    if answers is not None:
        counts, domain = answers_value_counts(answers, value_domain)
    elif value_counts is not None:
        counts, domain = _checked_value_counts(value_counts, value_domain)
    else:
        counts, domain = value_counts_matrix(reliability_data, value_domain)  # type: ignore[arg-type]
    return _alpha_from_counts(counts, domain, level)


def _checked_value_counts(
    value_counts: np.ndarray | pd.DataFrame, value_domain: Sequence[object] | None
) -> tuple[np.ndarray, np.ndarray]:
    counts = np.asarray(value_counts, dtype=float)
    if counts.ndim != 2:
        raise ValueError(f"value_counts must be 2-D [n_units, n_values], got shape {counts.shape}")
    if not np.isfinite(counts).all() or (counts < 0).any() or not np.array_equal(counts, np.floor(counts)):
        raise ValueError("value_counts must hold non-negative whole numbers")
    if value_domain is None:
        domain = np.arange(counts.shape[1], dtype=float)
    else:
        domain = np.asarray(list(value_domain))
        domain = domain.astype(float) if domain.dtype.kind in "fiub" else domain.astype(object)
        if domain.ndim != 1 or len(pd.unique(domain)) != domain.size:
            raise ValueError("value_domain must be 1-D without repeated values")
        if domain.size != counts.shape[1]:
            raise ValueError(f"value_domain has {domain.size} values but value_counts has {counts.shape[1]} columns")
    return counts, domain


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
    _check_level(level)
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
    value_domain: Sequence[float] | None = None,
) -> pd.DataFrame:
    """Alpha per item, level and group (`by` column of the wide table, e.g. dataset) plus an `ALL` group.

    `value_domain`: the scale's values (`CrowdData.scale.domain`); None (default) takes the values present, which
    gives the same alpha (a value nobody used carries no mass), never an assumed -2..2.

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
