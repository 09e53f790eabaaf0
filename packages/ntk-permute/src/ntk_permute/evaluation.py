"""Evaluating trained ensembles: per-model statistics against the GP, exactness over all inputs, accuracy curves.

- `level_statistics`: the per-model statistics of spec 8.8–8.9 at the inputs with m ones (on-bit mean, off-bit mean,
  across-member variance), each with a standard error from the M independent members, to compare with
  `ntk_permute.closed_form.m_form`.
- `evaluate_all_inputs`: the rounded ensemble mean at every nonzero input, streamed with
  `ntk_permute.exhaustive.binary_chunks` (memory O(chunk·k) on top of the members), for the tolerance rule and for
  the strict ``> 0`` rule side by side (spec 2.7: the strict rule fails at the training inputs).
- `accuracy_curve`: the official protocol's accuracy (fraction of test inputs exact in every bit) of the ensemble of
  the first M members, for every M at once (a cumulative sum over members).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ntk_permute.exhaustive import binary_chunks, exact_round
from ntk_permute.gp import apply_permutation
from ntk_permute.training import TrainedEnsemble

__all__ = [
    "TRAINED_EPS",
    "AllInputsResult",
    "LevelStatistics",
    "accuracy_curve",
    "evaluate_all_inputs",
    "first_reaching",
    "level_inputs",
    "level_statistics",
    "random_level_inputs",
]

#: Rounding tolerance for trained networks (spec 2.7: residuals of ~1e-12 in float64, ~1e-6 in float32 need it).
TRAINED_EPS = 1e-6


def level_inputs(k: int, m: int, *, limit: int | None = None, rng: np.random.Generator | None = None) -> np.ndarray:
    """The binary inputs with exactly m ones, `[C(k, m), k]` (a random subset of `limit` rows when there are more)."""
    if not 1 <= m <= k:
        raise ValueError(f"m: must be in 1..k = 1..{k}, got {m}")
    total = math.comb(k, m)
    if limit is not None and total > limit:
        if rng is None:
            raise ValueError("rng: needed to subsample the inputs when C(k, m) > limit")
        return random_level_inputs(k, m, limit, rng, distinct=True)
    rows = np.zeros((total, k), dtype=np.int8)
    for i, ones in enumerate(itertools.combinations(range(k), m)):
        rows[i, list(ones)] = 1
    return rows


def random_level_inputs(k: int, m: int, count: int, rng: np.random.Generator, *, distinct: bool = False) -> np.ndarray:
    """`count` random inputs with m ones, `[count, k]` int8; with repeats as in the official test sets (k = 5 has
    only 10 distinct m = 2 inputs) unless `distinct`."""
    if not 1 <= m <= k:
        raise ValueError(f"m: must be in 1..k = 1..{k}, got {m}")
    if count < 1:
        raise ValueError(f"count: must be >= 1, got {count}")
    keys = rng.random((count * (2 if distinct else 1), k))
    ones = np.argsort(keys, axis=1)[:, :m]
    rows = np.zeros((keys.shape[0], k), dtype=np.int8)
    np.put_along_axis(rows, ones, 1, axis=1)
    if distinct:
        rows = np.unique(rows, axis=0)[:count]
    return rows


@dataclass(frozen=True)
class LevelStatistics:
    """Per-model statistics of a trained ensemble at the inputs with m ones; `se_*` are standard errors over the M
    independent members.

    Attributes:
        m, n_members, n_inputs: the level, ensemble size, inputs used.
        mu_on, mu_off: mean output of on-bits (target 1) and off-bits (target 0); NaN mu_off at m = k.
        variance: across-member variance of one output, averaged over inputs and bits (ddof = 1).
    """

    m: int
    n_members: int
    n_inputs: int
    mu_on: float
    mu_off: float
    variance: float
    se_on: float
    se_off: float
    se_variance: float

    def relative_errors(self, mu_on: float, mu_off: float, variance: float) -> dict[str, float]:
        """|ours − theory| / |theory| for the three statistics."""
        errors = {"mu_on": abs(self.mu_on - mu_on) / abs(mu_on), "variance": abs(self.variance - variance) / variance}
        if not math.isnan(mu_off):
            errors["mu_off"] = abs(self.mu_off - mu_off) / abs(mu_off)
        return errors


def _mean_se(values: np.ndarray) -> tuple[float, float]:
    return float(values.mean()), float(values.std(ddof=1) / math.sqrt(values.size)) if values.size > 1 else math.nan


def level_statistics(ensemble: TrainedEnsemble, m: int = 2, *, inputs: np.ndarray | None = None) -> LevelStatistics:
    """On/off means and variance of single members at the inputs with m ones (default: all C(k, m) of them)."""
    k = ensemble.config.k
    x = level_inputs(k, m) if inputs is None else np.asarray(inputs)
    out = ensemble.outputs(x)  # [M, N, k]
    target = apply_permutation(ensemble.perm, x.astype(np.int8)) == 1  # [N, k]
    n_members = out.shape[0]
    on_mean, se_on = _mean_se(out[:, target].mean(axis=1))
    if (~target).any():
        off_mean, se_off = _mean_se(out[:, ~target].mean(axis=1))
    else:
        off_mean, se_off = math.nan, math.nan
    deviation = out - out.mean(axis=0, keepdims=True)
    per_member = np.square(deviation).reshape(n_members, -1).mean(axis=1) * n_members / max(n_members - 1, 1)
    var_mean, se_var = _mean_se(per_member)
    return LevelStatistics(
        m=int(m),
        n_members=n_members,
        n_inputs=int(x.shape[0]),
        mu_on=on_mean,
        mu_off=off_mean,
        variance=var_mean,
        se_on=se_on,
        se_off=se_off,
        se_variance=se_var,
    )


@dataclass(frozen=True)
class AllInputsResult:
    """The rounded ensemble mean at all 2^k − 1 nonzero inputs.

    Attributes:
        k, n_members, n_inputs, eps: the set-up (`eps` the tolerance of the tolerance rule).
        n_exact: inputs exact in every bit with ``mean > eps``.
        n_exact_strict: the same with the strict rule ``mean > 0``.
        exact_by_level: `[k]` exact inputs (tolerance rule) with m = 1..k ones.
        strict_failures_training: training inputs (m = 1) that fail the strict rule.
        max_abs_training_off: largest |mean| of an off-bit at a training input (the residual the rule must absorb).
        min_margin: min over the inputs with m >= 2 of the on-bit means and of minus the off-bit means (> 0 iff the
            sign rule is exact on all of them).
    """

    k: int
    n_members: int
    n_inputs: int
    eps: float
    n_exact: int
    n_exact_strict: int
    exact_by_level: np.ndarray
    strict_failures_training: int
    max_abs_training_off: float
    min_margin: float

    @property
    def all_exact(self) -> bool:
        return self.n_exact == self.n_inputs


def evaluate_all_inputs(
    ensemble: TrainedEnsemble,
    *,
    eps: float = TRAINED_EPS,
    chunk_size: int = 4096,
    members: int | None = None,
    on_chunk: Callable[[int], None] | None = None,
) -> AllInputsResult:
    """Round the mean of the first `members` members (default all) at every nonzero input, both rules."""
    k = ensemble.config.k
    n_members = ensemble.n_members if members is None else int(members)
    n_exact = n_strict = strict_train = 0
    by_level = np.zeros(k, dtype=np.int64)
    max_train_off = 0.0
    margin = math.inf
    done = 0
    for _, bits in binary_chunks(k, chunk_size):
        mean, _ = ensemble.moments(bits, members=n_members)
        target = apply_permutation(ensemble.perm, bits)
        exact = np.all(exact_round(mean, eps) == target, axis=1)
        strict = np.all(exact_round(mean, 0.0) == target, axis=1)
        level = bits.sum(axis=1)
        n_exact += int(exact.sum())
        n_strict += int(strict.sum())
        np.add.at(by_level, level[exact] - 1, 1)
        training = level == 1
        strict_train += int((~strict[training]).sum())
        if training.any():
            off = mean[training][target[training] == 0]
            if off.size:
                max_train_off = max(max_train_off, float(np.abs(off).max()))
        rest = ~training
        if rest.any():
            signed = np.where(target[rest] == 1, mean[rest], -mean[rest])
            margin = min(margin, float(signed.min()))
        done += bits.shape[0]
        if on_chunk is not None:
            on_chunk(done)
    return AllInputsResult(
        k=k,
        n_members=n_members,
        n_inputs=done,
        eps=float(eps),
        n_exact=n_exact,
        n_exact_strict=n_strict,
        exact_by_level=by_level,
        strict_failures_training=strict_train,
        max_abs_training_off=max_train_off,
        min_margin=margin,
    )


def accuracy_curve(outputs: np.ndarray, targets: np.ndarray, *, eps: float = TRAINED_EPS) -> np.ndarray:
    """Accuracy of the mean of the first M members, for M = 1..M_max: `[M_max]`.

    Args:
        outputs: `[M_max, T, k]` member outputs at the T test inputs.
        targets: `[T, k]` 0/1 targets P x.
        eps: rounding tolerance (the official code uses the strict rule; at m >= 2 the two agree).
    """
    outputs = np.asarray(outputs, dtype=np.float64)
    if outputs.ndim != 3 or outputs.shape[1:] != np.shape(targets):
        raise ValueError(f"outputs: expected [M, T, k] matching targets {np.shape(targets)}, got {outputs.shape}")
    sums = np.cumsum(outputs, axis=0)
    counts = np.arange(1, outputs.shape[0] + 1, dtype=np.float64)[:, None, None]
    # mean > eps  <=>  sum > eps·M (no division of the whole [M, T, k] array)
    exact = np.all((sums > eps * counts) == (np.asarray(targets)[None] == 1), axis=2)
    return exact.mean(axis=1)


def first_reaching(curve: np.ndarray, level: float) -> int | None:
    """The first ensemble size M (1-based) with `curve[M − 1] >= level`, or None if never."""
    hits = np.nonzero(np.asarray(curve) >= level - 1e-12)[0]
    return int(hits[0]) + 1 if hits.size else None
