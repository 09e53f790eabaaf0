"""Input handling shared by the metrics: numpy/torch conversion, float64, shape and NaN checks.

Every metric converts its inputs here so that numpy arrays, torch tensors (any device, with or without grad),
JAX arrays and nested lists all give the same numbers. torch is never imported: a tensor is recognised by its
`detach`/`cpu`/`numpy` methods, so `repro_core.metrics` works with numpy alone.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

__all__ = [
    "Reduce",
    "as_float64",
    "as_int_array",
    "check_reduce",
    "reduce_values",
    "to_numpy",
]

#: How per-query / per-example values are combined: `"mean"` gives a Python float, `"none"` the numpy array.
Reduce = Literal["mean", "none"]


def _is_torch_tensor(x: object) -> bool:
    module = type(x).__module__
    return module.startswith("torch") and all(hasattr(x, name) for name in ("detach", "cpu", "numpy"))


def to_numpy(x: Any, name: str) -> np.ndarray:
    """Return `x` as a numpy array without copying when possible; torch tensors are detached and moved to CPU."""
    if isinstance(x, np.ndarray):
        return x
    if _is_torch_tensor(x):
        tensor = x.detach().cpu()
        try:
            return tensor.numpy()
        except TypeError:
            # bfloat16 and other dtypes numpy lacks: widen first (exact for bfloat16/float16).
            return tensor.double().numpy()
    try:
        return np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{name} must be array-like (numpy array, torch tensor or list); got {type(x).__name__}"
        ) from exc


def as_float64(x: Any, name: str, *, allow_inf: bool = True) -> np.ndarray:
    """`x` as float64, rejecting NaN (and infinities unless `allow_inf`) with a message naming `name`."""
    arr = to_numpy(x, name)
    if arr.dtype == np.bool_ or np.issubdtype(arr.dtype, np.number):
        if np.iscomplexobj(arr):
            raise ValueError(f"{name} must be real-valued; got dtype {arr.dtype}")
        out = arr.astype(np.float64, copy=False)
    else:
        raise ValueError(f"{name} must be numeric; got dtype {arr.dtype}")
    if out.size:
        if np.isnan(out).any():
            raise ValueError(f"{name} contains NaN")
        if not allow_inf and np.isinf(out).any():
            raise ValueError(f"{name} contains infinite values")
    return out


def as_int_array(x: Any, name: str) -> np.ndarray:
    """`x` as int64; floats are accepted only when they hold whole numbers (labels read from float files)."""
    arr = to_numpy(x, name)
    if arr.dtype == np.bool_ or np.issubdtype(arr.dtype, np.integer):
        return arr.astype(np.int64, copy=False)
    if np.issubdtype(arr.dtype, np.floating):
        if arr.size and (np.isnan(arr).any() or np.isinf(arr).any()):
            raise ValueError(f"{name} contains NaN or infinite values")
        if arr.size and (arr != np.round(arr)).any():
            raise ValueError(f"{name} must hold integer labels or indices; got non-integer floats")
        return arr.astype(np.int64)
    raise ValueError(f"{name} must hold integer labels or indices; got dtype {arr.dtype}")


def check_reduce(reduce: str) -> None:
    """Raise ValueError unless `reduce` is `"mean"` or `"none"`."""
    if reduce not in ("mean", "none"):
        raise ValueError(f"reduce must be 'mean' or 'none'; got {reduce!r}")


def reduce_values(values: np.ndarray, reduce: str, *, skip_nan: bool = False) -> float | np.ndarray:
    """Mean as a Python float (NaN entries dropped when `skip_nan`; NaN if nothing is left), or `values` as is."""
    if reduce == "none":
        return values
    flat = values.reshape(-1)
    if skip_nan:
        flat = flat[~np.isnan(flat)]
    if flat.size == 0:
        return float("nan")
    return float(flat.mean())
