"""Rounding, permutation recovery and exhaustive evaluation over all 2^k − 1 nonzero binary inputs (spec 2.3, 2.7, 3).

Rounding is ``ŷ_i = 1[mean_i > eps]``. The default eps = 1e-10 (the authors' v2 code) matters: at a training input
the off-bit mean is exactly 0 in theory but comes out as ~±1e-17 analytically (and ~±1e-12 for trained networks or
finite training time), with either sign, so the strict rule ``mean > 0`` (eps = 0) fails at random there. eps must
stay far below the smallest off-bit margin |μ_off(2)| ≈ 0.15/(k + 5).

`exhaustive_check` streams the inputs in chunks of `chunk_size` codes (bits of the integers 1..2^k − 1), so memory
is O(chunk_size · k) whatever k: k = 20 (1,048,575 inputs) needs a few MB. Two modes:

- "kernel": the full GP mean ``Θ(x, X) Θ⁻¹ (I − e^{−ηΘt}) Y`` from the Gram matrices (any σ_b, parametrisation,
  normalised or not), computed once per chunk and shared by every permutation;
- "mform": the (k, m) closed form of `ntk_permute.closed_form` (NTK parametrisation, normalised inputs), O(k) per
  input.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ntk_permute.closed_form import m_form
from ntk_permute.gp import (
    GP_KINDS,
    GPKind,
    apply_permutation,
    check_permutation,
    gp_predict,
    normalise_inputs,
    posterior_weights,
    train_targets,
)
from ntk_permute.kernels import Parametrization, check_kernel_params, nngp_ntk

__all__ = [
    "DEFAULT_EPS",
    "MODES",
    "ExhaustiveResult",
    "binary_chunks",
    "exact_round",
    "exhaustive_check",
    "is_exact",
    "recover_permutation",
    "recover_permutation_gp",
]

logger = logging.getLogger(__name__)

#: The rounding tolerance of the authors' v2 validation code.
DEFAULT_EPS = 1e-10
#: Accepted values of `exhaustive_check(mode=...)`.
MODES: tuple[str, ...] = ("kernel", "mform")
#: Largest k the exhaustive evaluator accepts (2^30 inputs is already hours of work).
MAX_EXHAUSTIVE_K = 30


def _check_eps(eps: float) -> float:
    if isinstance(eps, bool) or not isinstance(eps, int | float) or not np.isfinite(eps) or eps < 0:
        raise ValueError(f"eps: expected a finite tolerance >= 0, got {eps!r}")
    return float(eps)


def exact_round(mean: np.ndarray, eps: float = DEFAULT_EPS) -> np.ndarray:
    """``1[mean > eps]`` as int8, same shape as `mean` (eps = 0 is the fragile strict rule; see the module doc)."""
    eps = _check_eps(eps)
    return (np.asarray(mean) > eps).astype(np.int8)


def is_exact(mean: np.ndarray, target: np.ndarray, eps: float = DEFAULT_EPS) -> np.ndarray:
    """Per-input exactness `[n]`: every rounded bit of `mean: [n, k]` equals `target: [n, k]` (0/1)."""
    return np.all(exact_round(mean, eps) == np.asarray(target), axis=-1)


def recover_permutation(basis_outputs: np.ndarray, eps: float = DEFAULT_EPS) -> np.ndarray | None:
    """Read π off the outputs at the training inputs: row j of `basis_outputs: [k, k]` is the output at e_j.

    Returns `perm` (``perm[j] = π(j)``) when every rounded row is one-hot and the columns form a permutation, else
    None (the outputs do not encode a permutation).
    """
    rounded = exact_round(basis_outputs, eps)
    if rounded.ndim != 2 or rounded.shape[0] != rounded.shape[1]:
        raise ValueError(f"basis_outputs: expected a [k, k] array, got shape {rounded.shape}")
    if not np.all(rounded.sum(axis=1) == 1):
        return None
    perm = np.argmax(rounded, axis=1).astype(np.int64)
    if not np.array_equal(np.sort(perm), np.arange(perm.size)):
        return None
    return perm


def recover_permutation_gp(
    perm: np.ndarray | list[int], *, kind: GPKind = "ntk", eps: float = DEFAULT_EPS, **gp_options: object
) -> np.ndarray | None:
    """Train the `kind` GP on ``{(e_j, P e_j)}``, evaluate its mean at the e_j and recover π (or None)."""
    perm = check_permutation(perm)
    prediction = gp_predict(
        perm,
        np.eye(perm.size),
        kind=kind,
        compute_cov=False,
        **gp_options,  # type: ignore[arg-type]
    )
    return recover_permutation(prediction.mean, eps)


def binary_chunks(k: int, chunk_size: int = 65536) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield `(codes [b], bits [b, k] int8)` for the integers 1..2^k − 1 in order, `chunk_size` at a time.

    Bit j of the code is input coordinate j, so code 2^j is the training input e_j.
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= MAX_EXHAUSTIVE_K:
        raise ValueError(f"k: must be an integer in 1..{MAX_EXHAUSTIVE_K}, got {k!r}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int | np.integer) or chunk_size < 1:
        raise ValueError(f"chunk_size: must be an integer >= 1, got {chunk_size!r}")
    shifts = np.arange(k, dtype=np.int64)
    total = 1 << int(k)
    for start in range(1, total, int(chunk_size)):
        codes = np.arange(start, min(start + int(chunk_size), total), dtype=np.int64)
        yield codes, ((codes[:, None] >> shifts) & 1).astype(np.int8)


@dataclass(frozen=True)
class ExhaustiveResult:
    """Outcome of an exhaustive check over all 2^k − 1 nonzero inputs, one entry per permutation.

    Attributes:
        k: input dimension.
        n_inputs: 2^k − 1.
        eps: the rounding tolerance used.
        n_exact: `[n_perms]` inputs whose rounded mean equals P x in every bit.
        min_on: `[n_perms]` smallest mean over on-bits (target 1).
        max_off: `[n_perms]` largest mean over off-bits (target 0); includes the training inputs' ~1e-17.
        first_failure: `[n_perms]` smallest failing input code (bit j = coordinate j), or -1 when all are exact.
    """

    k: int
    n_inputs: int
    eps: float
    n_exact: np.ndarray
    min_on: np.ndarray
    max_off: np.ndarray
    first_failure: np.ndarray

    @property
    def all_exact(self) -> bool:
        """True when every permutation got every input exactly right."""
        return bool(np.all(self.n_exact == self.n_inputs))


def exhaustive_check(
    k: int,
    perms: Sequence[np.ndarray] | np.ndarray,
    *,
    kind: GPKind = "ntk",
    eps: float = DEFAULT_EPS,
    mode: Literal["kernel", "mform"] = "kernel",
    t: float | None = None,
    learning_rate: float = 1.0,
    w_std: float = 1.0,
    b_std: float = 0.0,
    parametrization: Parametrization = "ntk",
    width: int | None = None,
    normalise: bool = True,
    chunk_size: int = 65536,
    on_chunk: Callable[[int], None] | None = None,
) -> ExhaustiveResult:
    """Round the GP mean at every nonzero x ∈ {0,1}^k and compare with P x, for each permutation in `perms`.

    Args:
        k: input dimension (1..30; k = 20 takes seconds).
        perms: permutations (``perm[j] = π(j)``), each of length k; `[n_perms, k]`.
        kind: "ntk" (NTK-GP) or "nngp" (NNGP-GP).
        eps: rounding tolerance (0 = the strict rule).
        mode: "kernel" (full Gram matrices) or "mform" (closed form; NTK parametrisation and normalised inputs).
        t, learning_rate, w_std, b_std, parametrization, width, normalise: the GP (see `gp_predict`).
        chunk_size: inputs per chunk (memory is O(chunk_size · k)).
        on_chunk: called with the number of inputs done after each chunk (progress bars).
    """
    eps = _check_eps(eps)
    perm_list = [check_permutation(p, k) for p in perms]
    if not perm_list:
        raise ValueError("perms: at least one permutation is needed")
    if kind not in GP_KINDS:
        raise ValueError(f"kind: expected one of {GP_KINDS}, got {kind!r}")
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {MODES}, got {mode!r}")
    check_kernel_params(w_std, b_std, parametrization, width)
    if mode == "mform" and (parametrization != "ntk" or not normalise):
        raise ValueError("mode: 'mform' needs parametrization='ntk' and normalised inputs; use mode='kernel'")
    n_perms = len(perm_list)
    n_exact = np.zeros(n_perms, dtype=np.int64)
    min_on = np.full(n_perms, np.inf)
    max_off = np.full(n_perms, -np.inf)
    first_failure = np.full(n_perms, -1, dtype=np.int64)

    if mode == "mform":
        form = m_form(k, kind=kind, t=t, learning_rate=learning_rate, w_std=w_std, b_std=b_std)
        w_on, w_off = form.mu_on, np.nan_to_num(form.mu_off, nan=0.0)

        def unpermuted_mean(bits: np.ndarray) -> np.ndarray:
            level = bits.sum(axis=1) - 1
            return np.where(bits == 1, w_on[level][:, None], w_off[level][:, None])

        def means(bits: np.ndarray) -> list[np.ndarray]:
            base = unpermuted_mean(bits)  # the mean of P x, un-permuted: (P⁻¹ μ)_j depends on x_j and m only
            return [apply_permutation(perm, base) for perm in perm_list]

    else:
        params = {"w_std": w_std, "b_std": b_std, "parametrization": parametrization, "width": width}
        x_train = np.eye(k)
        k_tr, theta_tr = nngp_ntk(x_train, **params)  # type: ignore[arg-type]
        drive_tr = theta_tr if kind == "ntk" else k_tr
        # alpha_p = Θ⁻¹ (I − e^{−ηΘt}) Y_p, so that the mean of a chunk is Θ(x, X) alpha_p: [k, k] per permutation.
        alphas = [
            posterior_weights(drive_tr, train_targets(p).T, t=t, learning_rate=learning_rate).T for p in perm_list
        ]

        def means(bits: np.ndarray) -> list[np.ndarray]:
            x = bits.astype(np.float64)
            if normalise:
                x = normalise_inputs(x)
            k_cross, theta_cross = nngp_ntk(x, x_train, **params)  # type: ignore[arg-type]
            cross = theta_cross if kind == "ntk" else k_cross
            return [cross @ alpha for alpha in alphas]

    done = 0
    for codes, bits in binary_chunks(k, chunk_size):
        for i, (perm, mean) in enumerate(zip(perm_list, means(bits), strict=True)):
            target = apply_permutation(perm, bits)
            exact = is_exact(mean, target, eps)
            n_exact[i] += int(exact.sum())
            on = target == 1
            min_on[i] = min(min_on[i], float(mean[on].min()))
            if not on.all():
                max_off[i] = max(max_off[i], float(mean[~on].max()))
            if first_failure[i] < 0 and not exact.all():
                first_failure[i] = int(codes[np.argmin(exact)])
        done += codes.size
        if on_chunk is not None:
            on_chunk(done)
    logger.info("k=%d %s-GP (%s mode): %d permutations, exact %s of %d", k, kind, mode, n_perms, n_exact, done)
    return ExhaustiveResult(
        k=int(k),
        n_inputs=done,
        eps=eps,
        n_exact=n_exact,
        min_on=min_on,
        max_off=max_off,
        first_failure=first_failure,
    )
