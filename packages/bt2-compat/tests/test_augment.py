"""Image augmentation: crop/flip correctness on tiny tensors, determinism by seed, and resume-exact training with it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from bt2_compat.augment import AugmentParams, apply_augmentation, augment_batch, draw_augmentation
from bt2_compat.data import load_dataset, make_synthetic, make_synthetic_images
from bt2_compat.models import ModelConfig, build_model
from bt2_compat.train import TrainConfig, train_model
from repro_core.errors import ConfigError


def _reference(x: torch.Tensor, params: AugmentParams) -> torch.Tensor:
    """One image at a time: zero-pad, slice the window, then mirror (torchvision's RandomCrop then HFlip)."""
    p = params.padding
    out = []
    for b in range(x.shape[0]):
        padded = F.pad(x[b], (p, p, p, p))
        dy, dx = int(params.dy[b]), int(params.dx[b])
        window = padded[:, dy : dy + x.shape[2], dx : dx + x.shape[3]]
        out.append(window.flip(-1) if bool(params.flip[b]) else window)
    return torch.stack(out)


def test_crop_and_flip_on_a_tiny_tensor() -> None:
    x = torch.arange(12, dtype=torch.float32).reshape(1, 1, 3, 4)  # rows [0..3], [4..7], [8..11]
    one = torch.tensor([1])

    def run(dy: int, dx: int, flip: bool, padding: int = 1) -> list[list[float]]:
        params = AugmentParams(dy * one, dx * one, torch.tensor([flip]), padding)
        return apply_augmentation(x, params)[0, 0].tolist()

    assert run(1, 1, False) == x[0, 0].tolist()  # the centred window is the image
    assert run(1, 1, True) == x[0, 0].flip(-1).tolist()
    assert run(0, 0, False) == [[0, 0, 0, 0], [0, 0, 1, 2], [0, 4, 5, 6]]  # shifted down-right, zeros enter
    assert run(2, 2, False) == [[5, 6, 7, 0], [9, 10, 11, 0], [0, 0, 0, 0]]
    assert run(2, 2, True) == [[0, 7, 6, 5], [0, 11, 10, 9], [0, 0, 0, 0]]  # crop first, then mirror
    assert run(0, 0, True, padding=0) == x[0, 0].flip(-1).tolist()


@settings(max_examples=25)
@given(
    batch=st.integers(1, 5),
    channels=st.integers(1, 3),
    height=st.integers(1, 6),
    width=st.integers(1, 6),
    padding=st.integers(0, 4),
    seed=st.integers(0, 2**31 - 1),
)
def test_batched_gather_equals_the_per_image_reference(
    batch: int, channels: int, height: int, width: int, padding: int, seed: int
) -> None:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, channels, height, width, generator=gen)
    params = draw_augmentation(batch, gen, padding=padding)
    assert int(params.dy.min()) >= 0 and int(params.dy.max()) <= 2 * padding
    out = apply_augmentation(x, params)
    assert out.shape == x.shape
    assert torch.equal(out, _reference(x, params))


def test_determinism_by_seed_and_flip_option() -> None:
    x = torch.rand(16, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    a = augment_batch(x, torch.Generator().manual_seed(1))
    b = augment_batch(x, torch.Generator().manual_seed(1))
    c = augment_batch(x, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    no_flip = draw_augmentation(64, torch.Generator().manual_seed(3), flip=False)
    assert not no_flip.flip.any()
    flips = draw_augmentation(64, torch.Generator().manual_seed(3)).flip
    assert 0 < int(flips.sum()) < 64
    global_draw = draw_augmentation(10, torch.Generator().manual_seed(4))
    share = global_draw.select(slice(1, None, 2))  # a rank's share of the global batch
    assert torch.equal(share.dx, global_draw.dx[1::2])
    with pytest.raises(ConfigError, match="crop_padding"):
        draw_augmentation(4, torch.Generator(), padding=-1)
    with pytest.raises(ConfigError, match="images"):
        apply_augmentation(torch.zeros(2, 8), global_draw.select(slice(0, 2)))
    with pytest.raises(ConfigError, match="drawn for"):
        apply_augmentation(torch.zeros(3, 1, 2, 2), global_draw)


IMAGES = make_synthetic_images(num_classes=3, per_class=10, size=8, seed=1)
#: an MLP on the flattened images keeps the test cheap; the ResNet-18 path with augmentation runs in the GPU
#: script's smoke test (test_gpu_script.py)
TINY = ModelConfig(in_features=3 * 8 * 8, hidden=(16,), embedding_dim=8, num_classes=3)


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_resume_with_augmentation_is_exact(tmp_path: Path) -> None:
    cfg = TrainConfig(epochs=3, batch_size=8, seed=2, augment=True, crop_padding=2)
    x, y = IMAGES.x_train, IMAGES.y_train
    straight = train_model(build_model(TINY, 0), x, y, cfg)
    plain = train_model(build_model(TINY, 0), x, y, TrainConfig(epochs=1, batch_size=8, seed=2))
    assert plain.losses[0] != straight.losses[0]  # the augmentation changes what the model sees

    def crash(epoch: int, loss: float) -> None:
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_model(build_model(TINY, 0), x, y, cfg, run_dir=tmp_path, on_epoch_end=crash)
    resumed = train_model(build_model(TINY, 0), x, y, cfg, run_dir=tmp_path)
    assert resumed.resumed_from == 1 and resumed.losses == straight.losses
    for name, w in _weights(straight.model).items():
        assert torch.equal(w, _weights(resumed.model)[name]), name


def test_augment_config_and_vector_data() -> None:
    cfg = TrainConfig(augment=True, crop_padding=0)
    assert TrainConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(ConfigError, match="crop_padding"):
        TrainConfig(crop_padding=-2)
    with pytest.raises(ConfigError, match="augment"):
        TrainConfig(augment="yes")  # type: ignore[arg-type]
    vectors = make_synthetic(num_classes=3, per_class=5, seed=0)
    model = build_model(ModelConfig(num_classes=3), 0)
    with pytest.raises(ConfigError, match="augment: needs images"):
        train_model(model, vectors.x_train, vectors.y_train, TrainConfig(epochs=1, augment=True))


def test_synthetic_images() -> None:
    a = make_synthetic_images(num_classes=4, per_class=10, seed=5)
    assert a.x_train.shape == (28, 3, 32, 32) and a.num_classes == 4 and a.name == "synthetic-images:4"
    b, c = load_dataset("synthetic-images:4", seed=5), make_synthetic_images(num_classes=4, seed=5)
    assert b.x_train.shape == (280, 3, 32, 32) and torch.equal(torch.from_numpy(b.x_train), torch.from_numpy(c.x_train))
    assert a.x_train.min() >= 0.0 and a.x_train.max() <= 1.0 and a.x_train.dtype.name == "float32"
    # class patterns differ: class means are far apart compared with the pixel noise
    means = torch.stack([torch.from_numpy(a.x_train[a.y_train == c]).mean(0) for c in range(4)])
    assert float(torch.cdist(means.flatten(1), means.flatten(1)).fill_diagonal_(1e9).min()) > 1.0
    with pytest.raises(ConfigError, match="size"):
        make_synthetic_images(size=2)


def test_cli_refuses_augmentation_of_vectors(tmp_path: Path) -> None:
    pytest.importorskip("sklearn", reason="the digits data ships with scikit-learn")
    from bt2_compat.cli import main
    from repro_core.testing import run_cli

    code, _, err = run_cli(main, ["train-old", "--augment", "--epochs", "1", "--out", str(tmp_path / "m.pt")])
    assert code == 2 and "augment" in err and not (tmp_path / "m.pt").exists()
