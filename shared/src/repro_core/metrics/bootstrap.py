"""Bootstrap confidence intervals for a metric, from per-item values or paired arrays.

Resampling is over the first axis (items: queries, examples). Indices are drawn with `numpy.random.default_rng`,
so a given seed gives the same interval on every machine and run. The default statistic (the mean of a 1-D
array) is computed for a whole block of resamples at once; a custom statistic is called once per resample, or
once per block with `vectorized=True`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from repro_core.metrics._arrays import to_numpy

__all__ = ["BootstrapCI", "bootstrap_ci"]

#: Resampled entries held at once (indices plus gathered values), about 32 MiB per gathered float64 array.
_BLOCK_ENTRIES = 1 << 22


@dataclass(frozen=True)
class BootstrapCI:
    """A bootstrap confidence interval.

    Attributes:
        estimate: the statistic on the original data.
        low, high: interval bounds.
        confidence: coverage level, e.g. 0.95.
        n_resamples: number of bootstrap resamples.
        method: "percentile" or "basic".
        standard_error: standard deviation of the bootstrap distribution (ddof=1).
    """

    estimate: float
    low: float
    high: float
    confidence: float
    n_resamples: int
    method: str
    standard_error: float

    def to_dict(self) -> dict[str, float | int | str]:
        """The fields as a JSON-ready dict."""
        return asdict(self)


def _check_finite_numbers(arr: np.ndarray, name: str) -> None:
    inexact = np.issubdtype(arr.dtype, np.inexact)
    if inexact and arr.size and np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN; drop undefined items (e.g. queries without positives) first")


def bootstrap_ci(
    data: Any,
    statistic: Callable[..., Any] | None = None,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int | np.random.Generator = 0,
    method: Literal["percentile", "basic"] = "percentile",
    vectorized: bool = False,
) -> BootstrapCI:
    """Confidence interval of `statistic(data)` by resampling items with replacement.

    Args:
        data: one array-like `[n, ...]` (per-item metric values, e.g. `ndcg(..., reduce="none")`), or a *tuple*
            of array-likes sharing the first axis `[n, ...]` (paired inputs such as predictions and targets),
            resampled with the same indices. numpy arrays, torch tensors and lists are accepted.
        statistic: None for the mean of a 1-D `data` `[n]`; otherwise called as `statistic(*arrays)` on each
            resample (one array per element of the tuple) and must return a number.
        n_resamples: number of bootstrap resamples.
        confidence: interval coverage in (0, 1).
        seed: int seed for `numpy.random.default_rng`, or a Generator (advanced by the call).
        method: "percentile" (quantiles of the bootstrap distribution) or "basic" (reflected around the estimate).
        vectorized: `statistic` takes arrays with a leading resample axis `[b, n, ...]` and returns `[b]`; the
            estimate is computed the same way with b = 1.
    """
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) or n_resamples < 2:
        raise ValueError(f"n_resamples must be an integer >= 2; got {n_resamples!r}")
    if not isinstance(confidence, (int, float)) or not 0.0 < float(confidence) < 1.0:
        raise ValueError(f"confidence must lie in (0, 1); got {confidence!r}")
    if method not in ("percentile", "basic"):
        raise ValueError(f"method must be 'percentile' or 'basic'; got {method!r}")
    if isinstance(seed, np.random.Generator):
        rng = seed
    elif isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        rng = np.random.default_rng(int(seed))
    else:
        raise ValueError(f"seed must be an int or a numpy.random.Generator; got {seed!r}")

    paired = isinstance(data, tuple)
    items = data if paired else (data,)
    if paired and not items:
        raise ValueError("data is an empty tuple")
    names = [f"data[{i}]" for i in range(len(items))] if paired else ["data"]
    arrays = [to_numpy(x, name) for x, name in zip(items, names, strict=True)]
    for arr, name in zip(arrays, names, strict=True):
        if arr.ndim == 0:
            raise ValueError(f"{name} must have a leading item axis [n, ...]; got a scalar")
        _check_finite_numbers(arr, name)
    n = arrays[0].shape[0]
    for arr, name in zip(arrays[1:], names[1:], strict=True):
        if arr.shape[0] != n:
            raise ValueError(f"{name} has {arr.shape[0]} items but {names[0]} has {n}; paired inputs must match")
    if n < 1:
        raise ValueError("data has no items")

    if statistic is None:
        if paired or arrays[0].ndim != 1:
            raise ValueError("the default statistic (mean) needs one 1-D array [n]; pass statistic= otherwise")
        if not (np.issubdtype(arrays[0].dtype, np.number) or arrays[0].dtype == np.bool_):
            raise ValueError(f"data must be numeric; got dtype {arrays[0].dtype}")
        values = arrays[0].astype(np.float64, copy=False)
        estimate = float(values.mean())

        def block_stat(idx: np.ndarray) -> np.ndarray:
            return values[idx].mean(axis=1)
    else:
        if vectorized:

            def call_vectorized(batch: list[np.ndarray]) -> np.ndarray:
                out = to_numpy(statistic(*batch), "statistic output").astype(np.float64, copy=False)
                b = batch[0].shape[0]
                if out.shape != (b,):
                    raise ValueError(
                        f"a vectorized statistic must return shape ({b},) for {b} resamples; got {out.shape}"
                    )
                return out

            estimate = float(call_vectorized([a[None] for a in arrays])[0])

            def block_stat(idx: np.ndarray) -> np.ndarray:
                return call_vectorized([a[idx] for a in arrays])
        else:
            estimate = _as_number(statistic(*arrays), "statistic(data)")

            def block_stat(idx: np.ndarray) -> np.ndarray:
                return np.array([_as_number(statistic(*(a[row] for a in arrays)), "statistic") for row in idx])

    if math.isnan(estimate):
        raise ValueError("the statistic is NaN on the original data")
    per_item = max(1, math.prod(arrays[0].shape))
    block = max(1, min(int(n_resamples), _BLOCK_ENTRIES // per_item))
    stats = np.empty(int(n_resamples))
    for start in range(0, int(n_resamples), block):
        stop = min(start + block, int(n_resamples))
        idx = rng.integers(0, n, size=(stop - start, n))
        stats[start:stop] = block_stat(idx)
    n_nan = int(np.isnan(stats).sum())
    if n_nan:
        raise ValueError(f"the statistic is NaN on {n_nan} of {n_resamples} resamples; it must be defined on all")

    alpha = 1.0 - float(confidence)
    q_low, q_high = np.quantile(stats, [alpha / 2.0, 1.0 - alpha / 2.0])
    if method == "basic":
        low, high = 2.0 * estimate - q_high, 2.0 * estimate - q_low
    else:
        low, high = q_low, q_high
    return BootstrapCI(
        estimate=estimate,
        low=float(low),
        high=float(high),
        confidence=float(confidence),
        n_resamples=int(n_resamples),
        method=method,
        standard_error=float(stats.std(ddof=1)),
    )


def _as_number(value: Any, what: str) -> float:
    arr = to_numpy(value, what)
    if arr.size != 1:
        raise ValueError(f"{what} must return one number; got shape {arr.shape}")
    return float(arr.reshape(()))
