"""Query/gallery retrieval evaluation: CMC top-k and mAP, with a leave-one-out mode.

This is the protocol of image retrieval and of backward-compatible representation learning (e.g. BT^2 reports
CMC top-1/top-5 and mAP): each query ranks the gallery by similarity, and a gallery item is a correct match
when its label equals the query's.

- CMC: `cmc[k-1]` is the fraction of evaluated queries whose first correct match is within rank k.
- mAP: mean over evaluated queries of the average precision of the gallery ranking, using the same tie-grouped
  definition as `repro_core.metrics.average_precision` (= `sklearn.metrics.average_precision_score`).
- Leave-one-out: a single set serves as queries and gallery; each query is removed from its own gallery (the
  diagonal of the square score matrix), so it cannot match itself.
- `gallery_mask` removes further gallery items per query (junk or same-camera images in person re-ID).
- Queries with no correct match left in their gallery cannot be scored: they are excluded from CMC and mAP,
  counted in `n_excluded`, and have `average_precision = NaN` and `first_hit_rank = 0`.
- Equal scores are ordered by `ties` (default "pessimistic": correct matches after wrong ones) for CMC; AP does not
  depend on the order inside ties.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from repro_core.metrics._arrays import as_float64, to_numpy
from repro_core.metrics.ranking import Ties, _check_ties

__all__ = ["RetrievalResult", "cmc", "mean_average_precision", "retrieval_metrics"]

logger = logging.getLogger(__name__)

#: Number of score-matrix entries sorted at once; bounds the memory of the int64 sort indices (~32 MiB).
_CHUNK_ENTRIES = 1 << 22


@dataclass(frozen=True, eq=False)
class RetrievalResult:
    """CMC curve and mAP of a retrieval evaluation, with the per-query values behind them.

    Attributes:
        cmc: `[max_rank]` float64; `cmc[k-1]` = fraction of evaluated queries with a correct match in the top k.
        mean_ap: mAP over evaluated queries (NaN when none is evaluated).
        average_precision: `[n_query]` AP per query; NaN for excluded queries.
        first_hit_rank: `[n_query]` int64 1-based rank of the first correct match; 0 for excluded queries.
        n_evaluated: queries with at least one correct match in their gallery.
        n_excluded: queries without one (left out of `cmc` and `mean_ap`).
    """

    cmc: np.ndarray
    mean_ap: float
    average_precision: np.ndarray
    first_hit_rank: np.ndarray
    n_evaluated: int
    n_excluded: int

    @classmethod
    def concatenate(cls, parts: Sequence[RetrievalResult]) -> RetrievalResult:
        """One result for the queries of consecutive blocks, each evaluated against the same gallery.

        Why: callers that score queries in blocks (to bound memory) get exactly the result of one call over all
        queries: per-query values are concatenated and the CMC curve and mAP recomputed over all of them.
        """
        if not parts:
            raise ValueError("parts: expected at least one RetrievalResult")
        lengths = {len(part.cmc) for part in parts}
        if len(lengths) != 1:
            raise ValueError(f"parts: CMC curves of different lengths {sorted(lengths)}; use the same max_rank")
        ap = np.concatenate([part.average_precision for part in parts])
        first_hit = np.concatenate([part.first_hit_rank for part in parts])
        return _summarise(ap, first_hit, lengths.pop())

    def top_k(self, k: int) -> float:
        """CMC top-k accuracy (`cmc[k-1]`); k beyond the computed curve is an error."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= len(self.cmc):
            raise ValueError(f"k must be an integer in [1, {len(self.cmc)}]; got {k!r}")
        return float(self.cmc[k - 1])

    def to_dict(self, ks: tuple[int, ...] = (1, 5)) -> dict[str, float | int]:
        """JSON-ready summary: `top{k}` for each k in `ks` that the curve covers, `mAP` and the query counts."""
        out: dict[str, float | int] = {f"top{k}": self.top_k(k) for k in ks if k <= len(self.cmc)}
        out["mAP"] = self.mean_ap
        out["n_evaluated"] = self.n_evaluated
        out["n_excluded"] = self.n_excluded
        return out


def _labels(x: Any, name: str) -> np.ndarray:
    arr = to_numpy(x, name)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D [n]; got shape {arr.shape}")
    if np.issubdtype(arr.dtype, np.floating) and np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN")
    return arr


def _as_scores(x: Any) -> np.ndarray:
    """Scores as float64, or kept as float32: sorting float32 is about twice as fast, and ranks are exact in both."""
    arr = to_numpy(x, "scores")
    if arr.dtype != np.float32:
        return as_float64(arr, "scores")
    if np.isnan(arr).any():
        raise ValueError("scores contains NaN")
    return arr


def retrieval_metrics(
    scores: Any,
    query_labels: Any,
    gallery_labels: Any = None,
    *,
    leave_one_out: bool = False,
    distances: bool = False,
    gallery_mask: Any = None,
    max_rank: int | None = None,
    ties: Ties = "pessimistic",
) -> RetrievalResult:
    """CMC and mAP of ranking the gallery for every query.

    Args:
        scores: `[n_query, n_gallery]` similarities (higher = closer), or distances when `distances=True`.
        query_labels: `[n_query]` class/identity of each query (any dtype comparable with `==`).
        gallery_labels: `[n_gallery]`; must be omitted (or equal `query_labels`) with `leave_one_out`.
        leave_one_out: queries are the gallery (`scores` square); each query's own entry (diagonal) is removed.
        distances: rank by ascending `scores` instead of descending.
        gallery_mask: `[n_query, n_gallery]` bool, False removes that gallery item for that query.
        max_rank: length of the CMC curve (default n_gallery).
        ties: order of equal scores for CMC ("pessimistic", "optimistic" or "index").
    """
    _check_ties(ties)
    s = _as_scores(scores)
    if s.ndim != 2:
        raise ValueError(f"scores must be 2-D [n_query, n_gallery]; got shape {s.shape}")
    if distances:
        s = -s
    n_query, n_gallery = s.shape
    if n_gallery < 1:
        raise ValueError("scores must have at least one gallery column")
    q = _labels(query_labels, "query_labels")
    if q.shape[0] != n_query:
        raise ValueError(f"query_labels has {q.shape[0]} entries but scores has {n_query} rows (queries)")
    if leave_one_out:
        if n_query != n_gallery:
            raise ValueError(f"leave_one_out needs square scores [n, n]; got shape {s.shape}")
        if gallery_labels is not None:
            g = _labels(gallery_labels, "gallery_labels")
            if g.shape != q.shape or not np.array_equal(g, q):
                raise ValueError("with leave_one_out, gallery_labels must be omitted or equal query_labels")
        g = q
    else:
        if gallery_labels is None:
            raise ValueError("gallery_labels is required unless leave_one_out=True")
        g = _labels(gallery_labels, "gallery_labels")
        if g.shape[0] != n_gallery:
            raise ValueError(f"gallery_labels has {g.shape[0]} entries but scores has {n_gallery} columns (gallery)")
    mask: np.ndarray | None = None
    if gallery_mask is not None:
        mask = to_numpy(gallery_mask, "gallery_mask")
        if mask.shape != s.shape:
            raise ValueError(f"gallery_mask must have the shape of scores {s.shape}; got {mask.shape}")
        if mask.dtype != np.bool_:
            raise ValueError(f"gallery_mask must be boolean; got dtype {mask.dtype}")
    if max_rank is None:
        max_rank = n_gallery
    elif isinstance(max_rank, bool) or not isinstance(max_rank, (int, np.integer)) or max_rank < 1:
        raise ValueError(f"max_rank must be a positive integer or None; got {max_rank!r}")

    ap = np.full(n_query, np.nan)
    first_hit = np.zeros(n_query, dtype=np.int64)
    rows_per_chunk = max(1, _CHUNK_ENTRIES // max(n_gallery, 1))
    for start in range(0, n_query, rows_per_chunk):
        stop = min(start + rows_per_chunk, n_query)
        valid = np.ones((stop - start, n_gallery), dtype=bool) if mask is None else mask[start:stop].copy()
        if leave_one_out:
            rows = np.arange(stop - start)
            valid[rows, rows + start] = False
        relevant = (q[start:stop, None] == g[None, :]) & valid
        ap[start:stop], first_hit[start:stop] = _score_block(s[start:stop], relevant, valid, ties)
    return _summarise(ap, first_hit, int(max_rank))


def _score_block(
    scores: np.ndarray, relevant: np.ndarray, valid: np.ndarray, ties: Ties
) -> tuple[np.ndarray, np.ndarray]:
    """AP and first-hit rank `([rows], [rows])` of a block of queries, by counting instead of ranking.

    Why counting: AP (tie-grouped, as scikit-learn) needs, for each relevant item, only how many valid items and
    how many relevant items score at least as high; the first hit needs how many valid items beat or tie the best
    relevant score. Items below a query's lowest relevant score never enter these counts, so each query sorts
    only its valid scores at or above that one (values only) and binary-searches its relevant scores in them.
    This replaces the argsort, gathers and cumulative sums over every gallery item of a full ranking, which
    dominated leave-one-out evaluation at 50,000 x 50,000.
    """
    n_rows = scores.shape[0]
    ap = np.full(n_rows, np.nan)
    first_hit = np.zeros(n_rows, dtype=np.int64)
    for row in range(n_rows):
        hits = np.sort(scores[row, relevant[row]])
        if hits.size == 0:
            continue
        ranked = np.sort(scores[row, valid[row] & (scores[row] >= hits[0])])
        at_or_above = ranked.size - np.searchsorted(ranked, hits, side="left")
        hits_at_or_above = hits.size - np.searchsorted(hits, hits, side="left")
        ap[row] = float(np.mean(hits_at_or_above / at_or_above))
        best = hits[-1]
        above = ranked.size - np.searchsorted(ranked, best, side="right")
        if ties == "optimistic":
            first_hit[row] = above + 1
        elif ties == "pessimistic":
            first_hit[row] = at_or_above[-1] - hits_at_or_above[-1] + 1
        else:  # "index": among the items tied with the best hit, gallery order decides
            tied = np.flatnonzero(valid[row] & (scores[row] == best))
            first_hit[row] = above + int(np.argmax(relevant[row, tied])) + 1
    return ap, first_hit


def _summarise(ap: np.ndarray, first_hit: np.ndarray, max_rank: int) -> RetrievalResult:
    """`RetrievalResult` from per-query AP and first-hit ranks (0 = excluded), with a CMC curve of `max_rank`.

    `cmc[k-1]` counts first hits at rank <= k, so ranks past the gallery's end give 1.0 without knowing its size.
    """
    evaluated = first_hit > 0
    n_evaluated = int(evaluated.sum())
    if n_evaluated == 0:
        logger.warning("retrieval_metrics: no query has a correct match in its gallery; CMC and mAP are NaN")
        curve = np.full(max_rank, np.nan)
        mean_ap = float("nan")
    else:
        hist = np.bincount(first_hit[evaluated], minlength=max_rank + 1)[1 : max_rank + 1]
        curve = np.cumsum(hist) / n_evaluated
        mean_ap = float(ap[evaluated].mean())
    return RetrievalResult(
        cmc=curve,
        mean_ap=mean_ap,
        average_precision=ap,
        first_hit_rank=first_hit,
        n_evaluated=n_evaluated,
        n_excluded=len(first_hit) - n_evaluated,
    )


def cmc(
    scores: Any,
    query_labels: Any,
    gallery_labels: Any = None,
    *,
    leave_one_out: bool = False,
    distances: bool = False,
    gallery_mask: Any = None,
    max_rank: int | None = None,
    ties: Ties = "pessimistic",
) -> np.ndarray:
    """CMC curve `[max_rank]` of `retrieval_metrics` (same arguments); `cmc(...)[0]` is top-1 accuracy."""
    return retrieval_metrics(
        scores,
        query_labels,
        gallery_labels,
        leave_one_out=leave_one_out,
        distances=distances,
        gallery_mask=gallery_mask,
        max_rank=max_rank,
        ties=ties,
    ).cmc


def mean_average_precision(
    scores: Any,
    query_labels: Any,
    gallery_labels: Any = None,
    *,
    leave_one_out: bool = False,
    distances: bool = False,
    gallery_mask: Any = None,
) -> float:
    """mAP of `retrieval_metrics` (same arguments): mean AP over queries with a correct match in the gallery."""
    return retrieval_metrics(
        scores,
        query_labels,
        gallery_labels,
        leave_one_out=leave_one_out,
        distances=distances,
        gallery_mask=gallery_mask,
    ).mean_ap
