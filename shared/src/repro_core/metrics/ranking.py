"""Ranking metrics over batches of queries: nDCG@k, recall@k, MRR and average precision.

Every function takes `scores: [..., n_items]` (higher is better) and `relevance` in one of two forms:

- graded relevance `[..., n_items]` (same shape as `scores`, finite, >= 0); the binary metrics (recall, MRR, AP)
  treat `relevance > 0` as relevant;
- "single relevance": one target item per query as an integer index array `[...]` (the shape of `scores` less
  its last axis), e.g. the correct answer among candidates. `one_hot_relevance` builds the matrix explicitly.

All leading axes are query axes. `reduce="mean"` returns a Python float (the mean over queries); `reduce="none"`
returns a float64 numpy array of shape `scores.shape[:-1]` with one value per query, which is what
`repro_core.metrics.bootstrap_ci` resamples.

Conventions (why they matter: a model with constant scores must not look good):

- `ndcg` matches `sklearn.metrics.ndcg_score` exactly: with `ignore_ties=False` (default) the gain of tied items
  is averaged over their group, i.e. the expectation over all orders of the ties. Queries whose relevance is all
  zero score 0 and *count* in the mean, as in scikit-learn >= 1.x.
- `average_precision` matches `sklearn.metrics.average_precision_score` per query (step-wise precision at each
  distinct score threshold, so tied items form one step). Queries with no relevant item give NaN and are left
  out of the mean (scikit-learn returns 0 with a warning instead).
- `recall_at_k` and `mrr` need an order inside ties; `ties="pessimistic"` (default) ranks relevant items after
  irrelevant ones with the same score, `"optimistic"` before them, `"index"` by item position (lower index first).
  Queries with no relevant item give NaN and are left out of the mean.
- When every query is left out the mean is NaN (and a warning is logged).
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np

from repro_core.metrics._arrays import (
    Reduce,
    as_float64,
    as_int_array,
    check_reduce,
    reduce_values,
    to_numpy,
)

__all__ = [
    "Ties",
    "average_precision",
    "mrr",
    "ndcg",
    "one_hot_relevance",
    "recall_at_k",
]

logger = logging.getLogger(__name__)

#: Order inside groups of equal scores, for metrics that need one (recall@k, MRR, CMC).
Ties = Literal["pessimistic", "optimistic", "index"]


def one_hot_relevance(targets: Any, n_items: int) -> np.ndarray:
    """Binary relevance `[..., n_items]` (float64) from target indices `targets: [...]` (one relevant item each)."""
    if isinstance(n_items, bool) or not isinstance(n_items, (int, np.integer)) or n_items < 1:
        raise ValueError(f"n_items must be a positive integer; got {n_items!r}")
    idx = as_int_array(targets, "targets")
    if idx.size and (idx.min() < 0 or idx.max() >= n_items):
        raise ValueError(f"targets must lie in [0, {n_items}); got values in [{idx.min()}, {idx.max()}]")
    out = np.zeros((*idx.shape, int(n_items)), dtype=np.float64)
    np.put_along_axis(out, idx[..., None], 1.0, axis=-1)
    return out


def _prepare(scores: Any, relevance: Any) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """Scores and relevance as float64 `[n_queries, n_items]`, plus the query shape to restore per-query output."""
    s = as_float64(scores, "scores")
    if s.ndim == 0:
        raise ValueError("scores must have at least one axis: [..., n_items]")
    n_items = s.shape[-1]
    if n_items < 1:
        raise ValueError("scores must have at least one item (last axis of size >= 1)")
    rel_raw = to_numpy(relevance, "relevance")
    if rel_raw.shape == s.shape:
        rel = as_float64(rel_raw, "relevance", allow_inf=False)
        if rel.size and rel.min() < 0:
            raise ValueError("relevance must be >= 0 (graded gains); got a negative value")
    elif rel_raw.shape == s.shape[:-1]:
        rel = one_hot_relevance(rel_raw, n_items)
    else:
        raise ValueError(
            f"relevance must have the shape of scores {s.shape} (graded relevance) or {s.shape[:-1]} "
            f"(one target index per query); got {rel_raw.shape}"
        )
    batch_shape = s.shape[:-1]
    return s.reshape(-1, n_items), rel.reshape(-1, n_items), batch_shape


def _check_k(k: int | None) -> int | None:
    if k is None:
        return None
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer or None; got {k!r}")
    return int(k)


def _check_ties(ties: str) -> None:
    if ties not in ("pessimistic", "optimistic", "index"):
        raise ValueError(f"ties must be 'pessimistic', 'optimistic' or 'index'; got {ties!r}")


def _rank_order(scores: np.ndarray, relevant: np.ndarray, ties: str, valid: np.ndarray | None = None) -> np.ndarray:
    """Item order per row `[n_queries, n_items]`: valid items first, then by score descending, then by `ties`.

    `np.lexsort` is stable, so whatever the keys leave tied stays in index order.
    """
    keys: list[np.ndarray] = []
    if ties == "pessimistic":
        keys.append(relevant)  # False (irrelevant) sorts first
    elif ties == "optimistic":
        keys.append(~relevant)
    keys.append(-scores)
    if valid is not None:
        keys.append(~valid)  # primary key: excluded items go last
    return np.lexsort(tuple(keys), axis=-1)


def _tie_group_starts(sorted_scores: np.ndarray, sorted_valid: np.ndarray | None = None) -> np.ndarray:
    """True where a new group of equal scores starts along each sorted row `[n_queries, n_items]`."""
    start = np.ones(sorted_scores.shape, dtype=bool)
    start[:, 1:] = sorted_scores[:, 1:] != sorted_scores[:, :-1]
    if sorted_valid is not None:
        start[:, 1:] |= sorted_valid[:, 1:] != sorted_valid[:, :-1]
    return start


def _dcg_discount(n_items: int, k: int | None) -> np.ndarray:
    """1 / log2(rank + 1) for ranks 1..n_items, zero past rank k."""
    discount = 1.0 / np.log2(np.arange(n_items, dtype=np.float64) + 2.0)
    if k is not None:
        discount[k:] = 0.0
    return discount


def _tie_averaged_dcg(scores: np.ndarray, gains: np.ndarray, discount: np.ndarray) -> np.ndarray:
    """DCG per row `[n_queries]` where tied items share the mean gain of their group (expected DCG over tie orders).

    A group of c tied items covering ranks r..r+c-1 contributes (sum of its gains) * (sum of its discounts) / c.
    Groups of all rows are summed at once with `np.bincount` on globally numbered groups.
    """
    n_queries, n_items = scores.shape
    order = np.argsort(-scores, axis=-1, kind="stable")
    s_sorted = np.take_along_axis(scores, order, axis=-1)
    g_sorted = np.take_along_axis(gains, order, axis=-1)
    group = np.cumsum(_tie_group_starts(s_sorted), axis=-1) - 1
    group += (np.arange(n_queries) * n_items)[:, None]
    flat = group.ravel()
    size = n_queries * n_items
    gain_sum = np.bincount(flat, weights=g_sorted.ravel(), minlength=size)
    disc_sum = np.bincount(flat, weights=np.broadcast_to(discount, scores.shape).ravel(), minlength=size)
    count = np.bincount(flat, minlength=size)
    per_group = np.divide(gain_sum * disc_sum, count, out=np.zeros(size), where=count > 0)
    return per_group.reshape(n_queries, n_items).sum(axis=-1)


def ndcg(
    scores: Any,
    relevance: Any,
    *,
    k: int | None = None,
    ignore_ties: bool = False,
    reduce: Reduce = "mean",
) -> float | np.ndarray:
    """Normalised discounted cumulative gain at `k`, equal to `sklearn.metrics.ndcg_score(relevance, scores, k=k)`.

    Args:
        scores: `[..., n_items]` predicted scores, higher ranks first.
        relevance: graded gains `[..., n_items]` (>= 0), or one target index per query `[...]`.
        k: only the top `k` ranks count (None: all).
        ignore_ties: False averages the gain inside groups of equal scores (scikit-learn's default); True
            ranks tied items by position (lower index first), which is faster but arbitrary under ties.
        reduce: `"mean"` -> float, `"none"` -> `[...]` per query. All-zero-relevance queries score 0.
    """
    check_reduce(reduce)
    k = _check_k(k)
    s, rel, batch_shape = _prepare(scores, relevance)
    discount = _dcg_discount(s.shape[1], k)
    if ignore_ties:
        order = np.argsort(-s, axis=-1, kind="stable")
        dcg = np.take_along_axis(rel, order, axis=-1) @ discount
    else:
        dcg = _tie_averaged_dcg(s, rel, discount)
    ideal = -np.sort(-rel, axis=-1) @ discount
    values = np.divide(dcg, ideal, out=np.zeros_like(dcg), where=ideal > 0)
    return reduce_values(values.reshape(batch_shape), reduce)


def _mean_or_warn(values: np.ndarray, reduce: str, what: str) -> float | np.ndarray:
    if reduce == "mean" and values.size and np.isnan(values).all():
        logger.warning("%s: no query has a relevant item; the mean is NaN", what)
    return reduce_values(values, reduce, skip_nan=True)


def recall_at_k(
    scores: Any,
    relevance: Any,
    k: int,
    *,
    ties: Ties = "pessimistic",
    reduce: Reduce = "mean",
) -> float | np.ndarray:
    """Fraction of a query's relevant items (`relevance > 0`) ranked in the top `k`.

    Args:
        scores: `[..., n_items]`; relevance: `[..., n_items]` or target indices `[...]`.
        k: cut-off rank (>= 1; larger than n_items means all items).
        ties: order inside equal scores, see the module docstring.
        reduce: `"mean"` -> float over queries with a relevant item; `"none"` -> `[...]`, NaN where none.
    """
    check_reduce(reduce)
    _check_ties(ties)
    if k is None:
        raise ValueError("k is required for recall_at_k")
    cutoff = int(_check_k(k) or 0)
    s, rel, batch_shape = _prepare(scores, relevance)
    relevant = rel > 0
    order = _rank_order(s, relevant, ties)
    hits = np.take_along_axis(relevant, order[:, :cutoff], axis=-1).sum(axis=-1)
    n_relevant = relevant.sum(axis=-1)
    values = np.divide(hits, n_relevant, out=np.full(hits.shape, np.nan), where=n_relevant > 0)
    return _mean_or_warn(values.reshape(batch_shape), reduce, "recall_at_k")


def mrr(
    scores: Any,
    relevance: Any,
    *,
    k: int | None = None,
    ties: Ties = "pessimistic",
    reduce: Reduce = "mean",
) -> float | np.ndarray:
    """Mean reciprocal rank of the first relevant item (`relevance > 0`); 0 when it ranks below `k`.

    Args:
        scores: `[..., n_items]`; relevance: `[..., n_items]` or target indices `[...]`.
        k: MRR@k cut-off (None: no cut-off).
        ties: order inside equal scores; "pessimistic" gives rank 1 + (#items scoring higher) + (#irrelevant
            items scoring the same) for the best relevant item.
        reduce: `"mean"` -> float over queries with a relevant item; `"none"` -> `[...]`, NaN where none.
    """
    check_reduce(reduce)
    _check_ties(ties)
    k = _check_k(k)
    s, rel, batch_shape = _prepare(scores, relevance)
    relevant = rel > 0
    order = _rank_order(s, relevant, ties)
    ranked = np.take_along_axis(relevant, order, axis=-1)
    first = np.argmax(ranked, axis=-1)  # 0-based position of the first relevant item
    values = 1.0 / (first + 1.0)
    if k is not None:
        values[first >= k] = 0.0
    values[~ranked.any(axis=-1)] = np.nan
    return _mean_or_warn(values.reshape(batch_shape), reduce, "mrr")


def _average_precision_sorted(
    s_sorted: np.ndarray, r_sorted: np.ndarray, valid_sorted: np.ndarray | None = None
) -> np.ndarray:
    """AP per row `[n_queries]` from rows sorted by score descending (excluded items, if any, last).

    Each relevant item contributes the precision at the end of its group of tied scores (scikit-learn's
    threshold-wise definition), divided by the number of relevant items; NaN where there is none.
    """
    n_queries, n_items = s_sorted.shape
    start = _tie_group_starts(s_sorted, valid_sorted)
    end = np.zeros_like(start)
    end[:, :-1] = start[:, 1:]
    end[:, -1] = True
    position = np.where(end, np.arange(n_items), n_items)
    group_end = np.minimum.accumulate(position[:, ::-1], axis=-1)[:, ::-1]
    cum_hits = np.cumsum(r_sorted, axis=-1, dtype=np.float64)
    precision_at_end = np.take_along_axis(cum_hits, group_end, axis=-1) / (group_end + 1.0)
    n_relevant = r_sorted.sum(axis=-1, dtype=np.float64)
    total = (precision_at_end * r_sorted).sum(axis=-1)
    return np.divide(total, n_relevant, out=np.full(n_queries, np.nan), where=n_relevant > 0)


def average_precision(scores: Any, relevance: Any, *, reduce: Reduce = "mean") -> float | np.ndarray:
    """Average precision per query, equal to `sklearn.metrics.average_precision_score(relevance > 0, scores)`.

    Args:
        scores: `[..., n_items]`; relevance: `[..., n_items]` (> 0 is relevant) or target indices `[...]`.
        reduce: `"mean"` -> float (mAP) over queries with a relevant item; `"none"` -> `[...]`, NaN where none.
    """
    check_reduce(reduce)
    s, rel, batch_shape = _prepare(scores, relevance)
    order = np.argsort(-s, axis=-1, kind="stable")
    s_sorted = np.take_along_axis(s, order, axis=-1)
    r_sorted = np.take_along_axis(rel > 0, order, axis=-1)
    values = _average_precision_sorted(s_sorted, r_sorted)
    return _mean_or_warn(values.reshape(batch_shape), reduce, "average_precision")
