"""Device choice, dtype policy and memory-aware chunk sizes.

The choice is made once, explicitly: `pick_device()` returns cuda, then mps, then cpu, unless `REPRO_DEVICE`
(or the `prefer` argument) says otherwise, so a user can pin a run to the CPU with `REPRO_DEVICE=cpu` and no
code change. Requires torch (`repro-core[torch]`); imported lazily.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from repro_core.errors import ConfigError
from repro_core.optional import require

if TYPE_CHECKING:
    import torch

__all__ = ["DEVICE_ENV", "auto_chunk_size", "default_dtype", "free_memory_bytes", "pick_device"]

#: Environment variable that overrides the automatic device choice ("cpu", "cuda", "cuda:1", "mps").
DEVICE_ENV = "REPRO_DEVICE"


def pick_device(prefer: str | None = None) -> torch.device:
    """The device to run on: `prefer`, else `$REPRO_DEVICE`, else cuda > mps > cpu.

    An explicit request for a device that is not available raises `ConfigError` instead of silently falling back:
    a run that asked for a GPU and got a CPU would report misleading timings.
    """
    torch = require("torch", "repro_core.device.pick_device")
    request = prefer or os.environ.get(DEVICE_ENV) or "auto"
    if request == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(request)
    except RuntimeError as exc:
        raise ConfigError(f"{DEVICE_ENV}/device: {request!r} is not a device name ({exc})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{DEVICE_ENV}/device: {request!r} requested but CUDA is not available")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(f"{DEVICE_ENV}/device: {request!r} requested but only {torch.cuda.device_count()} GPUs")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"{DEVICE_ENV}/device: {request!r} requested but MPS is not available")
    return device


def default_dtype(device: torch.device | str, *, precision: str = "default") -> torch.dtype:
    """The floating dtype for `device` under a precision policy.

    - "default": float32 everywhere (deterministic and portable; the reproduction default).
    - "fast": bfloat16 on CUDA devices that support it, float32 elsewhere (training throughput).
    - "exact": float64 (analytic kernels, golden-value checks; not on mps, which has no float64).
    """
    torch = require("torch", "repro_core.device.default_dtype")
    device = torch.device(device)
    if precision == "default":
        return torch.float32
    if precision == "fast":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if precision == "exact":
        if device.type == "mps":
            raise ConfigError("precision: 'exact' (float64) is not supported on mps")
        return torch.float64
    raise ConfigError(f"precision: expected 'default', 'fast' or 'exact', got {precision!r}")


def free_memory_bytes(device: torch.device | str) -> int:
    """Free memory on `device` in bytes: CUDA's free memory, or available system RAM for the CPU."""
    torch = require("torch", "repro_core.device.free_memory_bytes")
    device = torch.device(device)
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    return _available_ram_bytes()


def _available_ram_bytes() -> int:
    """MemAvailable from /proc/meminfo on Linux; otherwise total physical memory from sysconf."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def auto_chunk_size(
    bytes_per_item: int,
    *,
    device: torch.device | str = "cpu",
    budget_bytes: int | None = None,
    memory_fraction: float = 0.25,
    minimum: int = 1,
    maximum: int | None = None,
) -> int:
    """How many items of `bytes_per_item` to process at once.

    The budget is `budget_bytes` if given, else `memory_fraction` of the device's free memory. The result is
    clamped to [minimum, maximum]. Streaming code (e.g. top-k over a gallery) calls this with the bytes one
    gallery row costs across all queries.
    """
    if bytes_per_item <= 0:
        raise ConfigError(f"bytes_per_item: must be positive, got {bytes_per_item}")
    if not 0 < memory_fraction <= 1:
        raise ConfigError(f"memory_fraction: must be in (0, 1], got {memory_fraction}")
    budget = budget_bytes if budget_bytes is not None else int(free_memory_bytes(device) * memory_fraction)
    size = max(minimum, budget // bytes_per_item)
    return min(size, maximum) if maximum is not None else size
