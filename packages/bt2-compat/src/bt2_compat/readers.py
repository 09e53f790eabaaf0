"""Readers for image data already on disk: a `cifar-100-python` folder and an image folder (never download).

CIFAR-100's python version is a set of pickles, and unpickling runs arbitrary code named in the file. The CIFAR
reader therefore uses `bt2_compat.safe_pickle.RestrictedUnpickler` (re-exported here), whose `find_class` resolves
only the globals these files need (numpy's array reconstruction, `numpy.ndarray`, `numpy.dtype`, builtin containers,
and `_codecs.encode`, which protocol-2 pickles written by Python 3 use for `bytes`), each capped so that what the
pickle builds never exceeds the file's size; any other global raises `InputError` naming the file before anything
is called. Layout (spec 3, ml-fct's `prepare_dataset.py`): `<root>/{train,test,meta}`, each split a dict with
`data` uint8 `[n, 3072]` (channel-major 3x32x32), `fine_labels`, `coarse_labels`, `filenames`; `meta` holds
`fine_label_names` and `coarse_label_names`. Keys may be `bytes` (the original Python 2 files) or `str`.

The image-folder reader follows torchvision's `ImageFolder` convention: `<root>/<split>/<class>/<image>`, classes
sorted by name and numbered from 0 in the training split; split names `train`/`training` and
`val`/`validation`/`test` (ml-fct uses `training`/`validation`). Images are read with Pillow (the `images` extra),
converted to RGB, and must all have the same size unless `size` resizes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bt2_compat.data import Dataset
from bt2_compat.safe_pickle import RestrictedUnpickler, restricted_load
from repro_core.errors import InputError
from repro_core.optional import require

__all__ = [
    "IMAGE_SUFFIXES",
    "ImageSplit",
    "RestrictedUnpickler",
    "load_cifar100",
    "load_image_folder",
    "read_cifar100",
    "read_image_folder",
    "restricted_load",
]

#: File suffixes the image-folder reader picks up (case-insensitive).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")

_TRAIN_NAMES = ("train", "training")
_TEST_NAMES = ("test", "val", "validation")


@dataclass(frozen=True, eq=False)
class ImageSplit:
    """One split of an image data set.

    `images: [n, 3, H, W]` uint8, `labels: [n]` int64 in `[0, len(classes))`, `names: [n]` file names;
    `coarse_labels: [n]` int64 (CIFAR-100's 20 super-classes) or None.
    """

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    names: tuple[str, ...]
    coarse_labels: np.ndarray | None = None


def _field(record: dict[Any, Any], key: str, path: Path) -> Any:
    for candidate in (key.encode(), key):
        if candidate in record:
            return record[candidate]
    raise InputError(f"missing key {key!r}", path=path, field=key)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, (bytes, bytearray)) else str(value)


def _int_labels(value: Any, n: int, key: str, path: Path) -> np.ndarray:
    try:
        labels = np.asarray(value, dtype=np.int64)
    except (TypeError, ValueError):
        raise InputError("expected a list of integer labels", path=path, field=key) from None
    if labels.shape != (n,):
        raise InputError(f"expected {n} labels, got shape {labels.shape}", path=path, field=key)
    if n and labels.min() < 0:
        raise InputError("labels must be >= 0", path=path, field=key)
    return labels


def read_cifar100(root: str | Path, split: str = "train") -> ImageSplit:
    """Read `<root>/<split>` (`"train"` or `"test"`) of an already-downloaded `cifar-100-python` folder.

    Returns `images: [n, 3, 32, 32]` uint8, fine labels (100 classes), coarse labels and file names; class names
    come from `<root>/meta` when it exists (else `"0".."99"`).
    """
    if split not in ("train", "test"):
        raise InputError(f"split: expected 'train' or 'test', got {split!r}", field="split")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise InputError("cifar-100-python folder not found", path=root)
    path = root / split
    record = restricted_load(path)
    if not isinstance(record, dict):
        raise InputError(f"expected a dict, got {type(record).__name__}", path=path)
    data = _field(record, "data", path)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        shape = getattr(data, "shape", None)
        got = f"{type(data).__name__} {getattr(data, 'dtype', '')} {shape}"
        raise InputError(f"expected a uint8 array [n, 3072], got {got}", path=path, field="data")
    n = data.shape[0]
    fine = _int_labels(_field(record, "fine_labels", path), n, "fine_labels", path)
    coarse = _int_labels(_field(record, "coarse_labels", path), n, "coarse_labels", path)
    names = tuple(_text(name) for name in _field(record, "filenames", path))
    if len(names) != n:
        raise InputError(f"expected {n} file names, got {len(names)}", path=path, field="filenames")
    classes = tuple(str(i) for i in range(100))
    if (root / "meta").exists():
        meta = restricted_load(root / "meta")
        if not isinstance(meta, dict):
            raise InputError(f"expected a dict, got {type(meta).__name__}", path=root / "meta")
        classes = tuple(_text(name) for name in _field(meta, "fine_label_names", root / "meta"))
    if n and fine.max() >= len(classes):
        raise InputError(f"label {int(fine.max())} >= number of classes {len(classes)}", path=path, field="fine_labels")
    images = data.reshape(n, 3, 32, 32).copy()  # the unpickled array is a read-only view of the file's bytes
    return ImageSplit(images, fine, classes, names, coarse)


def _find_split(root: Path, names: tuple[str, ...]) -> Path:
    for name in names:
        if (root / name).is_dir():
            return root / name
    raise InputError(f"no split folder named one of {names}", path=root)


def read_image_folder(
    root: str | Path, split: str = "train", *, classes: tuple[str, ...] | None = None, size: int | None = None
) -> ImageSplit:
    """Read `<root>/<split>/<class>/<image>` with Pillow (module docstring).

    `split` is `"train"` (folder `train` or `training`) or `"test"` (`test`, `val` or `validation`). `classes`
    fixes the class order (the test split must use the training split's); by default the sub-folders, sorted.
    `size` resizes every image to `size x size` (bilinear); without it all images must have one size.
    Returns `images: [n, 3, H, W]` uint8.
    """
    image_module = require("PIL.Image", "reading image folders", extra="images", distribution="bt2-compat")
    if split not in ("train", "test"):
        raise InputError(f"split: expected 'train' or 'test', got {split!r}", field="split")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise InputError(f"size: expected a positive integer, got {size!r}", field="size")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise InputError("image folder not found", path=root)
    folder = _find_split(root, _TRAIN_NAMES if split == "train" else _TEST_NAMES)
    found = sorted(p.name for p in folder.iterdir() if p.is_dir())
    if classes is None:
        classes = tuple(found)
    else:
        unknown = sorted(set(found) - set(classes))
        if unknown:
            raise InputError(f"class folders not in the training split: {unknown}", path=folder)
    if not classes:
        raise InputError("no class sub-folders", path=folder)
    pixels: list[np.ndarray] = []
    labels: list[int] = []
    names: list[str] = []
    shape: tuple[int, ...] | None = None
    for label, name in enumerate(classes):
        directory = folder / name
        if not directory.is_dir():
            continue
        for path in sorted(p for p in directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            try:
                with image_module.open(path) as handle:
                    image = handle.convert("RGB")
                    if size is not None:
                        image = image.resize((size, size), image_module.Resampling.BILINEAR)
                    array = np.asarray(image, dtype=np.uint8)
            except OSError as exc:
                raise InputError(f"not a readable image ({exc})", path=path) from None
            if shape is None:
                shape = array.shape
            elif array.shape != shape:
                raise InputError(
                    f"image is {array.shape[1]}x{array.shape[0]}, the first one {shape[1]}x{shape[0]}; pass size=",
                    path=path,
                )
            pixels.append(array.transpose(2, 0, 1))
            labels.append(label)
            names.append(f"{name}/{path.name}")
    if not pixels:
        raise InputError(f"no images ({', '.join(IMAGE_SUFFIXES)})", path=folder)
    return ImageSplit(np.stack(pixels), np.asarray(labels, dtype=np.int64), tuple(classes), tuple(names))


def _to_dataset(name: str, train: ImageSplit, test: ImageSplit) -> Dataset:
    """Scale pixels to float32 `[0, 1]`, `x: [n, 3, H, W]`."""
    scale = np.float32(1.0 / 255.0)
    return Dataset(
        name,
        train.images.astype(np.float32) * scale,
        train.labels,
        test.images.astype(np.float32) * scale,
        test.labels,
        len(train.classes),
    )


def load_cifar100(root: str | Path) -> Dataset:
    """The CIFAR-100 train/test split of `root` as a `Dataset` (`x: [n, 3, 32, 32]` float32 in [0, 1], fine labels)."""
    return _to_dataset("cifar100-python", read_cifar100(root, "train"), read_cifar100(root, "test"))


def load_image_folder(root: str | Path, *, size: int | None = None) -> Dataset:
    """The train/test split of an image folder as a `Dataset` (`x: [n, 3, H, W]` float32 in [0, 1])."""
    train = read_image_folder(root, "train", size=size)
    test = read_image_folder(root, "test", classes=train.classes, size=size)
    return _to_dataset("imagefolder", train, test)
