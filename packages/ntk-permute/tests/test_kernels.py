"""Kernels of the two-layer ReLU network: spec 2.4 closed forms and golden entries, the standard parametrisation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ntk_permute.kernels import kappa0, kappa1, nngp_ntk, scalar_kernels


def test_arccos_facts() -> None:
    assert kappa0(0.0) == pytest.approx(0.5, abs=1e-15)
    assert kappa1(0.0) == pytest.approx(1 / math.pi, abs=1e-15)
    assert kappa0(1.0) == pytest.approx(1.0, abs=1e-15) and kappa1(1.0) == pytest.approx(1.0, abs=1e-15)
    rho = np.linspace(-0.9, 0.9, 19)
    h = 1e-6
    derivative = (kappa1(rho + h) - kappa1(rho - h)) / (2 * h)  # κ1' = κ0
    np.testing.assert_allclose(derivative, kappa0(rho), atol=1e-8)


@pytest.mark.parametrize(
    ("b_std", "nngp_diag", "nngp_off", "ntk_diag", "ntk_off"),
    [
        (0.0, 0.125, 0.0397887358, 0.25, 0.0397887358),
        (0.5, 0.5, 0.4022494453, 0.75, 0.4855827786),
    ],
)
def test_golden_training_gram_k4(
    b_std: float, nngp_diag: float, nngp_off: float, ntk_diag: float, ntk_off: float
) -> None:
    nngp, ntk = nngp_ntk(np.eye(4), b_std=b_std)
    assert nngp.dtype == np.float64 and nngp.shape == (4, 4)
    off = ~np.eye(4, dtype=bool)
    np.testing.assert_allclose(np.diagonal(nngp), nngp_diag, atol=1e-9)
    np.testing.assert_allclose(nngp[off], nngp_off, atol=1e-9)
    np.testing.assert_allclose(np.diagonal(ntk), ntk_diag, atol=1e-9)
    np.testing.assert_allclose(ntk[off], ntk_off, atol=1e-9)


@pytest.mark.parametrize("k", [1, 2, 5, 8, 30])
def test_basis_entries_bias_free(k: int) -> None:
    # Θ(e_i, e_i) = 1/k, Θ(e_i, e_j) = 1/(2πk), K(e_i, e_i) = 1/(2k), K(e_i, e_j) = 1/(2πk)  (σ_w = 1, spec 8.1)
    nngp, ntk = nngp_ntk(np.eye(k))
    expected_ntk = np.full((k, k), 1 / (2 * math.pi * k)) + np.eye(k) * (1 / k - 1 / (2 * math.pi * k))
    expected_nngp = np.full((k, k), 1 / (2 * math.pi * k)) + np.eye(k) * (1 / (2 * k) - 1 / (2 * math.pi * k))
    np.testing.assert_allclose(ntk, expected_ntk, atol=1e-12)
    np.testing.assert_allclose(nngp, expected_nngp, atol=1e-12)


def _check_scalar_fast_path(k: int, rho: float, w_std: float, b_std: float, tol: float) -> None:
    x = np.zeros((2, k))
    x[0, 0] = 1.0
    x[1, 0], x[1, 1] = rho, math.sqrt(max(0.0, 1 - rho * rho))
    nngp, ntk = nngp_ntk(x, w_std=w_std, b_std=b_std)
    k_rho, theta_rho = scalar_kernels(float(x[0] @ x[1]), k, w_std=w_std, b_std=b_std)
    assert float(k_rho) == pytest.approx(nngp[0, 1], rel=1e-12, abs=tol)
    assert float(theta_rho) == pytest.approx(ntk[0, 1], rel=1e-12, abs=tol)
    if b_std == 0:  # K = s κ1(ρ), Θ = s [κ1(ρ) + ρ κ0(ρ)], s = σ_w⁴/(2k)
        s = w_std**4 / (2 * k)
        r = float(x[0] @ x[1])
        assert float(k_rho) == pytest.approx(s * kappa1(r), rel=1e-12, abs=tol)
        assert float(theta_rho) == pytest.approx(s * (kappa1(r) + r * kappa0(r)), rel=1e-12, abs=tol)


@settings(max_examples=40)
@given(
    k=st.integers(2, 40),
    rho=st.one_of(st.floats(-1.0 + 1e-6, 1.0 - 1e-6), st.sampled_from([-1.0, 1.0])),
    w_std=st.floats(0.3, 2.0),
    b_std=st.sampled_from([0.0, 0.1, 0.5, 1.0, 2.0]),
)
def test_scalar_fast_path_matches_gram(k: int, rho: float, w_std: float, b_std: float) -> None:
    _check_scalar_fast_path(k, rho, w_std, b_std, tol=1e-12)


@pytest.mark.parametrize("gap", [1e-16, 1e-14, 1e-12, 1e-10, 1e-8, 1e-6])
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_scalar_fast_path_near_the_poles(gap: float, sign: float) -> None:
    # κ0(ρ) = 1 − arccos(ρ)/π has an infinite slope at ρ = ±1: the two paths round ρ differently (a norm here, a
    # ratio of variances there), and one unit in the last place moves κ0 by up to √(2·eps)/π ≈ 7e-9. Within 1e-6
    # of a pole the paths agree to that conditioning, not to 1e-12.
    rho = sign * (1.0 - gap)
    for k, w_std in ((2, 1.5), (3, 2.0), (40, 0.3)):
        _check_scalar_fast_path(k, rho, w_std, 0.0, tol=1e-7)


def test_standard_parametrisation_closed_form() -> None:
    # Bias-free standard NTK at the basis: n/(2k) + σ_w²/2 on the diagonal, n/(2πk) off it; its top eigenvalue is
    # n σ_w²/(2k) (1 + (k − 1)/π) + σ_w²/2 (spec 7.2 quotes the leading n term).
    k, n = 6, 1000
    nngp_std, ntk_std = nngp_ntk(np.eye(k), parametrization="standard", width=n)
    nngp, _ = nngp_ntk(np.eye(k))
    np.testing.assert_allclose(nngp_std, nngp, atol=1e-15)
    expected = np.full((k, k), n / (2 * math.pi * k)) + np.eye(k) * (n / (2 * k) + 0.5 - n / (2 * math.pi * k))
    np.testing.assert_allclose(ntk_std, expected, rtol=1e-12)
    top = np.linalg.eigvalsh(ntk_std)[-1]
    assert top == pytest.approx(n / (2 * k) * (1 + (k - 1) / math.pi) + 0.5, rel=1e-12)


@pytest.mark.parametrize("b_std", [0.0, 0.5])
def test_standard_ntk_matches_empirical_ntk(b_std: float) -> None:
    """Monte-Carlo check: the empirical NTK of one wide standard-parametrisation net (trained biases)."""
    rng = np.random.default_rng(1234)
    k, n, w_std = 4, 200_000, 1.0
    x = np.array([[1.0, 0, 0, 0], [1.0, 1, 0, 0], [0.3, -0.5, 1.0, 2.0]])
    w = rng.normal(0.0, w_std / math.sqrt(k), size=(n, k))
    b1 = rng.normal(0.0, b_std, size=n)
    v = rng.normal(0.0, w_std / math.sqrt(n), size=n)
    h = x @ w.T + b1  # [3, n]
    act, step = np.maximum(h, 0.0), (h > 0).astype(np.float64)
    empirical = act @ act.T + ((step * v) @ (step * v).T) * (x @ x.T + 1.0) + 1.0
    _, ntk_std = nngp_ntk(x, w_std=w_std, b_std=b_std, parametrization="standard", width=n, trainable_bias=True)
    np.testing.assert_allclose(empirical, ntk_std, rtol=0.02)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="width"):
        nngp_ntk(np.eye(3), parametrization="standard")
    with pytest.raises(ValueError, match="parametrization"):
        nngp_ntk(np.eye(3), parametrization="mup")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="w_std"):
        nngp_ntk(np.eye(3), w_std=-1.0)
    with pytest.raises(ValueError, match="x2"):
        nngp_ntk(np.eye(3), np.eye(4))
    with pytest.raises(ValueError, match="x1"):
        nngp_ntk(np.ones(3))


@pytest.mark.parametrize("parametrization", ["ntk", "standard"])
def test_std_arguments_are_checked_by_repro_core(parametrization: str) -> None:
    """One σ_w/σ_b check for ntk-permute and repro-core (issue #14): the same function, the same messages."""
    import repro_core.kernels
    from ntk_permute import kernels

    assert kernels.check_std is repro_core.kernels.check_std
    width = None if parametrization == "ntk" else 8
    with pytest.raises(ValueError, match=r"^b_std: expected a real number, got True$"):
        nngp_ntk(np.eye(2), b_std=True, parametrization=parametrization, width=width)
    with pytest.raises(ValueError, match=r"^w_std: must be finite and >= 0, got nan$"):
        nngp_ntk(np.eye(2), w_std=np.float32("nan"), parametrization=parametrization, width=width)
