"""The infinite-width Gaussian process after gradient descent on the k basis vectors (spec 2.1, 2.5; Lee et al. 2019).

Training set: ``X = I_k`` (rows e_j), targets ``Y[j] = P e_j`` (so ``Y = Pᵀ``); test inputs x/‖x‖ for nonzero binary x.
Output coordinates are independent GPs with one shared kernel, so a covariance is `[n_test, n_test]` and applies to
every output coordinate.

- NTK-GP (NTK parametrisation, all layers trained): with ``T(t) = Θ(x, X) Θ⁻¹ (I − e^{−ηΘt})`` (``Θ(x, X) Θ⁻¹`` at
  t = ∞) the mean is ``T Y`` and the covariance ``K(x, x') + T K Tᵀ − (T K(X, x') + (x ↔ x'))``.
- NNGP-GP (last layer only; the standard-parametrisation limit): the same with Θ replaced by K, which at t = ∞ is the
  usual posterior ``K(x, x') − K(x, X) K⁻¹ K(X, x')``.

Convention: the loss is ``½ Σ_j ‖f(e_j) − y_j‖²`` and training is gradient flow with learning rate η, so
``df/dt = −η Θ (f − y)``. The t = ∞ results do not depend on η.

Permutations are index arrays: ``perm[j] = π(j)``, i.e. ``P e_j = e_{π(j)}`` and ``(P x)[π(j)] = x[j]``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.linalg

from ntk_permute.kernels import Parametrization, check_kernel_params, nngp_ntk

__all__ = [
    "GP_KINDS",
    "GPKind",
    "GaussianPrediction",
    "apply_permutation",
    "check_permutation",
    "gp_predict",
    "normalise_inputs",
    "permutation_matrix",
    "posterior_weights",
    "random_permutation",
    "train_targets",
]

logger = logging.getLogger(__name__)

GPKind = Literal["ntk", "nngp"]
#: Accepted values of every `kind` argument: "ntk" = NTK-GP, "nngp" = NNGP-GP.
GP_KINDS: tuple[str, ...] = ("ntk", "nngp")


def check_permutation(perm: np.ndarray | list[int], k: int | None = None) -> np.ndarray:
    """`perm` as an int64 array after checking it is a permutation of 0..k-1 (ValueError otherwise)."""
    arr = np.asarray(perm)
    if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"perm: expected a non-empty 1-d integer array, got {arr!r}")
    if k is not None and arr.size != k:
        raise ValueError(f"perm: expected length k = {k}, got {arr.size}")
    if not np.array_equal(np.sort(arr), np.arange(arr.size)):
        raise ValueError(f"perm: not a permutation of 0..{arr.size - 1}: {arr.tolist()}")
    return arr.astype(np.int64)


def random_permutation(k: int, rng: np.random.Generator) -> np.ndarray:
    """A uniformly random permutation of 0..k-1 from `rng` (use `repro_core.seeding.numpy_rng` for seeds)."""
    if k < 1:
        raise ValueError(f"k: must be >= 1, got {k}")
    return rng.permutation(k).astype(np.int64)


def permutation_matrix(perm: np.ndarray | list[int]) -> np.ndarray:
    """The `[k, k]` 0/1 matrix P with ``P e_j = e_{perm[j]}``."""
    perm = check_permutation(perm)
    k = perm.size
    matrix = np.zeros((k, k), dtype=np.float64)
    matrix[perm, np.arange(k)] = 1.0
    return matrix


def apply_permutation(perm: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``P x`` for rows of `x: [n, k]` (any dtype): ``out[:, perm[j]] = x[:, j]``."""
    out = np.empty_like(x)
    out[:, perm] = x
    return out


def train_targets(perm: np.ndarray | list[int]) -> np.ndarray:
    """Training targets `[k, k]`: row j is ``P e_j`` (the training inputs are the rows of ``I_k``)."""
    return permutation_matrix(perm).T.copy()


def normalise_inputs(x: np.ndarray) -> np.ndarray:
    """Rows of `x: [n, k]` divided by their L2 norm (zero rows stay zero), float64."""
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def _check_time(t: float | None, learning_rate: float) -> None:
    if t is not None and (isinstance(t, bool) or not isinstance(t, int | float) or not t >= 0 or math.isinf(t)):
        raise ValueError(f"t: expected a finite time >= 0 or None for t = infinity, got {t!r}")
    if not (isinstance(learning_rate, int | float) and learning_rate > 0 and math.isfinite(learning_rate)):
        raise ValueError(f"learning_rate: must be a finite number > 0, got {learning_rate!r}")


def posterior_weights(
    train_kernel: np.ndarray, cross: np.ndarray, *, t: float | None = None, learning_rate: float = 1.0
) -> np.ndarray:
    """``T = cross · Θ⁻¹ (I − e^{−ηΘt})`` (``cross · Θ⁻¹`` for t = None), shape `[n_test, n_train]`.

    `train_kernel: [n_train, n_train]` is the kernel that drives training (Θ for the NTK-GP, K for the NNGP-GP);
    `cross: [n_test, n_train]` the same kernel between test and training inputs.
    """
    _check_time(t, learning_rate)
    if t is None:
        factor = scipy.linalg.cho_factor(train_kernel, lower=True)
        return scipy.linalg.cho_solve(factor, cross.T).T
    evals, evecs = scipy.linalg.eigh(train_kernel)
    if evals.min() <= 0:
        raise ValueError("train_kernel: not positive definite")
    gain = -np.expm1(-learning_rate * t * evals) / evals  # (1 − e^{−ηλt})/λ, exact for small ηλt
    return ((cross @ evecs) * gain) @ evecs.T


@dataclass(frozen=True)
class GaussianPrediction:
    """The GP over the outputs at the test inputs.

    Attributes:
        mean: `[n_test, k]` means of every output coordinate.
        covariance: `[n_test, n_test]` covariance shared by every output coordinate (None if not computed).
        variance: `[n_test]` its diagonal (always computed).
    """

    mean: np.ndarray
    covariance: np.ndarray | None
    variance: np.ndarray


def gp_predict(
    perm: np.ndarray | list[int],
    x_test: np.ndarray,
    *,
    kind: GPKind = "ntk",
    t: float | None = None,
    learning_rate: float = 1.0,
    w_std: float = 1.0,
    b_std: float = 0.0,
    parametrization: Parametrization = "ntk",
    width: int | None = None,
    normalise: bool = True,
    compute_cov: bool = True,
) -> GaussianPrediction:
    """Mean and covariance of the infinite ensemble after training on ``{(e_j, P e_j)}``.

    Args:
        perm: the permutation (``perm[j] = π(j)``), length k.
        x_test: `[n_test, k]` test inputs (binary or arbitrary); L2-normalised first when `normalise`.
        kind: "ntk" (NTK-GP) or "nngp" (NNGP-GP).
        t: training time (None = t = ∞); `learning_rate` is η.
        w_std, b_std, parametrization, width: the network (see `ntk_permute.kernels.nngp_ntk`).
        compute_cov: also return the full `[n_test, n_test]` covariance (the variance is always returned).

    Returns:
        A `GaussianPrediction` (mean `[n_test, k]`).
    """
    perm = check_permutation(perm)
    k = perm.size
    if kind not in GP_KINDS:
        raise ValueError(f"kind: expected one of {GP_KINDS}, got {kind!r}")
    check_kernel_params(w_std, b_std, parametrization, width)
    x = np.asarray(x_test, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != k:
        raise ValueError(f"x_test: expected shape [n_test, {k}], got {x.shape}")
    if normalise:
        x = normalise_inputs(x)
    params = {"w_std": w_std, "b_std": b_std, "parametrization": parametrization, "width": width}
    x_train = np.eye(k)
    k_tr, theta_tr = nngp_ntk(x_train, **params)
    k_te_tr, theta_te_tr = nngp_ntk(x, x_train, **params)
    drive_tr, drive_te_tr = (theta_tr, theta_te_tr) if kind == "ntk" else (k_tr, k_te_tr)
    weights = posterior_weights(drive_tr, drive_te_tr, t=t, learning_rate=learning_rate)  # [n_test, k]
    mean = weights @ train_targets(perm)
    if compute_cov:
        cross = weights @ k_te_tr.T  # T K(X, x'): [n_test, n_test]
        k_te, _ = nngp_ntk(x, **params)
        covariance = k_te + weights @ k_tr @ weights.T - cross - cross.T
        covariance = 0.5 * (covariance + covariance.T)
        variance = np.diagonal(covariance).copy()
    else:
        covariance = None
        k_diag = _nngp_diagonal(x, w_std=w_std, b_std=b_std)
        quadratic = np.einsum("ij,jl,il->i", weights, k_tr, weights)  # diag(T K Tᵀ)
        variance = k_diag + quadratic - 2.0 * np.einsum("ij,ij->i", weights, k_te_tr)
    return GaussianPrediction(mean=mean, covariance=covariance, variance=variance)


def _nngp_diagonal(x: np.ndarray, *, w_std: float, b_std: float) -> np.ndarray:
    """K(x, x) for each row of `x: [n, k]`: ``σ_w² Σ1(x, x)/2 + σ_b²`` (θ = 0), in both parametrisations."""
    sigma1 = w_std * w_std * np.einsum("ij,ij->i", x, x) / x.shape[1] + b_std * b_std
    return 0.5 * w_std * w_std * sigma1 + b_std * b_std
