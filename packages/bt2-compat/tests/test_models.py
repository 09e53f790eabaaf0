"""The BT^2 head: the inner-product identity, constant norm, compatible block, dimensions, edge cases."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bt2_compat.models import (
    BT2Head,
    BT2Model,
    EmbeddingModel,
    ModelConfig,
    ResNet18Cifar,
    ResNet50Cifar,
    build_model,
)
from bt2_compat.transform import orthogonality_error
from repro_core.errors import ConfigError
from repro_core.testing import float_tolerance


def _drift(q: torch.Tensor) -> float:
    """`||Q^T Q - I||_2` in float64: how far a nearly orthogonal Q can move an inner product of unit vectors."""
    q = q.detach().to(torch.float64)
    return float(torch.linalg.matrix_norm(q.T @ q - torch.eye(q.shape[0], dtype=torch.float64), ord=2))


def _head(d_new: int, d_old: int, k: int, c: float, seed: int) -> BT2Head:
    torch.manual_seed(seed)
    return BT2Head(d_new + d_old, d_new, d_old, k, scale_c=c, num_classes=5)


@settings(max_examples=30)
@given(
    seed=st.integers(0, 2**31 - 1), d_new=st.integers(1, 24), k=st.integers(0, 8), c=st.floats(0.5, 4.0), data=st.data()
)
def test_inner_product_identity(seed: int, d_new: int, k: int, c: float, data: st.DataObject) -> None:
    """<phi_i, phi_j> = <a_i, a_j> + C^2 <f_i, f_j>, norm sqrt(1 + C^2), compat = phi[:, :d_old] (spec 2.3)."""
    _check_inner_product_identity(seed, d_new, data.draw(st.integers(max(k, 1), d_new + k)), k, c)


@pytest.mark.parametrize(
    ("seed", "d_new", "d_old", "k", "c"), [(1459269197, 2, 7, 7, 2.9), (1512783101, 7, 2, 0, 1.865)]
)
def test_inner_product_identity_with_drifting_orthogonal_maps(
    seed: int, d_new: int, d_old: int, k: int, c: float
) -> None:
    """Issue #14: draws whose float32 matrix_exp drifts by ~3e-5 failed the fixed tolerance 1e-5 (1 + C^2)."""
    _check_inner_product_identity(seed, d_new, d_old, k, c)


def _check_inner_product_identity(seed: int, d_new: int, d_old: int, k: int, c: float) -> None:
    head = _head(d_new, d_old, k, c, seed)
    with torch.no_grad():  # random BT parameters, not just the init
        for bt in (head.transform_new, head.transform_old):
            original = bt.linear.parametrizations.weight.original
            original.copy_(torch.randn(original.shape, generator=torch.Generator().manual_seed(seed + 1)))
    b = torch.randn(9, d_new + d_old, generator=torch.Generator().manual_seed(seed))
    out = head(b)
    phi, a, f = out.embedding, out.old_branch, out.new_prime
    assert phi.shape == (9, d_new + k) and head.embedding_dim == d_new + k
    assert out.compat.shape == (9, d_old) and a.shape == (9, k) and f.shape == (9, d_new)
    torch.testing.assert_close(phi[:, :d_old], out.compat, atol=0, rtol=0)
    # The identity is exact for orthogonal P and O; float32 matrix_exp gives nearly orthogonal ones, whose drift
    # E = Q^T Q - I moves <Qx, Qy> by at most ||E||_2 |x| |y| (|x|, |y| <= sqrt(1 + C^2)), and rounding adds at most
    # the chain's length in terms: P's and O's matrix-vector products, then the inner products.
    squared_norm = 1 + c**2
    tolerance = squared_norm * (_drift(head.transform_new.weight) + _drift(head.transform_old.weight))
    tolerance += float_tolerance(torch.float32, 2 * d_new + d_old + k, scale=squared_norm)
    torch.testing.assert_close(phi @ phi.T, a @ a.T + c**2 * (f @ f.T), atol=tolerance, rtol=0)
    expected = (1.0 if k > 0 else 0.0) + c**2
    torch.testing.assert_close((phi * phi).sum(dim=1), torch.full((9,), expected), atol=tolerance, rtol=0)


def test_edge_case_d_old_equals_d_new_plus_k() -> None:
    """The released code's `[:, -(d + k - d_o):]` slice returns everything when d + k == d_o; ours is empty."""
    head = _head(6, 8, 2, 2.0, 0)
    out = head(torch.randn(4, 14))
    assert out.embedding.shape == (4, 8)
    torch.testing.assert_close(out.embedding, out.compat)


def test_head_validation() -> None:
    with pytest.raises(ConfigError, match="extra_dims"):
        BT2Head(16, 8, 8, 9)
    with pytest.raises(ConfigError, match="d_old"):
        BT2Head(40, 8, 20, 4)  # d_old > d_new + k
    with pytest.raises(ConfigError, match="in_features"):
        BT2Head(4, 8, 8, 2)
    with pytest.raises(ConfigError, match="scale_c"):
        BT2Head(16, 8, 8, 2, scale_c=0.0)
    with pytest.raises(ConfigError, match="finite"):  # issue #13: C = inf made every embedding NaN
        BT2Head(16, 8, 8, 2, scale_c=float("inf"))


def test_model_config_round_trip_and_validation() -> None:
    config = ModelConfig(kind="bt2", hidden=(16, 8), extra_dims=4, scale_c=4.0, bt_init="identity")
    assert ModelConfig.from_json(config.to_json()) == config
    assert json.loads(config.to_json())["hidden"] == [16, 8]
    assert config.output_dim == 36
    with pytest.raises(ConfigError, match="kind"):
        ModelConfig(kind="fct")
    with pytest.raises(ConfigError, match="unknown"):
        ModelConfig.from_dict({"depth": 3})
    with pytest.raises(ConfigError, match="extra_dims"):
        ModelConfig(kind="bt2", embedding_dim=8, old_dim=32, extra_dims=4)


def test_build_model_is_seeded_and_keeps_global_rng() -> None:
    state = torch.random.get_rng_state()
    a = build_model(ModelConfig(kind="bt2", hidden=(16,)), seed=5)
    b = build_model(ModelConfig(kind="bt2", hidden=(16,)), seed=5)
    c = build_model(ModelConfig(kind="bt2", hidden=(16,)), seed=6)
    assert torch.equal(torch.random.get_rng_state(), state)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name
    assert not torch.equal(a.backbone.net[0].weight, c.backbone.net[0].weight)
    assert isinstance(a, BT2Model) and orthogonality_error(a.head.transform_old.weight) < 1e-5


def test_embedding_model_output_is_unit_norm() -> None:
    model = build_model(ModelConfig(hidden=(16,), embedding_dim=12), seed=0)
    assert isinstance(model, EmbeddingModel)
    out = model(torch.randn(7, 64))
    assert out.logits.shape == (7, 10) and out.embedding.shape == (7, 12)
    torch.testing.assert_close(out.embedding.norm(dim=1), torch.ones(7))


def test_resnet18_backbones() -> None:
    net = ResNet18Cifar(3, 24, width=4)
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 24)
    assert sum(isinstance(m, torch.nn.Conv2d) for m in net.modules()) == 1 + 16 + 3 + 1  # stem, blocks, shortcuts, proj
    model = build_model(
        ModelConfig(kind="bt2", backbone="resnet18", width=4, embedding_dim=8, old_dim=8, extra_dims=2), seed=0
    )
    model.eval()
    assert model.embed(torch.randn(2, 3, 16, 16)).shape == (2, 10)


def test_resnet50_backbones() -> None:
    net = ResNet50Cifar(3, 24, width=2)
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 24)
    # stem, 16 bottlenecks x 3 convs, 4 projection shortcuts, the embedding projection
    assert sum(isinstance(m, torch.nn.Conv2d) for m in net.modules()) == 1 + 48 + 4 + 1
    # at width 64 the residual stages have exactly torchvision's ResNet-50 parameter count without its 7x7 stem
    # and fc (25,557,032 - 2,049,000 - 9,408 - 128)
    full = ResNet50Cifar(3, 128, width=64)
    assert sum(p.numel() for p in full.blocks.parameters()) == 23_498_496
    model = build_model(
        ModelConfig(kind="bt2", backbone="resnet50", width=2, embedding_dim=8, old_dim=8, extra_dims=2), seed=0
    )
    model.eval()
    assert model.embed(torch.randn(2, 3, 16, 16)).shape == (2, 10)
