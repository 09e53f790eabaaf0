"""Retrieval evaluation of (cross-model) embeddings: CMC top-k and mAP, leave-one-out, chunked.

The protocol of BT-2/ml-fct/openBCT (spec 4.2, 5): the test split is both query and gallery set, each query's own
entry is excluded, the query embeddings come from one model and the gallery embeddings from another, and both are
truncated to their first `min(d_query, d_gallery)` dimensions (BT^2's compatible block is the first `d_old` dims of
its embedding). Similarities (`METRICS`), all computed after truncation:

- "cosine" (default): `<q, g> / (||q||_2 ||g||_2)`;
- "dot": the raw dot product `<q, g>`, as the released BT-2 code;
- "l2": Euclidean distance `||q - g||_2` (lower is closer);
- "cosine-l1": `<q / ||q||_1, g / ||g||_1>`, what ml-fct's `cosine_distance_matrix` ranks (it normalises with
  `F.normalize(p=1)`, the L1 norm, and returns `1 - x @ y.T`). Not a cosine: dividing by a gallery item's L1
  norm instead of its L2 norm favours items whose mass is spread over few dimensions, so rankings (and numbers)
  differ from "cosine" unless every gallery embedding has the same L1/L2 ratio. Offered to compare with numbers
  from that code base.

A zero vector has no direction: under "cosine" and "cosine-l1" it scores 0 against everything (repro-core's rule).
`retrieval` logs a warning with the number of such rows; the CLI refuses them. Non-finite embeddings (NaN, inf)
raise `InputError` naming the side ("query" or "gallery"; `check_embeddings` names a file).

Ties: AP groups tied scores as scikit-learn does, so it does not depend on their order. CMC (top-k) orders equal
scores by `ties` (`TIES`): "pessimistic" (default) puts a query's correct matches after the wrong ones they tie
with, "optimistic" before them, "index" in gallery order. With float embeddings exact ties are rare, except for
constant or zero embeddings (where the rule decides the number).

Scores come from `repro_core.kernels.similarity_blocks` (the scores `topk_similarity` ranks, all of them, one block
of queries at a time) and the metrics from `repro_core.metrics.retrieval_metrics`, so memory is
`query_block x n_gallery` rather than `n x n`; the blocks' results are joined with `RetrievalResult.concatenate`.
The compatibility criterion is `M(new/old) > M(old/old)` (BCT).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from bt2_compat.models import BT2Model, EmbeddingModel
from repro_core.errors import ConfigError, InputError
from repro_core.kernels import similarity_blocks
from repro_core.metrics import RetrievalResult, retrieval_metrics
from repro_core.progress import progress

__all__ = [
    "METRICS",
    "TIES",
    "Compatibility",
    "check_embeddings",
    "compatibility",
    "embed",
    "retrieval",
    "similarity",
    "truncate_pair",
    "zero_rows",
]

logger = logging.getLogger(__name__)

#: Similarity measures of `retrieval` (module docstring).
METRICS = ("cosine", "dot", "l2", "cosine-l1")
#: Tie rules of CMC (`repro_core.metrics.retrieval_metrics`'s `ties`; module docstring).
TIES = ("pessimistic", "optimistic", "index")
#: Metrics that divide by a norm, under which a zero vector has no direction.
_NORMALISED = ("cosine", "cosine-l1")
#: Score-matrix entries per query block (about 32 MiB of float64 scores).
_BLOCK_ENTRIES = 1 << 22


@torch.no_grad()
def embed(
    model: EmbeddingModel | BT2Model,
    x: Any,
    *,
    batch_size: int = 1024,
    device: torch.device | str = "cpu",
    show_progress: bool = False,
) -> torch.Tensor:
    """`[n, embedding_dim]` float32 embeddings of `x: [n, ...]` in eval mode, returned on the CPU.

    `show_progress`: a progress bar over batches on stderr (`repro_core.progress`; a ResNet on 10,000 CIFAR
    images takes minutes on a CPU)."""
    was_training = model.training
    model.to(device).eval()
    xt = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x, dtype=torch.float32)
    starts = range(0, len(xt), batch_size)
    try:
        parts = [
            model.embed(xt[i : i + batch_size].to(device)).cpu()
            for i in progress(starts, desc="embed", unit="batch", disable=None if show_progress else True)
        ]
    finally:
        model.train(was_training)
    return torch.cat(parts)


def truncate_pair(query: torch.Tensor, gallery: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Both `[n, d]` inputs cut to their first `min(d_query, d_gallery)` dims (the cross-model comparison rule)."""
    d = min(query.shape[1], gallery.shape[1])
    return query[:, :d], gallery[:, :d]


def _l1_normalise(x: torch.Tensor) -> torch.Tensor:
    """Rows divided by their L1 norm, as `torch.nn.functional.normalize(x, p=1, eps=1e-12)` (ml-fct)."""
    x = x if x.is_floating_point() else x.to(torch.float32)
    return x / x.abs().sum(dim=1, keepdim=True).clamp_min(1e-12)


def zero_rows(x: Any) -> int:
    """How many rows of `x: [n, d]` are all zeros."""
    t = torch.as_tensor(x)
    return int((t == 0).all(dim=1).sum()) if t.numel() else 0


def check_embeddings(x: Any, name: str, *, metric: str = "cosine", dims: int | None = None) -> None:
    """Raise `InputError` naming `name` if `x: [n, d]` has NaN or inf entries, or (for "cosine" and "cosine-l1")
    zero rows in its first `dims` dims (default: all), for which the similarity is undefined."""
    t = torch.as_tensor(x)
    bad = int((~torch.isfinite(t)).any(dim=1).sum()) if t.ndim == 2 else int((~torch.isfinite(t)).sum())
    if bad:
        raise InputError(f"{name}: {bad} of {len(t)} embeddings contain NaN or inf values")
    if metric in _NORMALISED and t.ndim == 2:
        cut = t[:, :dims] if dims is not None else t
        zeros = zero_rows(cut)
        if zeros:
            raise InputError(
                f"{name}: {zeros} of {len(t)} embeddings are zero vectors in their first {cut.shape[1]} dims; "
                f"--metric {metric} is undefined for them (use dot or l2, or fix the model)"
            )


def _prepare(query: Any, gallery: Any, metric: str) -> tuple[torch.Tensor, torch.Tensor, str]:
    """`(query, gallery, kernel metric)`: validated, truncated and (for "cosine-l1") L1-normalised."""
    if metric not in METRICS:
        raise ConfigError(f"metric: expected one of {METRICS}, got {metric!r}")
    q = torch.as_tensor(query)
    g = torch.as_tensor(gallery)
    if q.ndim != 2 or g.ndim != 2:
        raise ConfigError(f"query/gallery: expected 2-D embeddings, got shapes {tuple(q.shape)} and {tuple(g.shape)}")
    for side, x in (("query", q), ("gallery", g)):
        if x.is_floating_point() or x.is_complex():
            bad = int((~torch.isfinite(x)).any(dim=1).sum())
            if bad:
                raise InputError(f"{side} embeddings: {bad} of {len(x)} rows contain NaN or inf values")
    q, g = truncate_pair(q, g)
    if metric in _NORMALISED:
        for side, x in (("query", q), ("gallery", g)):
            zeros = zero_rows(x)
            if zeros:
                logger.warning(
                    "retrieval: %d of %d %s embeddings are zero vectors in their first %d dims; %s scores them 0 "
                    "against everything",
                    zeros,
                    len(x),
                    side,
                    x.shape[1],
                    metric,
                )
    if metric == "cosine-l1":
        return _l1_normalise(q), _l1_normalise(g), "dot"
    return q, g, metric


def similarity(query: Any, gallery: Any, *, metric: str = "cosine") -> torch.Tensor:
    """`[n_query, n_gallery]` scores of `metric` (module docstring) after truncation to the common dims; for
    "l2" these are distances (lower is closer). All at once: for small sets and checks, `retrieval` for large ones."""
    q, g, kernel = _prepare(query, gallery, metric)
    return torch.cat([torch.as_tensor(scores) for _, scores in similarity_blocks(q, g, metric=kernel)])


def retrieval(
    query: Any,
    gallery: Any,
    query_labels: Any,
    gallery_labels: Any = None,
    *,
    leave_one_out: bool = True,
    metric: str = "cosine",
    query_block: int | None = None,
    ties: str = "pessimistic",
    show_progress: bool = False,
) -> RetrievalResult:
    """CMC and mAP of ranking `gallery` for every row of `query`, after truncation to the common dims.

    Args:
        query: `[n_query, d_q]` embeddings; gallery: `[n_gallery, d_g]` (tensors on one device, or numpy).
        query_labels: `[n_query]`; gallery_labels: `[n_gallery]`, omitted with `leave_one_out`.
        leave_one_out: query row i and gallery row i are the same sample and never match each other
            (needs `n_query == n_gallery`).
        metric: "cosine" (L2-normalise after truncation), "dot", "l2" (distance) or "cosine-l1" (L1-normalise
            after truncation, ml-fct's "cosine"); module docstring.
        query_block: queries scored at once (default: about 4M score entries per block).
        ties: order of equal scores for CMC: "pessimistic" (default: a correct match tied with wrong ones ranks
            after them, so ties never inflate top-k), "optimistic" (before them) or "index" (gallery order).
            AP does not depend on it (tied scores form one threshold, as in scikit-learn).
        show_progress: a progress bar over queries on stderr (50,000 x 50,000 takes about a minute).
    Returns:
        `repro_core.metrics.RetrievalResult` (CMC over all gallery ranks, mAP, per-query AP and first-hit rank).
    Raises:
        InputError: NaN or inf in the query or gallery embeddings (the message says which side).
    Zero rows under "cosine"/"cosine-l1" score 0 against everything; a warning gives their number (the CLI
    refuses them, `check_embeddings`).
    """
    if ties not in TIES:
        raise ConfigError(f"ties: expected one of {TIES}, got {ties!r}")
    q, g, kernel = _prepare(query, gallery, metric)
    q_labels = np.asarray(torch.as_tensor(query_labels).cpu())
    if leave_one_out:
        if q.shape[0] != g.shape[0]:
            raise ConfigError(f"leave_one_out: query ({q.shape[0]}) and gallery ({g.shape[0]}) must be the same set")
        if gallery_labels is not None and not np.array_equal(
            np.asarray(torch.as_tensor(gallery_labels).cpu()), q_labels
        ):
            raise ConfigError("gallery_labels: with leave_one_out they must be omitted or equal query_labels")
        g_labels = q_labels
    else:
        if gallery_labels is None:
            raise ConfigError("gallery_labels: required unless leave_one_out")
        g_labels = np.asarray(torch.as_tensor(gallery_labels).cpu())
    if len(q_labels) != q.shape[0] or len(g_labels) != g.shape[0]:
        raise ConfigError("query_labels/gallery_labels: lengths must match the embeddings")
    n_gallery = g.shape[0]
    block = query_block or max(1, _BLOCK_ENTRIES // max(n_gallery, 1))
    if block < 1:
        raise ConfigError(f"query_block: expected a positive integer, got {query_block!r}")
    parts: list[RetrievalResult] = []
    bar = progress(total=q.shape[0], desc="retrieval", unit="query", disable=None if show_progress else True)
    with bar:
        for start, scores in similarity_blocks(q, g, metric=kernel, query_block=block):
            stop = start + scores.shape[0]
            mask = None
            if leave_one_out:
                mask = np.ones((stop - start, n_gallery), dtype=bool)
                mask[np.arange(stop - start), np.arange(start, stop)] = False
            parts.append(
                retrieval_metrics(
                    scores.cpu(),
                    q_labels[start:stop],
                    g_labels,
                    distances=metric == "l2",
                    gallery_mask=mask,
                    ties=ties,  # type: ignore[arg-type]
                )
            )
            bar.update(stop - start)
    return RetrievalResult.concatenate(parts)


@dataclass(frozen=True)
class Compatibility:
    """Retrieval metrics (%) of every evaluated (query model, gallery model) pair, and the criterion checks.

    cells: `{"new/old": {"top1": ..., "top5": ..., "mAP": ...}, ...}`, keys "query/gallery".
    """

    cells: dict[str, dict[str, float]]

    def criterion(self, new: str, old: str, metric: str = "mAP") -> bool:
        """BCT's empirical compatibility criterion `M(new/old) > M(old/old)`."""
        return self.cells[f"{new}/{old}"][metric] > self.cells[f"{old}/{old}"][metric]

    def to_dict(self) -> dict[str, Any]:
        return {"cells": self.cells}


def compatibility(
    embeddings: Mapping[str, torch.Tensor],
    labels: Any,
    pairs: Sequence[tuple[str, str]],
    *,
    metric: str = "cosine",
    ks: tuple[int, ...] = (1, 5),
    ties: str = "pessimistic",
    show_progress: bool = False,
) -> Compatibility:
    """Leave-one-out retrieval for each `(query, gallery)` name pair of `embeddings` (`{name: [n, d]}`), in %.

    `metric`, `ties` and `show_progress` as in `retrieval` (default: cosine, pessimistic CMC ties, no bar)."""
    cells: dict[str, dict[str, float]] = {}
    for query, gallery in pairs:
        for name in (query, gallery):
            if name not in embeddings:
                raise ConfigError(f"pairs: no embeddings named {name!r} (have {sorted(embeddings)})")
        result = retrieval(
            embeddings[query], embeddings[gallery], labels, metric=metric, ties=ties, show_progress=show_progress
        )
        cell = {f"top{k}": 100.0 * result.top_k(k) for k in ks}
        cell["mAP"] = 100.0 * result.mean_ap
        cells[f"{query}/{gallery}"] = cell
    return Compatibility(cells)
