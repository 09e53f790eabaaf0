"""Joint probability P_all(M) that an M-member ensemble is exact on every nonzero input, by Monte Carlo from the GP
(spec 2.8, 5, 6.2 second table).

The union bound of `ntk_permute.complexity` ignores the correlations between inputs; this is the exact joint
probability, up to Monte-Carlo error. The mean of M members at the non-training inputs is, for each output bit i
independently, N(μ_i, Σ/M) with Σ the GP covariance `[N', N']` (N' = 2^k − 1 − k; training inputs are interpolated
with zero variance and never fail). A draw z_i ~ N(0, Σ) per bit is exact iff ``s·z/|μ| > −√M`` for every (input, bit),
with s the sign of the target (+ on-bits, − off-bits). So one set of draws gives P_all for every M at once:
``P_all(M) = P(min s·z/|μ| > −√M)``. The permutation only relabels outputs, so the identity is used.

Cost: a Cholesky of Σ (k = 12: N' = 4,083) and ``draws·k`` matrix-vector products, chunked; k <= 12 on CPU.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from ntk_permute.exhaustive import binary_chunks
from ntk_permute.gp import GP_KINDS, GPKind, gp_predict

__all__ = ["MAX_MC_K", "JointProbability", "joint_exact_probability"]

logger = logging.getLogger(__name__)

#: Largest k accepted (N' = 16,369 at k = 14 needs 2.1 GB for Σ: a GPU job, not this CPU path).
MAX_MC_K = 12


@dataclass(frozen=True)
class JointProbability:
    """P_all(M) estimates.

    Attributes:
        k, kind, draws: the set-up.
        members: `[n]` ensemble sizes M.
        probability: `[n]` estimated P(every nonzero input exact).
        standard_error: `[n]` binomial standard errors sqrt(p (1 − p)/draws).
    """

    k: int
    kind: str
    draws: int
    members: np.ndarray
    probability: np.ndarray
    standard_error: np.ndarray


def joint_exact_probability(
    k: int,
    members: Sequence[int] | np.ndarray,
    *,
    kind: GPKind = "ntk",
    draws: int = 20_000,
    rng: np.random.Generator,
    w_std: float = 1.0,
    b_std: float = 0.0,
    chunk: int = 1024,
    on_chunk: Callable[[int], None] | None = None,
) -> JointProbability:
    """Estimate P_all(M) for each M in `members` from `draws` joint GP samples (common random numbers across M).

    Args:
        k: input dimension, 2..12.
        members: ensemble sizes M >= 1.
        kind: "ntk" (NTK-GP) or "nngp" (NNGP-GP).
        draws: Monte-Carlo samples (standard error <= 0.5/√draws).
        rng: the numpy generator (e.g. `repro_core.seeding.numpy_rng(seed, "p_all")`).
        chunk: samples per block (memory chunk·N'·k floats).
        on_chunk: called with the number of draws done after each block.
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 2 <= k <= MAX_MC_K:
        raise ValueError(f"k: must be an integer in 2..{MAX_MC_K}, got {k!r}")
    if kind not in GP_KINDS:
        raise ValueError(f"kind: expected one of {GP_KINDS}, got {kind!r}")
    sizes = np.atleast_1d(np.asarray(members))
    if sizes.size == 0 or not np.issubdtype(sizes.dtype, np.integer) or sizes.min() < 1:
        raise ValueError(f"members: expected ensemble sizes >= 1, got {members!r}")
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
        raise ValueError(f"draws: expected an integer >= 1, got {draws!r}")
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk: expected an integer >= 1, got {chunk!r}")
    k = int(k)
    bits = next(binary_chunks(k, 1 << k))[1]
    bits = bits[bits.sum(axis=1) >= 2]  # [N', k]: training inputs never fail
    prediction = gp_predict(np.arange(k), bits, kind=kind, w_std=w_std, b_std=b_std)
    assert prediction.covariance is not None
    mean = prediction.mean  # [N', k]
    sign = np.where(bits == 1, 1.0, -1.0)
    if np.any(sign * mean <= 0):
        raise ValueError(f"the {kind}-GP mean has a wrong sign at some input for k = {k}; P_all is 0 for every M")
    scale = sign / np.abs(mean)  # s/|μ|: [N', k]
    factor = _cholesky(prediction.covariance)  # [N', N'] lower
    worst = np.empty(draws)
    done = 0
    while done < draws:
        size = min(chunk, draws - done)
        noise = rng.standard_normal((factor.shape[0], size * k))
        z = (factor @ noise).reshape(factor.shape[0], size, k)  # [N', draws, k]
        worst[done : done + size] = np.min(z * scale[:, None, :], axis=(0, 2))
        done += size
        if on_chunk is not None:
            on_chunk(done)
    thresholds = -np.sqrt(sizes.astype(np.float64))
    probability = (worst[None, :] > thresholds[:, None]).mean(axis=1)
    error = np.sqrt(probability * (1.0 - probability) / draws)
    logger.info(
        "P_all k=%d %s-GP, %d draws: %s", k, kind, draws, dict(zip(sizes.tolist(), probability.tolist(), strict=True))
    )
    return JointProbability(
        k=k,
        kind=str(kind),
        draws=int(draws),
        members=sizes.astype(np.int64),
        probability=probability,
        standard_error=error,
    )


def _cholesky(covariance: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor; a tiny relative jitter if the covariance is numerically semi-definite."""
    jitter = 0.0
    scale = float(np.mean(np.diag(covariance)))
    for _ in range(6):
        try:
            return scipy.linalg.cholesky(covariance + jitter * scale * np.eye(covariance.shape[0]), lower=True)
        except np.linalg.LinAlgError:
            jitter = 1e-12 if jitter == 0.0 else jitter * 100
            logger.debug("covariance not positive definite; jitter %.1e", jitter)
    raise ValueError("the GP covariance is not positive semi-definite")
