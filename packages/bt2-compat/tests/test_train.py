"""Training: determinism, resume to identical weights, every method by name, BT^2 stays orthonormal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from bt2_compat.data import class_subset, make_synthetic
from bt2_compat.losses import bct_influence, l2_regression, pseudo_classifier
from bt2_compat.models import ModelConfig, build_model
from bt2_compat.train import TrainConfig, train_model
from bt2_compat.transform import orthogonality_error
from repro_core.errors import ConfigError

DATA = make_synthetic(num_classes=6, per_class=30, dim=16, latent_dim=4, seed=0)
SMALL = {"in_features": 16, "hidden": (32,), "embedding_dim": 8, "num_classes": 6}


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _old_and_independent() -> tuple[torch.nn.Module, torch.nn.Module]:
    x_old, y_old = class_subset(DATA.x_train, DATA.y_train, 3)
    old = train_model(build_model(ModelConfig(**SMALL), 1), x_old, y_old, TrainConfig(epochs=3)).model
    ind = train_model(build_model(ModelConfig(**SMALL), 2), DATA.x_train, DATA.y_train, TrainConfig(epochs=3)).model
    return old, ind


def test_same_seed_same_weights() -> None:
    cfg = TrainConfig(epochs=2, seed=3)
    a = train_model(build_model(ModelConfig(**SMALL), 0), DATA.x_train, DATA.y_train, cfg)
    b = train_model(build_model(ModelConfig(**SMALL), 0), DATA.x_train, DATA.y_train, cfg)
    assert a.losses == b.losses
    for name, w in _weights(a.model).items():
        assert torch.equal(w, _weights(b.model)[name]), name


@pytest.mark.parametrize("method", ["l2", "bt2"])
def test_interrupted_run_resumes_to_identical_weights(tmp_path: Path, method: str) -> None:
    old, ind = _old_and_independent()
    arch = ModelConfig(kind="bt2" if method == "bt2" else "embedding", old_dim=8, extra_dims=2, **SMALL)
    cfg = TrainConfig(method=method, epochs=4, seed=7, warmup_epochs=1)
    kwargs = {"old_model": old, "new_prime_model": ind, "num_classes": 6}
    straight = train_model(build_model(arch, 0), DATA.x_train, DATA.y_train, cfg, **kwargs)

    def crash(epoch: int, loss: float) -> None:
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_model(
            build_model(arch, 0), DATA.x_train, DATA.y_train, cfg, run_dir=tmp_path, on_epoch_end=crash, **kwargs
        )
    resumed = train_model(build_model(arch, 0), DATA.x_train, DATA.y_train, cfg, run_dir=tmp_path, **kwargs)
    assert resumed.resumed_from == 1
    assert resumed.losses == straight.losses
    for name, w in _weights(straight.model).items():
        assert torch.equal(w, _weights(resumed.model)[name]), name
    with pytest.raises(ConfigError, match="different training config"):
        train_model(
            build_model(arch, 0),
            DATA.x_train,
            DATA.y_train,
            TrainConfig(method=method, epochs=5),
            run_dir=tmp_path,
            **kwargs,
        )


def test_bt2_training_keeps_transforms_orthonormal_and_matches_teachers() -> None:
    """Spec 6.4's stronger new' match (lambda1 = 5) on a tiny task: both branches move towards their teachers."""
    old, ind = _old_and_independent()
    model = build_model(ModelConfig(kind="bt2", old_dim=8, extra_dims=2, **SMALL), 0)
    drift: list[float] = []

    def record(epoch: int, loss: float) -> None:
        drift.extend(orthogonality_error(bt.weight) for bt in (model.head.transform_new, model.head.transform_old))

    cfg = TrainConfig(method="bt2", epochs=25, lr=1e-2, lambdas=(5.0, 10.0, 5.0), batch_size=32)
    result = train_model(
        model, DATA.x_train, DATA.y_train, cfg, old_model=old, new_prime_model=ind, num_classes=6, on_epoch_end=record
    )
    assert max(drift) < 1e-5
    assert result.losses[-1] < result.losses[0]
    x = torch.from_numpy(DATA.x_train)
    untrained = build_model(ModelConfig(kind="bt2", old_dim=8, extra_dims=2, **SMALL), 0)

    def match(m: torch.nn.Module) -> tuple[float, float]:
        with torch.no_grad():
            out = m(x)
            return (
                float(torch.nn.functional.cosine_similarity(out.new_prime, ind.embed(x)).mean()),
                float(torch.nn.functional.cosine_similarity(out.compat, old.embed(x)).mean()),
            )

    (new_before, old_before), (new_after, old_after) = match(untrained), match(model)
    assert new_after > new_before + 0.2 and old_after > max(old_before + 0.2, 0.7), (
        new_before,
        new_after,
        old_before,
        old_after,
    )


def test_bct_moves_new_embeddings_towards_the_old_space() -> None:
    old, _ = _old_and_independent()
    x, y = torch.from_numpy(DATA.x_train), torch.from_numpy(DATA.y_train)
    cfg = dict(epochs=4, seed=1)
    plain = train_model(build_model(ModelConfig(**SMALL), 4), x, y, TrainConfig(**cfg)).model
    bct = train_model(
        build_model(ModelConfig(**SMALL), 4),
        x,
        y,
        TrainConfig(method="bct", bct_alpha=5.0, **cfg),
        old_model=old,
        num_classes=6,
    ).model
    with torch.no_grad():
        classifier = pseudo_classifier(old.embed(x), y, 6)
        assert bct_influence(bct.embed(x), y, classifier, 16.0) < bct_influence(plain.embed(x), y, classifier, 16.0)


def test_losses_and_pseudo_classifier() -> None:
    emb = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    labels = torch.tensor([0, 0, 2])
    means = pseudo_classifier(emb, labels, 4)
    torch.testing.assert_close(means, torch.tensor([[0.5, 0.5], [0.0, 0.0], [1.0, 1.0], [0.0, 0.0]]))
    assert torch.isfinite(means).all()
    new = torch.tensor([[1.0, 0.0, 5.0], [0.0, 1.0, 5.0]])
    assert float(l2_regression(new, torch.tensor([[1.0, 0.0], [0.0, 0.0]]))) == pytest.approx(0.5)


def test_method_requirements_and_config_validation() -> None:
    model = build_model(ModelConfig(**SMALL), 0)
    with pytest.raises(ConfigError, match="old model"):
        train_model(model, DATA.x_train, DATA.y_train, TrainConfig(method="bct", epochs=1))
    with pytest.raises(ConfigError, match="BT2Model"):
        train_model(
            model,
            DATA.x_train,
            DATA.y_train,
            TrainConfig(method="bt2", epochs=1),
            old_model=model,
            new_prime_model=model,
        )
    with pytest.raises(ConfigError, match="method"):
        TrainConfig(method="lce")
    with pytest.raises(ConfigError, match="warmup_epochs"):
        TrainConfig(epochs=2, warmup_epochs=2)
    with pytest.raises(ConfigError, match="lambdas"):
        TrainConfig(lambdas=(1.0, 2.0))  # type: ignore[arg-type]
    cfg = TrainConfig(method="bt2", lambdas=(1.0, 5.0, 5.0), schedule="constant")
    assert TrainConfig.from_json(cfg.to_json()) == cfg


@pytest.mark.parametrize(
    "bad",
    [
        {"lr": float("inf")},
        {"influence_scale": float("inf")},
        {"weight_decay": float("inf")},
        {"bct_alpha": float("inf")},
        {"l2_weight": float("nan")},
        {"lambdas": (1.0, float("inf"), 5.0)},
    ],
)
def test_infinite_rates_and_weights_are_refused(bad: dict[str, object]) -> None:
    """Issue #13: `lr=inf` passed the `> 0` check and turned the weights into NaN on the first step."""
    with pytest.raises(ConfigError, match="finite"):
        TrainConfig(**bad)  # type: ignore[arg-type]


def test_synthetic_and_digits_data() -> None:
    a, b = make_synthetic(num_classes=5, per_class=10, seed=3), make_synthetic(num_classes=5, per_class=10, seed=3)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert len(a.y_test) == 15 and np.bincount(a.y_test).tolist() == [3] * 5
    pytest.importorskip("sklearn", reason="digits ships with scikit-learn")
    from bt2_compat.data import load_dataset

    digits = load_dataset("digits")
    assert digits.x_train.shape[1] == 64 and digits.num_classes == 10
    assert len(digits.y_train) + len(digits.y_test) == 1797 and 530 <= len(digits.y_test) <= 545
    assert digits.x_train.min() >= 0.0 and digits.x_train.max() <= 1.0
    with pytest.raises(ConfigError, match="data"):
        load_dataset("cifar100")


def test_data_parallel_gradients_are_summed_by_repro_core() -> None:
    """The flat all-reduce lives once, in repro-core (issue #14); `tests/test_distributed.py` runs it under torchrun."""
    import bt2_compat.train
    import repro_core.distributed

    assert bt2_compat.train.all_reduce_gradients is repro_core.distributed.all_reduce_gradients
    assert not hasattr(bt2_compat.train, "_all_reduce_gradients")
