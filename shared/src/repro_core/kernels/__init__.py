"""GPU-capable kernels shared by the repro libraries: streaming top-k similarity and ReLU arc-cosine kernels.

- `topk_similarity`: the k best gallery rows per query (cosine, dot or l2) streamed over gallery chunks, with exact
  lowest-index tie-breaking and no `[n_queries, n_gallery]` matrix; `similarity_blocks` yields all scores, a block of
  queries at a time, computed the same way, for metrics over the whole ranking.
- `relu_nngp_ntk` (and `relu_nngp`, `relu_ntk`): NNGP and NTK of a two-layer ReLU network in the NTK
  parametrisation (Cho & Saul 2009 arc-cosine kernels), batched; `kappa0`/`kappa1` are the arc-cosine functions;
  `check_std` validates their σ_w/σ_b arguments (for wrappers that take them too).

Each takes `backend="auto" | "torch" | "triton"`: Triton kernels are used on CUDA when triton is installed, and can
be forced on CPU tensors under `TRITON_INTERPRET=1` (for tests). Importing this package needs numpy alone; torch
(`repro-core[torch]`) is imported on the first call, and a missing torch raises `MissingExtraError` then.
"""

from __future__ import annotations

from repro_core.kernels.arccos import check_std, kappa0, kappa1, relu_nngp, relu_nngp_ntk, relu_ntk
from repro_core.kernels.topk import METRICS, similarity_blocks, topk_similarity

__all__ = [
    "METRICS",
    "check_std",
    "kappa0",
    "kappa1",
    "relu_nngp",
    "relu_nngp_ntk",
    "relu_ntk",
    "similarity_blocks",
    "topk_similarity",
]
