"""The restricted `cifar-100-python` reader and the Pillow image-folder reader, on tiny fake folders."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from bt2_compat.data import load_dataset
from bt2_compat.readers import RestrictedUnpickler, load_cifar100, read_cifar100, read_image_folder, restricted_load
from repro_core.errors import InputError


def _write_cifar(root: Path, n_train: int = 6, n_test: int = 4, *, protocol: int = 2, str_keys: bool = False) -> None:
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    key = (lambda k: k) if str_keys else (lambda k: k.encode())
    for split, n in (("train", n_train), ("test", n_test)):
        record = {
            key("data"): rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
            key("fine_labels"): [int(v) for v in rng.integers(0, 100, size=n)],
            key("coarse_labels"): [int(v) for v in rng.integers(0, 20, size=n)],
            key("filenames"): [f"img_{split}_{i}.png".encode() for i in range(n)],
            key("batch_label"): b"training batch 1 of 1",
        }
        with open(root / split, "wb") as handle:
            pickle.dump(record, handle, protocol=protocol)
    meta = {key("fine_label_names"): [f"class{i}".encode() for i in range(100)], key("coarse_label_names"): []}
    with open(root / "meta", "wb") as handle:
        pickle.dump(meta, handle, protocol=protocol)


@pytest.mark.parametrize(("protocol", "str_keys"), [(2, False), (4, False), (4, True)])
def test_cifar_round_trip(tmp_path: Path, protocol: int, str_keys: bool) -> None:
    root = tmp_path / "cifar-100-python"
    _write_cifar(root, protocol=protocol, str_keys=str_keys)
    with open(root / "train", "rb") as handle:
        raw = pickle.load(handle, encoding="bytes")
    data_key = "data" if str_keys else b"data"
    split = read_cifar100(root, "train")
    assert split.images.shape == (6, 3, 32, 32) and split.images.dtype == np.uint8
    np.testing.assert_array_equal(split.images.reshape(6, -1), raw[data_key])
    np.testing.assert_array_equal(split.labels, raw["fine_labels" if str_keys else b"fine_labels"])
    np.testing.assert_array_equal(split.coarse_labels, raw["coarse_labels" if str_keys else b"coarse_labels"])
    assert split.names[0] == "img_train_0.png" and split.classes[3] == "class3"
    data = load_cifar100(root)
    assert data.x_train.shape == (6, 3, 32, 32) and data.x_test.shape == (4, 3, 32, 32)
    assert data.x_train.dtype == np.float32 and data.x_train.min() >= 0.0 and data.x_train.max() <= 1.0
    assert data.num_classes == 100
    assert load_dataset(f"cifar100-python:{root}").x_test.shape == (4, 3, 32, 32)


class _Evil:
    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (str(self.target),))


@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_cifar_refuses_other_objects(tmp_path: Path, protocol: int) -> None:
    root = tmp_path / "cifar-100-python"
    _write_cifar(root)
    marker = tmp_path / "pwned"
    record = {b"data": np.zeros((1, 3072), np.uint8), b"fine_labels": [0], b"payload": _Evil(marker)}
    (root / "train").write_bytes(pickle.dumps(record, protocol=protocol))
    with pytest.raises(InputError, match=r"refusing to unpickle (posix|os|nt)\.mkdir") as info:
        read_cifar100(root, "train")
    assert info.value.path == str(root / "train")
    assert not marker.exists()


@pytest.mark.parametrize("obj", [eval, print, getattr, np.load, pickle.loads])
def test_unpickler_refuses_callables(tmp_path: Path, obj: object) -> None:
    path = tmp_path / "f.pkl"
    path.write_bytes(pickle.dumps({b"x": obj}, protocol=2))
    with pytest.raises(InputError, match="refusing to unpickle"):
        restricted_load(path)


def test_unpickler_allows_only_listed_globals() -> None:
    assert ("numpy", "ndarray") in RestrictedUnpickler._ALLOWED
    assert all(module.startswith(("numpy", "_codecs")) for module, _ in RestrictedUnpickler._ALLOWED)


def test_cifar_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        read_cifar100(tmp_path / "missing")
    root = tmp_path / "c"
    root.mkdir()
    (root / "train").write_bytes(b"not a pickle")
    with pytest.raises(InputError, match="not a readable pickle"):
        read_cifar100(root)
    (root / "train").write_bytes(pickle.dumps({b"data": np.zeros((2, 10), np.uint8)}))
    with pytest.raises(InputError, match=r"\[n, 3072\]"):
        read_cifar100(root)
    (root / "train").write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"fine_labels": [0]}))
    with pytest.raises(InputError, match="expected 2 labels"):
        read_cifar100(root)
    with pytest.raises(InputError, match="split"):
        read_cifar100(root, "validation")


def _write_images(root: Path, split: str, sizes: dict[str, list[tuple[int, int]]]) -> None:
    image = pytest.importorskip("PIL.Image", reason="Pillow reads image folders (bt2-compat[images])")
    rng = np.random.default_rng(1)
    for cls, shapes in sizes.items():
        (root / split / cls).mkdir(parents=True)
        for i, (w, h) in enumerate(shapes):
            pixels = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
            image.fromarray(pixels).save(root / split / cls / f"{i}.png")


def test_image_folder(tmp_path: Path) -> None:
    _write_images(tmp_path, "training", {"cat": [(8, 6)] * 2, "ant": [(8, 6)] * 3})
    _write_images(tmp_path, "validation", {"cat": [(8, 6)]})
    (tmp_path / "training" / "ant" / "notes.txt").write_text("ignored")
    train = read_image_folder(tmp_path, "train")
    assert train.classes == ("ant", "cat")
    assert train.images.shape == (5, 3, 6, 8) and train.images.dtype == np.uint8
    assert train.labels.tolist() == [0, 0, 0, 1, 1]
    test = read_image_folder(tmp_path, "test", classes=train.classes)
    assert test.labels.tolist() == [1]
    data = load_dataset(f"imagefolder:{tmp_path}")
    assert data.x_train.shape == (5, 3, 6, 8) and data.num_classes == 2 and data.y_test.tolist() == [1]
    resized = read_image_folder(tmp_path, "train", size=4)
    assert resized.images.shape == (5, 3, 4, 4)


def test_image_folder_bad_input(tmp_path: Path) -> None:
    _write_images(tmp_path, "train", {"a": [(8, 8), (4, 4)]})
    with pytest.raises(InputError, match="pass size="):
        read_image_folder(tmp_path, "train")
    with pytest.raises(InputError, match="no split folder"):
        read_image_folder(tmp_path, "test")
    (tmp_path / "train" / "a" / "broken.png").write_bytes(b"nope")
    with pytest.raises(InputError, match="not a readable image"):
        read_image_folder(tmp_path, "train", size=4)


def test_unpickler_accepts_numpy1_module_name(tmp_path: Path) -> None:
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    raw = pickle.dumps({b"a": array}, protocol=2)
    assert b"numpy._core.multiarray" in raw or b"numpy.core.multiarray" in raw
    path = tmp_path / "old.pkl"
    path.write_bytes(raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    np.testing.assert_array_equal(restricted_load(path)[b"a"], array)


def test_protocol5_arrays_are_refused(tmp_path: Path) -> None:
    """Protocol 5 rebuilds arrays through `_frombuffer`, which CIFAR's files never use: not on the allow-list."""
    path = tmp_path / "p5.pkl"
    path.write_bytes(pickle.dumps({b"a": np.zeros(3, np.uint8)}, protocol=5))
    with pytest.raises(InputError, match="_frombuffer"):
        restricted_load(path)


def test_allocation_bombs_are_refused(tmp_path: Path) -> None:
    """Issue #13: a tiny pickle must not make the reader allocate more than the file's size (bytes(n), arrays)."""
    bomb = tmp_path / "bomb.pkl"
    raw = b"\x80\x02c__builtin__\nbytes\n\x8a\x05\x00\xe8vH\x17\x85R."  # bytes(100_000_000_000)
    bomb.write_bytes(raw)
    assert len(raw) < 40
    with pytest.raises(InputError, match=r"refusing bytes\(\) of size 100000000000.*file's size") as info:
        restricted_load(bomb)
    assert info.value.path == str(bomb)
    bomb.write_bytes(raw.replace(b"bytes", b"bytearray"))
    with pytest.raises(InputError, match="refusing bytearray"):
        restricted_load(bomb)
    # one memoised string encoded again and again: each call is small, together they exceed the file
    many = b"\x80\x02]q\x00(c_codecs\nencode\nq\x01X\xe8\x03\x00\x00" + b"x" * 1000  # [encode("x" * 1000,
    many += b"q\x02X\x06\x00\x00\x00latin1q\x03\x86q\x04R" + b"h\x01h\x04R" * 2000 + b"e."  # "latin1")] * 2001
    bomb.write_bytes(many)
    with pytest.raises(InputError, match=r"_codecs.encode.*file's size"):
        restricted_load(bomb)
    # an array whose state asks for more than the file holds
    array = pickle.dumps(np.zeros(4, np.uint8), protocol=2)
    huge = array.replace(b"K\x04\x85", b"J\x00\xca\x9a;\x85")  # shape (4,) -> (1_000_000_000,)
    assert huge != array
    bomb.write_bytes(huge)
    with pytest.raises(InputError, match=r"numpy array of shape \(1000000000,\).*larger than the file"):
        restricted_load(bomb)


@pytest.mark.parametrize("dtype", ["O", "u1,u1", "S3", "M8[s]"])
def test_unpickler_refuses_non_numeric_dtypes(tmp_path: Path, dtype: str) -> None:
    path = tmp_path / "dtype.pkl"
    path.write_bytes(pickle.dumps({b"a": np.zeros(1, dtype=dtype) if dtype != "O" else np.array([None])}, protocol=2))
    with pytest.raises(InputError, match="refusing"):
        restricted_load(path)


@pytest.mark.parametrize("protocol", [2, 4])
def test_unpickler_rebuilds_arrays_of_any_numeric_dtype(tmp_path: Path, protocol: int) -> None:
    values = {b"u8": np.arange(6, dtype=np.uint8).reshape(2, 3), b"f": np.linspace(0, 1, 5).astype(">f4")}
    values[b"fortran"] = np.asfortranarray(np.arange(6, dtype=np.int64).reshape(2, 3))
    path = tmp_path / "ok.pkl"
    path.write_bytes(pickle.dumps({**values, b"empty": b"", b"ba": bytearray(b"xy")}, protocol=protocol))
    loaded = restricted_load(path)
    for key, value in values.items():
        np.testing.assert_array_equal(loaded[key], value)
        assert loaded[key].dtype == value.dtype
    assert loaded[b"empty"] == b"" and loaded[b"ba"] == bytearray(b"xy")
