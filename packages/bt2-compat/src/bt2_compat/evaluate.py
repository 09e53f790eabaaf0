"""Retrieval evaluation of (cross-model) embeddings: CMC top-k and mAP, leave-one-out, chunked.

The protocol of BT-2/ml-fct/openBCT (spec 4.2, 5): the test split is both query and gallery set, each query's own
entry is excluded, the query embeddings come from one model and the gallery embeddings from another, and both are
truncated to their first `min(d_query, d_gallery)` dimensions (BT^2's compatible block is the first `d_old` dims of
its embedding). Similarities are cosine after truncation by default ("dot" for the released code's raw dot product,
"l2" for Euclidean distance).

Scores come from `repro_core.kernels.similarity_blocks` (the scores `topk_similarity` ranks, all of them, one block
of queries at a time) and the metrics from `repro_core.metrics.retrieval_metrics` (AP with scikit-learn's tie
grouping, CMC with pessimistic ties), so memory is `query_block x n_gallery` rather than `n x n`; the blocks' results
are joined with `RetrievalResult.concatenate`. The compatibility criterion is `M(new/old) > M(old/old)` (BCT).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from bt2_compat.models import BT2Model, EmbeddingModel
from repro_core.errors import ConfigError
from repro_core.kernels import similarity_blocks
from repro_core.metrics import RetrievalResult, retrieval_metrics

__all__ = ["METRICS", "Compatibility", "compatibility", "embed", "retrieval", "truncate_pair"]

#: Similarity measures of `retrieval`.
METRICS = ("cosine", "dot", "l2")
#: Score-matrix entries per query block (about 32 MiB of float64 scores).
_BLOCK_ENTRIES = 1 << 22


@torch.no_grad()
def embed(
    model: EmbeddingModel | BT2Model, x: Any, *, batch_size: int = 1024, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """`[n, embedding_dim]` float32 embeddings of `x: [n, ...]` in eval mode, returned on the CPU."""
    was_training = model.training
    model.to(device).eval()
    xt = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x, dtype=torch.float32)
    try:
        parts = [model.embed(xt[i : i + batch_size].to(device)).cpu() for i in range(0, len(xt), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(parts)


def truncate_pair(query: torch.Tensor, gallery: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Both `[n, d]` inputs cut to their first `min(d_query, d_gallery)` dims (the cross-model comparison rule)."""
    d = min(query.shape[1], gallery.shape[1])
    return query[:, :d], gallery[:, :d]


def retrieval(
    query: Any,
    gallery: Any,
    query_labels: Any,
    gallery_labels: Any = None,
    *,
    leave_one_out: bool = True,
    metric: str = "cosine",
    query_block: int | None = None,
) -> RetrievalResult:
    """CMC and mAP of ranking `gallery` for every row of `query`, after truncation to the common dims.

    Args:
        query: `[n_query, d_q]` embeddings; gallery: `[n_gallery, d_g]` (tensors on one device, or numpy).
        query_labels: `[n_query]`; gallery_labels: `[n_gallery]`, omitted with `leave_one_out`.
        leave_one_out: query row i and gallery row i are the same sample and never match each other
            (needs `n_query == n_gallery`).
        metric: "cosine" (normalise after truncation), "dot" or "l2".
        query_block: queries scored at once (default: about 4M score entries per block).
    Returns:
        `repro_core.metrics.RetrievalResult` (CMC over all gallery ranks, mAP, per-query AP and first-hit rank).
    """
    if metric not in METRICS:
        raise ConfigError(f"metric: expected one of {METRICS}, got {metric!r}")
    q = torch.as_tensor(query)
    g = torch.as_tensor(gallery)
    if q.ndim != 2 or g.ndim != 2:
        raise ConfigError(f"query/gallery: expected 2-D embeddings, got shapes {tuple(q.shape)} and {tuple(g.shape)}")
    q, g = truncate_pair(q, g)
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
    for start, scores in similarity_blocks(q, g, metric=metric, query_block=block):
        stop = start + scores.shape[0]
        mask = None
        if leave_one_out:
            mask = np.ones((stop - start, n_gallery), dtype=bool)
            mask[np.arange(stop - start), np.arange(start, stop)] = False
        parts.append(
            retrieval_metrics(scores.cpu(), q_labels[start:stop], g_labels, distances=metric == "l2", gallery_mask=mask)
        )
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
) -> Compatibility:
    """Leave-one-out retrieval for each `(query, gallery)` name pair of `embeddings` (`{name: [n, d]}`), in %."""
    cells: dict[str, dict[str, float]] = {}
    for query, gallery in pairs:
        for name in (query, gallery):
            if name not in embeddings:
                raise ConfigError(f"pairs: no embeddings named {name!r} (have {sorted(embeddings)})")
        result = retrieval(embeddings[query], embeddings[gallery], labels, metric=metric)
        cell = {f"top{k}": 100.0 * result.top_k(k) for k in ks}
        cell["mAP"] = 100.0 * result.mean_ap
        cells[f"{query}/{gallery}"] = cell
    return Compatibility(cells)
