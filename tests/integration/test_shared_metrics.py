"""The promise of the shared core: a metric reached through two packages' public APIs gives the same numbers.

bt2-compat's CMC (`retrieval`, through `repro_core.metrics.retrieval_metrics`) and premise-search's Recall@k
(`qr_metrics`, through `repro_core.metrics.recall_at_k`) are the same quantity when each query has exactly one
relevant gallery item: the fraction of queries whose item is in the top k. Integer embeddings make every score
exact in float32, and both sides break ties by gallery order, so the two must agree exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

from bt2_compat.evaluate import retrieval
from premise_search.evaluation import qr_metrics


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cmc_of_bt2_compat_equals_recall_of_premise_search(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_query, n_gallery, dims = 50, 80, 12
    query = rng.integers(-3, 4, (n_query, dims)).astype(np.float32)  # small integers: many exact ties
    gallery = rng.integers(-3, 4, (n_gallery, dims)).astype(np.float32)
    targets = rng.integers(0, n_gallery, n_query)

    cmc = retrieval(query, gallery, targets, np.arange(n_gallery), leave_one_out=False, metric="dot", ties="index").cmc

    scores = query.astype(np.int64) @ gallery.T.astype(np.int64)
    order = np.argsort(-scores, axis=1, kind="stable")  # ties by gallery order, as ties="index"
    rankings = [[f"decl{j}" for j in row] for row in order]
    recall = qr_metrics(rankings, [f"decl{t}" for t in targets], ks=(1, 5, 10, 20))

    assert len(np.unique(scores)) < scores.size  # the case has ties, so the tie rule is exercised
    for k in (1, 5, 10, 20):
        assert cmc[k - 1] == recall[f"Recall@{k}"].mean(), k
