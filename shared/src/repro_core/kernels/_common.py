"""Helpers shared by the kernel front-ends: input conversion and the torch/Triton backend choice.

Nothing here imports torch or triton at module import time; callers pass in the torch module they obtained from
`repro_core.optional.require`, so a missing extra is reported once, by the public function that needs it.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from repro_core.optional import has_module, require

if TYPE_CHECKING:
    import torch

__all__ = ["BACKENDS", "as_float_tensor", "interpreter_enabled", "resolve_backend"]

#: Accepted values of every kernel's `backend` argument.
BACKENDS = ("auto", "torch", "triton")


def as_float_tensor(torch: ModuleType, value: Any, name: str, *, keep_strides: bool = False) -> torch.Tensor:
    """`value` as a floating torch tensor; numpy arrays are wrapped without a copy where possible.

    Integer and boolean inputs become float32 (the usual embedding dtype) rather than raising, because numpy
    callers often hold integer feature arrays. With `keep_strides`, a strided numpy array (a column slice, a
    Fortran-order array) is wrapped as a strided tensor instead of copied, for callers whose operations take
    strides (copying a large gallery on every call costs more than the search); negative or misaligned strides,
    which torch cannot wrap, are still copied, and so are read-only strided arrays (as before, so that torch's
    warning about wrapping a read-only array appears no more often than it did).
    """
    if isinstance(value, np.ndarray):
        wrappable = keep_strides and value.flags.writeable
        wrappable = wrappable and all(s >= 0 and s % value.itemsize == 0 for s in value.strides)
        tensor = torch.from_numpy(value if wrappable else np.ascontiguousarray(value))
    elif isinstance(value, torch.Tensor):
        tensor = value
    else:
        raise ValueError(f"{name}: expected a torch.Tensor or numpy.ndarray, got {type(value).__name__}")
    if tensor.is_complex():
        raise ValueError(f"{name}: complex inputs are not supported (dtype {tensor.dtype})")
    if not tensor.is_floating_point():
        tensor = tensor.to(torch.float32)
    return tensor


def interpreter_enabled() -> bool:
    """True when Triton's interpreter is switched on, which lets Triton kernels run on CPU tensors.

    Triton reads `TRITON_INTERPRET` when it is first imported, so the variable must be set before that.
    """
    return os.environ.get("TRITON_INTERPRET", "0").strip().lower() in ("1", "true", "yes", "on")


def resolve_backend(backend: str, device: torch.device, *, triton_ok: bool = True) -> str:
    """Turn the user's `backend` into "torch" or "triton" for tensors on `device`.

    "auto" picks Triton only on CUDA, with triton installed, and when `triton_ok` (the caller's dtype check)
    holds. A forced "triton" on CPU tensors is allowed only under `TRITON_INTERPRET=1` (slow; meant for tests).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")
    if backend == "torch":
        return "torch"
    if backend == "auto":
        if device.type == "cuda" and triton_ok and has_module("triton"):
            return "triton"
        return "torch"
    require("triton", "backend='triton'")
    if device.type != "cuda" and not interpreter_enabled():
        raise ValueError(
            f"backend: 'triton' needs CUDA tensors (got device {device}); to run it on the CPU set "
            "TRITON_INTERPRET=1 in the environment before triton is imported"
        )
    return "triton"
