"""The basis transformation stays orthonormal (at init, under training) and preserves inner products."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bt2_compat.transform import MAPS, BasisTransform, orthogonality_error, skew_expm
from repro_core.errors import ConfigError


def _seeded(seed: int, dim: int, **kwargs: object) -> BasisTransform:
    torch.manual_seed(seed)
    return BasisTransform(dim, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("orthogonal_map", MAPS)
def test_orthonormal_at_init(orthogonal_map: str) -> None:
    bt = _seeded(0, 24, orthogonal_map=orthogonal_map)
    assert orthogonality_error(bt.weight) < 1e-5
    assert bt.weight.shape == (24, 24)


def test_identity_init_and_default_map() -> None:
    bt = BasisTransform(6, init="identity")
    torch.testing.assert_close(bt.weight, torch.eye(6), atol=1e-6, rtol=0)
    # PyTorch picks the matrix exponential for square layers (spec 2.2)
    assert bt.linear.parametrizations.weight[0].orthogonal_map.name == "matrix_exp"


def test_stays_orthonormal_under_adam_training() -> None:
    """Drift stays below 1e-5 over 200 Adam steps at the training LR (1e-3) and a 10x larger one."""
    gen = torch.Generator().manual_seed(1)
    target = torch.randn(32, 32, generator=gen)
    for lr in (1e-3, 1e-2):
        bt = _seeded(2, 32)
        opt = torch.optim.Adam(bt.parameters(), lr=lr)
        worst = 0.0
        for _ in range(200):
            x = torch.randn(64, 32, generator=gen)
            loss = (bt(x) - x @ target.T).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            worst = max(worst, orthogonality_error(bt.weight))
        assert worst < 1e-5, (lr, worst)


def test_matrix_exp_parametrisation_matches_reference_map() -> None:
    """The explicit Q = expm(A - A^T) is orthonormal, and assigning it to a BasisTransform reproduces it."""
    params = torch.randn(10, 10, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    q = skew_expm(params)
    assert orthogonality_error(q) < 1e-12
    bt = BasisTransform(10, init="identity")
    with torch.no_grad():
        bt.linear.weight = q.float()
    torch.testing.assert_close(bt.weight, q.float(), atol=1e-5, rtol=0)


def test_freeze_keeps_the_map() -> None:
    bt = _seeded(4, 8)
    x = torch.randn(5, 8)
    before = bt(x)
    bt.freeze()
    torch.testing.assert_close(bt(x), before)
    assert not torch.nn.utils.parametrize.is_parametrized(bt.linear)  # a plain Linear now (scriptable)


@settings(max_examples=25)
@given(seed=st.integers(0, 2**31 - 1), dim=st.integers(1, 40), n=st.integers(1, 12))
def test_preserves_norms_and_inner_products(seed: int, dim: int, n: int) -> None:
    bt = _seeded(seed, dim)
    x = torch.from_numpy(np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32))
    y = bt(x)
    torch.testing.assert_close(y @ y.T, x @ x.T, atol=1e-4 * max(1.0, float(x.norm(dim=1).max()) ** 2), rtol=0)


def test_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="dim"):
        BasisTransform(0)
    with pytest.raises(ConfigError, match="orthogonal_map"):
        BasisTransform(3, orthogonal_map="qr")
    with pytest.raises(ConfigError, match="init"):
        BasisTransform(3, init="zeros")
    with pytest.raises(ValueError, match="square"):
        orthogonality_error(torch.zeros(2, 3))
