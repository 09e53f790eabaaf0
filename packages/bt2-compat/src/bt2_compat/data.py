"""Offline data: scikit-learn's bundled digits, a seeded synthetic generator, and the class-split protocol.

Backward-compatible training simulates a model update by growing the class set: the old model is trained on the
first `old_classes` labels of the training split, the new models on all of them, and retrieval is evaluated on the
test split with every class (spec 2.1, 3). Splits are stratified and seeded, so a run is reproducible.

- `digits`: `sklearn.datasets.load_digits` reads the 1,797 8x8 images bundled inside scikit-learn (no network);
  pixels 0..16 are scaled to [0, 1] and flattened to 64 features; 10 classes.
- `synthetic`: class centres `c_y ~ N(0, I_latent)`, samples `z = c_y + noise * eps`, features
  `x = tanh(A2 tanh(A1 z)) + 0.05 eps'` with random Gaussian `A1, A2`; any number of classes, no scikit-learn.
- `synthetic-images`: CIFAR-like `[n, 3, 32, 32]` images in [0, 1] (spec 3: class-specific patterns rendered into
  3x32x32 tensors): each class has an orientation, spatial frequency and colour of a sinusoidal grating and the
  position and colour of a Gaussian blob; each sample jitters all of them (orientation, frequency, colours, blob
  position), draws a random phase and contrast, adds a class-independent clutter blob of random colour and place,
  and pixel noise. Hard enough that raw pixels do poorly (20 classes: 1-NN ~60%, logistic regression ~25%),
  so a network must learn features. For the ResNet-18 preset and the GPU series script.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from repro_core.errors import ConfigError
from repro_core.seeding import numpy_rng

__all__ = [
    "DATASETS",
    "Dataset",
    "check_old_classes",
    "class_subset",
    "load_dataset",
    "load_digits",
    "make_synthetic",
    "make_synthetic_images",
    "stratified_split",
]

#: Dataset names accepted by `load_dataset` ("synthetic" also as "synthetic:<classes>"; the folder readers as
#: "cifar100-python:<dir>" and "imagefolder:<dir>").
DATASETS = ("digits", "synthetic", "synthetic-images", "cifar100-python", "imagefolder")


@dataclass(frozen=True, eq=False)
class Dataset:
    """A train/test split. `x_*: [n, ...]` float32, `y_*: [n]` int64 labels in `[0, num_classes)`."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    seed: int | None = None  #: the generator seed of a synthetic data set; None for data read from files

    @property
    def in_features(self) -> int:
        """Flattened input width."""
        return int(np.prod(self.x_train.shape[1:]))

    @functools.cached_property
    def fingerprint(self) -> str:
        """SHA-256 (hex) of the class count and of both splits' shapes, dtypes and bytes.

        Equal fingerprints mean the same data, whatever spec or folder it was loaded from; a different seed of a
        synthetic task, another split or other files give another fingerprint. Computed once per `Dataset`.
        Generated data may differ in the last bits between numpy builds or CPUs; `identity()` therefore also
        records the generator seed.
        """
        digest = hashlib.sha256(f"bt2-compat-dataset/1 {self.num_classes}".encode())
        for array in (self.x_train, self.y_train, self.x_test, self.y_test):
            array = np.ascontiguousarray(array)
            digest.update(f"|{array.dtype.str}{array.shape}|".encode())
            digest.update(memoryview(array).cast("B"))
        return digest.hexdigest()

    def identity(self) -> dict[str, Any]:
        """`{"name", "num_classes", "seed", "fingerprint"}`: what a model file records about its training data."""
        return {"name": self.name, "num_classes": self.num_classes, "seed": self.seed, "fingerprint": self.fingerprint}


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, test indices), each class split `round(test_fraction * n_class)` to test; both sorted."""
    if not 0.0 < test_fraction < 1.0:
        raise ConfigError(f"test_fraction: expected a value in (0, 1), got {test_fraction!r}")
    rng = numpy_rng(seed, "bt2-compat", "split")
    train, test = [], []
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        idx = idx[rng.permutation(len(idx))]
        n_test = round(test_fraction * len(idx))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def load_digits(test_fraction: float = 0.3, split_seed: int = 0) -> Dataset:
    """scikit-learn's bundled digits (spec 3): 64 features in [0, 1], 10 classes, stratified 70/30 split."""
    from sklearn.datasets import load_digits as _sk_load_digits

    bunch = _sk_load_digits()
    x = (np.asarray(bunch.data, dtype=np.float32) / 16.0).reshape(len(bunch.target), -1)
    y = np.asarray(bunch.target, dtype=np.int64)
    train, test = stratified_split(y, test_fraction, split_seed)
    return Dataset("digits", x[train], y[train], x[test], y[test], 10)


def _check_generator_args(noise: float, **integers: tuple[int, int]) -> None:
    """`ConfigError` unless each `name=(value, minimum)` is an integer >= minimum and `noise` >= 0."""
    for name, (value, low) in integers.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{name}: expected an integer >= {low}, got {value!r}")
    if not noise >= 0:
        raise ConfigError(f"noise: expected >= 0, got {noise!r}")


def make_synthetic(
    num_classes: int = 40,
    per_class: int = 100,
    *,
    latent_dim: int = 16,
    dim: int = 64,
    noise: float = 1.0,
    test_fraction: float = 0.3,
    seed: int = 0,
) -> Dataset:
    """A seeded nonlinear classification task (module docstring) with `num_classes * per_class` samples."""
    _check_generator_args(
        noise, num_classes=(num_classes, 2), per_class=(per_class, 2), latent_dim=(latent_dim, 1), dim=(dim, 1)
    )
    rng = numpy_rng(seed, "bt2-compat", "synthetic")
    centres = rng.standard_normal((num_classes, latent_dim))
    a1 = rng.standard_normal((latent_dim, 2 * latent_dim)) / np.sqrt(latent_dim)
    a2 = rng.standard_normal((2 * latent_dim, dim)) / np.sqrt(2 * latent_dim)
    y = np.repeat(np.arange(num_classes, dtype=np.int64), per_class)
    z = centres[y] + noise * rng.standard_normal((len(y), latent_dim))
    x = np.tanh(np.tanh(z @ a1) @ a2) + 0.05 * rng.standard_normal((len(y), dim))
    train, test = stratified_split(y, test_fraction, seed)
    x = x.astype(np.float32)
    return Dataset(f"synthetic:{num_classes}", x[train], y[train], x[test], y[test], num_classes, seed)


def make_synthetic_images(
    num_classes: int = 10,
    per_class: int = 100,
    *,
    size: int = 32,
    channels: int = 3,
    noise: float = 0.2,
    test_fraction: float = 0.3,
    seed: int = 0,
) -> Dataset:
    """Seeded CIFAR-like images (module docstring): `x_*: [n, channels, size, size]` float32 in [0, 1]."""
    _check_generator_args(
        noise, num_classes=(num_classes, 2), per_class=(per_class, 2), size=(size, 4), channels=(channels, 1)
    )
    rng = numpy_rng(seed, "bt2-compat", "synthetic-images")
    # class parameters: orientations spread over [0, pi), frequencies in cycles per image, colours, blob centres
    theta = (rng.permutation(num_classes) + rng.uniform(0, 0.5, num_classes)) * np.pi / num_classes
    freq = rng.uniform(1.5, 4.5, num_classes)
    grating_colour = rng.uniform(-1.0, 1.0, (num_classes, channels))
    blob_colour = rng.uniform(-1.0, 1.0, (num_classes, channels))
    centre = rng.uniform(0.3, 0.7, (num_classes, 2))
    y = np.repeat(np.arange(num_classes, dtype=np.int64), per_class)
    n = len(y)
    # per-sample jitter of the class parameters, random phase, contrast and clutter
    angle = theta[y] + rng.normal(0.0, 0.8 * np.pi / num_classes, n)
    f = freq[y] * np.exp(rng.normal(0.0, 0.1, n))
    phase = rng.uniform(0.0, 2 * np.pi, n)
    shift = rng.normal(0.0, 0.2, (n, 2))
    g_colour = grating_colour[y] + 0.6 * rng.standard_normal((n, channels))
    b_colour = blob_colour[y] + 0.6 * rng.standard_normal((n, channels))
    clutter_colour = rng.uniform(-1.0, 1.0, (n, channels))
    clutter_y, clutter_x = rng.uniform(0.1, 0.9, (2, n))
    contrast = rng.uniform(0.5, 1.2, n)
    coords = (np.arange(size, dtype=np.float64) + 0.5) / size  # [size] in (0, 1)
    rows, cols = coords[None, :, None], coords[None, None, :]

    def bump(cy: np.ndarray, cx: np.ndarray, width: float) -> np.ndarray:  # [n, size, size] Gaussian bumps
        return np.exp(-((rows - cy[:, None, None]) ** 2 + (cols - cx[:, None, None]) ** 2) / (2 * width**2))

    projection = np.cos(angle)[:, None, None] * rows + np.sin(angle)[:, None, None] * cols
    grating = np.sin(2 * np.pi * f[:, None, None] * projection + phase[:, None, None])  # [n, size, size]
    cy, cx = (centre[y] + shift).T
    picture = (
        g_colour[:, :, None, None] * grating[:, None]
        + b_colour[:, :, None, None] * bump(cy, cx, 0.12)[:, None]
        + clutter_colour[:, :, None, None] * bump(clutter_y, clutter_x, 0.1)[:, None]
    )
    x = 0.5 + 0.25 * contrast[:, None, None, None] * picture + noise * rng.standard_normal((n, channels, size, size))
    x = np.clip(x, 0.0, 1.0).astype(np.float32)
    train, test = stratified_split(y, test_fraction, seed)
    return Dataset(f"synthetic-images:{num_classes}", x[train], y[train], x[test], y[test], num_classes, seed)


def load_dataset(spec: str, *, seed: int = 0) -> Dataset:
    """`"digits"`, `"synthetic"` / `"synthetic:<classes>"`, `"synthetic-images[:<classes>]"` (both synthetic tasks
    are drawn from `seed`), or a folder
    already on disk: `"cifar100-python:<dir>"`, `"imagefolder:<dir>"` (`bt2_compat.readers`; never downloads)."""
    if spec == "digits":
        return load_digits(split_seed=0)
    kind, sep, folder = spec.partition(":")
    if sep and folder and kind in ("cifar100-python", "imagefolder"):
        from bt2_compat import readers

        return readers.load_cifar100(folder) if kind == "cifar100-python" else readers.load_image_folder(folder)
    match = re.fullmatch(r"synthetic(?::(\d+))?", spec)
    if match:
        return make_synthetic(int(match.group(1) or 40), seed=seed)
    match = re.fullmatch(r"synthetic-images(?::(\d+))?", spec)
    if match:
        return make_synthetic_images(int(match.group(1) or 10), seed=seed)
    raise ConfigError(
        "data: expected 'digits', 'synthetic[:<classes>]', 'synthetic-images[:<classes>]', 'cifar100-python:<dir>' "
        f"or 'imagefolder:<dir>', got {spec!r}"
    )


def check_old_classes(old_classes: Any, num_classes: int, *, name: str = "old_classes", data: str = "") -> int:
    """`old_classes` if it splits `num_classes` classes into old and new ones, else `ConfigError` naming `name`.

    The old model needs at least 2 classes (with one, its embedding learns nothing) and the update at least one new
    class, so the range is `2 .. num_classes - 1`.
    """
    of = f"{num_classes}-class data {data}".rstrip() if data else f"{num_classes}-class data"
    if isinstance(old_classes, bool) or not isinstance(old_classes, int) or not 2 <= old_classes <= num_classes - 1:
        if num_classes < 3:
            raise ConfigError(f"{name}: {of} cannot be split into old and new classes (needs at least 3 classes)")
        raise ConfigError(f"{name}: expected an integer in 2..{num_classes - 1} for {of}, got {old_classes!r}")
    return old_classes


def class_subset(x: np.ndarray, y: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """The samples whose label is `< n_classes` (the old model's training data, as ml-fct's `SubImageFolder`)."""
    if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 1:
        raise ConfigError(f"old_classes: expected a positive integer, got {n_classes!r}")
    keep = y < n_classes
    if not keep.any():
        raise ConfigError(f"old_classes: no sample has a label below {n_classes}")
    return x[keep], y[keep]
