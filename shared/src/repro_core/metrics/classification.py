"""Classification metrics: accuracy, exact match of whole sequences, and accuracy per sequence position.

`predictions` are either labels with the shape of `targets`, or scores/logits/probabilities with one extra last
axis `[..., n_classes]`, reduced by argmax (first maximum on ties, as numpy and torch do). Positions can be left
out with `mask` (bool, True = counted) and/or `ignore_index` (targets equal to it are skipped, e.g. -100 padding).

`reduce="mean"` returns a Python float; `reduce="none"` a float64 numpy array (NaN where nothing was counted), so
per-example values can go to `repro_core.metrics.bootstrap_ci`. A mean over nothing is NaN.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from repro_core.metrics._arrays import Reduce, as_float64, as_int_array, check_reduce, reduce_values, to_numpy

__all__ = ["accuracy", "exact_match", "per_position_accuracy"]


def _predicted_labels(predictions: Any, targets: np.ndarray) -> np.ndarray:
    raw = to_numpy(predictions, "predictions")
    if raw.shape == targets.shape:
        return as_int_array(raw, "predictions")
    if raw.ndim == targets.ndim + 1 and raw.shape[:-1] == targets.shape:
        if raw.shape[-1] < 1:
            raise ValueError("predictions has an empty class axis")
        return np.argmax(as_float64(raw, "predictions"), axis=-1)
    raise ValueError(
        f"predictions must have the shape of targets {targets.shape} (labels) or {(*targets.shape, 'n_classes')} "
        f"(scores); got {raw.shape}"
    )


def _correct_and_valid(
    predictions: Any, targets: Any, mask: Any, ignore_index: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-position correctness and validity, both bool with the shape of `targets`."""
    t = as_int_array(targets, "targets")
    p = _predicted_labels(predictions, t)
    valid = np.ones(t.shape, dtype=bool)
    if mask is not None:
        m = to_numpy(mask, "mask")
        if m.shape != t.shape:
            raise ValueError(f"mask must have the shape of targets {t.shape}; got {m.shape}")
        if m.dtype != np.bool_:
            raise ValueError(f"mask must be boolean; got dtype {m.dtype}")
        valid &= m
    if ignore_index is not None:
        valid &= t != ignore_index
    return (p == t), valid


def accuracy(
    predictions: Any,
    targets: Any,
    *,
    mask: Any = None,
    ignore_index: int | None = None,
    reduce: Reduce = "mean",
) -> float | np.ndarray:
    """Fraction of counted positions whose predicted label equals the target (micro average over all positions).

    Args:
        predictions: labels `[...]` or scores `[..., n_classes]`.
        targets: integer labels `[...]`, e.g. `[n]` or `[n, seq_len]`.
        mask: optional bool `[...]`, True where a position counts.
        ignore_index: optional target value to skip.
        reduce: `"mean"` -> float; `"none"` -> `[...]` 1.0/0.0 per position, NaN where not counted.
    """
    check_reduce(reduce)
    correct, valid = _correct_and_valid(predictions, targets, mask, ignore_index)
    values = np.where(valid, correct.astype(np.float64), np.nan)
    return reduce_values(values, reduce, skip_nan=True)


def exact_match(
    predictions: Any,
    targets: Any,
    *,
    mask: Any = None,
    ignore_index: int | None = None,
    reduce: Reduce = "mean",
) -> float | np.ndarray:
    """Fraction of examples whose every counted position is correct (whole-sequence accuracy).

    Args:
        predictions: labels `[n, seq_len, ...]` or scores `[n, seq_len, ..., n_classes]`.
        targets: `[n, seq_len, ...]` (all axes after the first belong to one example).
        mask, ignore_index: positions to skip; an example with no counted position is NaN and left out of the mean.
        reduce: `"mean"` -> float; `"none"` -> `[n]` 1.0/0.0/NaN.
    """
    check_reduce(reduce)
    correct, valid = _correct_and_valid(predictions, targets, mask, ignore_index)
    if correct.ndim < 1:
        raise ValueError("targets must have a leading example axis: [n, ...]")
    n = correct.shape[0]
    ok = (correct | ~valid).reshape(n, -1).all(axis=-1)
    counted = valid.reshape(n, -1).any(axis=-1)
    values = np.where(counted, ok.astype(np.float64), np.nan)
    return reduce_values(values, reduce, skip_nan=True)


def per_position_accuracy(
    predictions: Any,
    targets: Any,
    *,
    mask: Any = None,
    ignore_index: int | None = None,
) -> np.ndarray:
    """Accuracy at each sequence position over the examples that count there.

    Args:
        predictions: labels `[n, seq_len]` or scores `[n, seq_len, n_classes]`.
        targets: `[n, seq_len]`.
        mask, ignore_index: positions to skip.

    Returns:
        `[seq_len]` float64; NaN at a position no example counts.
    """
    t = to_numpy(targets, "targets")
    if t.ndim != 2:
        raise ValueError(f"targets must be 2-D [n, seq_len]; got shape {t.shape}")
    correct, valid = _correct_and_valid(predictions, t, mask, ignore_index)
    hits = (correct & valid).sum(axis=0, dtype=np.float64)
    counts = valid.sum(axis=0, dtype=np.float64)
    return np.divide(hits, counts, out=np.full(hits.shape, np.nan), where=counts > 0)
