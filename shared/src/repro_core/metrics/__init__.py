"""Evaluation metrics shared by the repro libraries: ranking, retrieval, classification, regression, bootstrap.

Inputs may be numpy arrays, torch tensors (detached and moved to CPU; torch is never imported here) or lists;
everything is computed in float64. Scalar results are Python floats; per-query or per-example results
(`reduce="none"`) are numpy arrays. Argument order is always `(predictions/scores, targets/relevance)`.
Where scikit-learn has the same metric the numbers agree with it (see each function).
"""

from __future__ import annotations

from repro_core.metrics.bootstrap import BootstrapCI, bootstrap_ci
from repro_core.metrics.classification import accuracy, exact_match, per_position_accuracy
from repro_core.metrics.ranking import average_precision, mrr, ndcg, one_hot_relevance, recall_at_k
from repro_core.metrics.regression import mae, r2
from repro_core.metrics.retrieval import RetrievalResult, cmc, mean_average_precision, retrieval_metrics

__all__ = [
    "BootstrapCI",
    "RetrievalResult",
    "accuracy",
    "average_precision",
    "bootstrap_ci",
    "cmc",
    "exact_match",
    "mae",
    "mean_average_precision",
    "mrr",
    "ndcg",
    "one_hot_relevance",
    "per_position_accuracy",
    "r2",
    "recall_at_k",
    "retrieval_metrics",
]
