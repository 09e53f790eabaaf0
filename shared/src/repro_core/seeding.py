"""One seed for every random number generator a reproduction touches.

`seed_everything` seeds Python's `random`, numpy's legacy global state, torch (CPU and CUDA) and returns a jax
`PRNGKey` when jax is installed. `derive_seed` splits one experiment seed into independent, named streams (data
order, initialisation, dropout, ...) through numpy's `SeedSequence`, so adding a stream never shifts the others.
torch and jax are imported only when present and asked for: this module imports with numpy alone.

Same seed, same results, bit for bit, on CPU: `seed_everything(seed, deterministic=True)` also switches torch to
deterministic algorithms.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import random
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from repro_core.optional import require

if TYPE_CHECKING:
    import torch

__all__ = [
    "MAX_SEED",
    "derive_seed",
    "fork_rng",
    "jax_key",
    "numpy_rng",
    "seed_everything",
    "set_deterministic",
    "torch_generator",
]

#: Seeds are unsigned 32-bit integers: the range every library (numpy legacy, torch, jax) accepts.
MAX_SEED = 2**32 - 1


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if not 0 <= int(seed) <= MAX_SEED:
        raise ValueError(f"seed must be in [0, 2**32 - 1], got {seed}")
    return int(seed)


def _name_entropy(name: str | int) -> int:
    """A stable integer for a stream name (Python's `hash` is salted per process, so it cannot be used)."""
    if isinstance(name, int | np.integer) and not isinstance(name, bool):
        if name < 0:
            raise ValueError(f"stream names that are integers must be >= 0, got {name}")
        return int(name)
    if not isinstance(name, str):
        raise TypeError(f"stream names must be str or int, got {type(name).__name__}")
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")


def derive_seed(seed: int, *names: str | int) -> int:
    """An independent 32-bit seed for the stream `names` of experiment `seed`.

    `derive_seed(0, "init")` and `derive_seed(0, "data")` are statistically independent, stable across processes,
    platforms and numpy versions (SeedSequence's mixing is part of numpy's stability promise), and adding a new
    name never changes the seeds of existing ones. `derive_seed(seed)` with no names returns `seed` unchanged.
    """
    seed = _check_seed(seed)
    if not names:
        return seed
    sequence = np.random.SeedSequence(entropy=seed, spawn_key=tuple(_name_entropy(n) for n in names))
    return int(sequence.generate_state(1, dtype=np.uint32)[0])


def numpy_rng(seed: int, *names: str | int) -> np.random.Generator:
    """A numpy `Generator` for stream `names` of experiment `seed` (PCG64)."""
    return np.random.default_rng(derive_seed(seed, *names))


def torch_generator(seed: int, *names: str | int, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch `Generator` on `device` seeded for stream `names` of experiment `seed`."""
    torch = require("torch", "repro_core.seeding.torch_generator")
    generator = torch.Generator(device=device)
    generator.manual_seed(derive_seed(seed, *names))
    return generator


def jax_key(seed: int, *names: str | int) -> Any:
    """A jax `PRNGKey` for stream `names` of experiment `seed`."""
    jax = require("jax", "repro_core.seeding.jax_key")
    return jax.random.PRNGKey(derive_seed(seed, *names))


def set_deterministic(enabled: bool = True, *, warn_only: bool = False) -> None:
    """Make torch pick deterministic algorithms (or allow the fast ones again).

    Sets `torch.use_deterministic_algorithms`, disables cuDNN benchmarking and sets `CUBLAS_WORKSPACE_CONFIG`
    (required by cuBLAS for deterministic matmuls on CUDA >= 10.2). A no-op when torch is not installed.
    """
    torch = _import_if_installed("torch")
    if torch is None:
        return
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
    torch.backends.cudnn.deterministic = enabled
    torch.backends.cudnn.benchmark = not enabled


def seed_everything(seed: int, *, deterministic: bool = True) -> Any:
    """Seed `random`, numpy's global state and torch (all devices); return a jax `PRNGKey`, or None without jax.

    jax has no global state, hence the returned key. torch and jax are touched only if installed.
    With `deterministic=True` torch is also switched to deterministic algorithms (`set_deterministic`).
    Prefer explicit generators (`numpy_rng`, `torch_generator`) in library code; this is for scripts and tests.
    """
    seed = _check_seed(seed)
    # Import first, seed second: importing a framework can itself draw from the global numpy/random state.
    torch = _import_if_installed("torch")
    jax = _import_if_installed("jax")
    random.seed(seed)
    np.random.seed(seed)
    if torch is not None:
        torch.manual_seed(seed)  # also seeds every CUDA device
        if deterministic:
            set_deterministic(True)
    return None if jax is None else jax.random.PRNGKey(seed)


def _import_if_installed(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


@contextmanager
def fork_rng(*, torch_devices: list[int] | None = None) -> Iterator[None]:
    """Restore the global RNG states of `random`, numpy and torch (CPU and CUDA) on exit.

    Lets a function draw random numbers (say, a quick evaluation with dropout) without shifting the training run's
    stream. torch is saved only if it is already imported; `torch_devices` limits the CUDA devices saved.
    """
    py_state = random.getstate()
    np_state = np.random.get_state()
    torch = sys.modules.get("torch")
    torch_state = cuda_states = None
    devices: list[int] = []
    if torch is not None:
        torch_state = torch.random.get_rng_state()
        if torch.cuda.is_available():
            devices = list(range(torch.cuda.device_count())) if torch_devices is None else torch_devices
            cuda_states = [torch.cuda.get_rng_state(d) for d in devices]
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        if torch is not None and torch_state is not None:
            torch.random.set_rng_state(torch_state)
            if cuda_states is not None:
                for device, state in zip(devices, cuda_states, strict=True):
                    torch.cuda.set_rng_state(state, device)
