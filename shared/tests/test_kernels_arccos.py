"""Tests of the ReLU arc-cosine kernels (`repro_core.kernels.arccos`, torch backend)."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from repro_core.kernels import kappa0, kappa1, relu_nngp, relu_nngp_ntk, relu_ntk  # noqa: E402

# ntk-permute.md §2.4: d = 4 orthonormal inputs, w_std = 1.
GOLDEN = {
    0.0: {"nngp": (0.125, 0.0397887358), "ntk": (0.25, 0.0397887358)},
    0.5: {"nngp": (0.5, 0.4022494453), "ntk": (0.75, 0.4855827786)},
}


def numpy_reference(x1: np.ndarray, x2: np.ndarray, w_std: float, b_std: float) -> tuple[np.ndarray, np.ndarray]:
    """Direct float64 transcription of the §2.4 formulas, one pair at a time (independent of the torch code)."""
    d = x1.shape[-1]
    batch = np.broadcast_shapes(x1.shape[:-2], x2.shape[:-2])
    a = np.broadcast_to(x1, (*batch, *x1.shape[-2:])).reshape(-1, *x1.shape[-2:])
    b = np.broadcast_to(x2, (*batch, *x2.shape[-2:])).reshape(-1, *x2.shape[-2:])
    nngp = np.zeros((a.shape[0], a.shape[1], b.shape[1]))
    ntk = np.zeros_like(nngp)

    def sigma(u: np.ndarray, v: np.ndarray) -> float:
        return w_std**2 * float(u @ v) / d + b_std**2

    for n in range(a.shape[0]):
        for i in range(a.shape[1]):
            for j in range(b.shape[1]):
                s12, s11, s22 = sigma(a[n, i], b[n, j]), sigma(a[n, i], a[n, i]), sigma(b[n, j], b[n, j])
                root = math.sqrt(s11 * s22)
                theta = math.acos(min(1.0, max(-1.0, s12 / root))) if root > 0 else math.pi / 2
                k = w_std**2 / (2 * math.pi) * root * (math.sin(theta) + (math.pi - theta) * math.cos(theta))
                nngp[n, i, j] = k + b_std**2
                ntk[n, i, j] = nngp[n, i, j] + w_std**2 * s12 * (math.pi - theta) / (2 * math.pi)
    shape = (*batch, x1.shape[-2], x2.shape[-2])
    return nngp.reshape(shape), ntk.reshape(shape)


@pytest.mark.parametrize("b_std", sorted(GOLDEN))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_golden_values(b_std: float, dtype: torch.dtype) -> None:
    x = torch.eye(4, dtype=dtype)
    nngp, ntk = relu_nngp_ntk(x, w_std=1.0, b_std=b_std)
    tol = 1e-10 if dtype == torch.float64 else 1e-6
    for name, value in (("nngp", nngp), ("ntk", ntk)):
        diag, off = GOLDEN[b_std][name]
        assert value.dtype == dtype
        torch.testing.assert_close(value.diagonal(), torch.full((4,), diag, dtype=dtype), rtol=0, atol=tol)
        off_diag = value[~torch.eye(4, dtype=torch.bool)]
        torch.testing.assert_close(off_diag, torch.full((12,), off, dtype=dtype), rtol=0, atol=tol)


def test_kappa_facts() -> None:
    assert kappa0(0.0) == pytest.approx(0.5, abs=1e-15)
    assert kappa1(0.0) == pytest.approx(1 / math.pi, abs=1e-15)
    assert kappa0(1.0) == pytest.approx(1.0, abs=1e-15)
    assert kappa1(1.0) == pytest.approx(1.0, abs=1e-15)
    assert kappa0(-1.0) == pytest.approx(0.0, abs=1e-15) and kappa1(-1.0) == pytest.approx(0.0, abs=1e-15)
    assert isinstance(kappa0(0.3), float)
    rho = np.linspace(-0.99, 0.99, 199)
    h = 1e-6
    np.testing.assert_allclose((kappa1(rho + h) - kappa1(rho - h)) / (2 * h), kappa0(rho), atol=1e-8)
    # Out-of-range inputs are clamped, never NaN.
    assert kappa0(np.array([1.0 + 1e-12, -1.0 - 1e-12])).tolist() == [1.0, 0.0]


def test_kappa_torch_matches_numpy_and_derivative() -> None:
    rho = torch.linspace(-0.95, 0.95, 41, dtype=torch.float64, requires_grad=True)
    k1 = kappa1(rho)
    (grad,) = torch.autograd.grad(k1.sum(), rho)
    torch.testing.assert_close(grad, kappa0(rho.detach()), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(k1.detach().numpy(), kappa1(rho.detach().numpy()), rtol=1e-14)
    assert isinstance(kappa0(rho), torch.Tensor)


def test_unit_norm_bias_free_reduces_to_kappas() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(6, 5, generator=gen, dtype=torch.float64), dim=1)
    w_std = 1.3
    nngp, ntk = relu_nngp_ntk(x, w_std=w_std)
    rho = (x @ x.T).clamp(-1, 1)
    s = w_std**4 / (2 * 5)
    torch.testing.assert_close(nngp, s * kappa1(rho), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ntk, s * (kappa1(rho) + rho * kappa0(rho)), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("w_std", "b_std"), [(1.0, 0.0), (1.7, 0.4), (0.5, 2.0)])
def test_matches_independent_numpy_with_broadcast_batches(w_std: float, b_std: float) -> None:
    rng = np.random.default_rng(1)
    x1 = rng.normal(size=(2, 1, 4, 3))
    x2 = rng.normal(size=(3, 5, 3))
    x2[0, 1] = 0.0  # a zero input
    nngp, ntk = relu_nngp_ntk(x1, x2, w_std=w_std, b_std=b_std)
    assert isinstance(nngp, np.ndarray) and nngp.shape == (2, 3, 4, 5)
    want_nngp, want_ntk = numpy_reference(x1, x2, w_std, b_std)
    np.testing.assert_allclose(nngp, want_nngp, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ntk, want_ntk, rtol=1e-12, atol=1e-14)


def test_matches_wide_network_empirical_kernels() -> None:
    """Monte-Carlo check: the empirical NNGP and NTK (autograd Jacobians) of one wide random network."""
    gen = torch.Generator().manual_seed(7)
    d, width, w_std, b_std = 3, 40_000, 1.2, 0.3
    x = torch.randn(4, d, generator=gen, dtype=torch.float64)
    w1 = torch.randn(width, d, generator=gen, dtype=torch.float64, requires_grad=True)
    b1 = torch.randn(width, generator=gen, dtype=torch.float64, requires_grad=True)
    w2 = torch.randn(width, generator=gen, dtype=torch.float64, requires_grad=True)
    b2 = torch.randn((), generator=gen, dtype=torch.float64, requires_grad=True)
    hidden = torch.relu(x @ w1.T * (w_std / math.sqrt(d)) + b_std * b1)  # [4, width]
    out = hidden @ w2 * (w_std / math.sqrt(width)) + b_std * b2  # [4]
    # NNGP: average over the readout layer exactly, over hidden units by Monte Carlo.
    empirical_nngp = (hidden @ hidden.T) * (w_std**2 / width) + b_std**2
    params = (w1, b1, w2, b2)
    rows = [torch.autograd.grad(out[i], params, retain_graph=True) for i in range(4)]
    jac = torch.stack([torch.cat([g.reshape(-1) for g in row]) for row in rows])  # [4, n_params]
    empirical_ntk = jac @ jac.T
    nngp, ntk = relu_nngp_ntk(x, w_std=w_std, b_std=b_std)
    torch.testing.assert_close(empirical_nngp.detach(), nngp, rtol=0.05, atol=0.02)
    torch.testing.assert_close(empirical_ntk, ntk, rtol=0.05, atol=0.02)


def test_symmetric_and_exact_diagonal_without_x2() -> None:
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(2, 9, 6, generator=gen) * 3
    nngp, ntk = relu_nngp_ntk(x, w_std=1.1, b_std=0.2)
    assert torch.equal(nngp, nngp.mT) and torch.equal(ntk, ntk.mT)
    s11 = (x * x).sum(-1) * (1.1**2 / 6) + 0.2**2
    torch.testing.assert_close(nngp.diagonal(dim1=-2, dim2=-1), s11 * (1.1**2 / 2) + 0.04, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(ntk.diagonal(dim1=-2, dim2=-1), s11 * 1.1**2 + 0.04, rtol=1e-6, atol=1e-6)
    other_nngp, other_ntk = relu_nngp_ntk(x, x.clone(), w_std=1.1, b_std=0.2)
    torch.testing.assert_close(other_nngp, nngp, rtol=1e-3, atol=1e-4)
    torch.testing.assert_close(other_ntk, ntk, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("b_std", [0.0, 0.5])
def test_zero_inputs_give_finite_values(b_std: float) -> None:
    x = torch.tensor([[0.0, 0.0], [1.0, 2.0]], dtype=torch.float64)
    nngp, ntk = relu_nngp_ntk(x, b_std=b_std)
    assert torch.isfinite(nngp).all() and torch.isfinite(ntk).all()
    if b_std == 0.0:
        assert nngp[0].tolist() == [0.0, 0.0] and ntk[:, 0].tolist() == [0.0, 0.0]
    want_nngp, want_ntk = numpy_reference(x.numpy(), x.numpy(), 1.0, b_std)
    np.testing.assert_allclose(nngp.numpy(), want_nngp, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(ntk.numpy(), want_ntk, rtol=1e-12, atol=1e-15)


def test_conveniences_and_dtypes() -> None:
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(3))
    nngp, ntk = relu_nngp_ntk(x, x[:2])
    assert nngp.dtype == torch.float32 and nngp.shape == (3, 2)
    assert torch.equal(relu_nngp(x, x[:2]), nngp) and torch.equal(relu_ntk(x, x[:2]), ntk)
    double_nngp = relu_nngp(x.double(), x[:2].double())
    torch.testing.assert_close(double_nngp.float(), nngp, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((torch.ones(4),), {}, "x1: expected"),
        ((torch.ones(2, 4), torch.ones(4)), {}, "x2: expected"),
        ((torch.ones(2, 4), torch.ones(2, 3)), {}, "x2: input dimension 3"),
        ((torch.ones(2, 3, 4), torch.ones(5, 2, 4)), {}, "x2: batch dims"),
        ((torch.ones(2, 4),), {"w_std": -1.0}, "w_std"),
        ((torch.ones(2, 4),), {"b_std": float("nan")}, "b_std"),
        ((torch.ones(2, 4),), {"backend": "jax"}, "backend"),
        ((torch.ones(2, 0),), {}, "d must be >= 1"),
    ],
)
def test_bad_arguments(args: tuple, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        relu_nngp_ntk(*args, **kwargs)
