"""Regression metrics: mean absolute error and R², equal to scikit-learn's for single and multi-output targets.

Argument order is `(predictions, targets)` like every metric of `repro_core.metrics` - the reverse of
scikit-learn's `(y_true, y_pred)`, which matters for R².
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from repro_core.metrics._arrays import as_float64

__all__ = ["Multioutput", "mae", "r2"]

#: How the outputs of `[n, d]` targets are combined: averaged with equal weight, or returned per output `[d]`.
Multioutput = Literal["uniform_average", "raw_values"]


def _pair(predictions: Any, targets: Any, multioutput: str, min_samples: int) -> tuple[np.ndarray, np.ndarray]:
    if multioutput not in ("uniform_average", "raw_values"):
        raise ValueError(f"multioutput must be 'uniform_average' or 'raw_values'; got {multioutput!r}")
    p = as_float64(predictions, "predictions", allow_inf=False)
    t = as_float64(targets, "targets", allow_inf=False)
    if p.shape != t.shape:
        raise ValueError(f"predictions and targets must have the same shape; got {p.shape} and {t.shape}")
    if p.ndim not in (1, 2):
        raise ValueError(f"predictions and targets must be [n] or [n, n_outputs]; got shape {p.shape}")
    if p.shape[0] < min_samples:
        raise ValueError(f"need at least {min_samples} samples; got {p.shape[0]}")
    if p.ndim == 1:
        p, t = p[:, None], t[:, None]
    return p, t


def _combine(per_output: np.ndarray, multioutput: str) -> float | np.ndarray:
    return per_output if multioutput == "raw_values" else float(per_output.mean())


def mae(predictions: Any, targets: Any, *, multioutput: Multioutput = "uniform_average") -> float | np.ndarray:
    """Mean absolute error = `sklearn.metrics.mean_absolute_error(targets, predictions)`.

    Args:
        predictions, targets: `[n]` or `[n, n_outputs]`, finite.
        multioutput: "uniform_average" -> float; "raw_values" -> `[n_outputs]`.
    """
    p, t = _pair(predictions, targets, multioutput, 1)
    return _combine(np.abs(p - t).mean(axis=0), multioutput)


def r2(
    predictions: Any,
    targets: Any,
    *,
    multioutput: Multioutput = "uniform_average",
    force_finite: bool = True,
) -> float | np.ndarray:
    """Coefficient of determination = `sklearn.metrics.r2_score(targets, predictions)`.

    With constant targets R² is undefined; like scikit-learn, `force_finite=True` gives 1.0 for a perfect
    prediction and 0.0 otherwise (False gives NaN / -inf). Fewer than two samples is an error (scikit-learn
    returns NaN with a warning).

    Args:
        predictions, targets: `[n]` or `[n, n_outputs]`, finite, n >= 2.
        multioutput: "uniform_average" -> float; "raw_values" -> `[n_outputs]`.
    """
    p, t = _pair(predictions, targets, multioutput, 2)
    residual = ((t - p) ** 2).sum(axis=0)
    total = ((t - t.mean(axis=0)) ** 2).sum(axis=0)
    if force_finite:
        scores = np.where(residual == 0, 1.0, 0.0)
        defined = total != 0
        scores[defined] = 1.0 - residual[defined] / total[defined]
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            scores = 1.0 - residual / total
    return _combine(scores, multioutput)
