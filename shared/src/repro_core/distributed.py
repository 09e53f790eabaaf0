"""Multi-process runs started by `torchrun`: initialisation, rank-aware seeding, rank-0 logging and writing.

`torchrun --nproc_per_node=N script.py` sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; `init_from_env`
reads them and starts the default process group with gloo on CPU and nccl on CUDA. Without those variables it
returns a single-process context, so the same script runs under plain `python` too.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from repro_core.errors import ConfigError
from repro_core.optional import require
from repro_core.seeding import derive_seed

__all__ = [
    "DistContext",
    "all_reduce_gradients",
    "barrier",
    "data_parallel_group",
    "init_from_env",
    "is_main_process",
    "rank_seed",
    "rank_zero_only_logging",
    "shutdown",
    "write_on_main",
]

logger = logging.getLogger(__name__)

_TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in the run. `backend` is None for a single-process run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        """True on rank 0, the process that logs and writes files."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.backend is not None


def _env_int(name: str) -> int:
    value = os.environ[name]
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"environment variable {name}: expected an integer, got {value!r}") from None


def init_from_env(*, backend: str | None = None, timeout_s: float = 300.0) -> DistContext:
    """Initialise the default process group from torchrun's environment variables.

    Returns a single-process `DistContext` when WORLD_SIZE is unset. `backend` defaults to nccl when CUDA is
    available and gloo otherwise; on CUDA each process is bound to `cuda:LOCAL_RANK`. Calling it again in an already
    initialised process returns the current context.
    """
    if "WORLD_SIZE" not in os.environ:
        return DistContext()
    missing = [name for name in _TORCHRUN_VARS if name not in os.environ]
    if missing:
        raise ConfigError(f"distributed run: environment variables {', '.join(missing)} are not set (use torchrun)")
    torch = require("torch", "repro_core.distributed.init_from_env")
    dist = torch.distributed
    rank, world_size, local_rank = _env_int("RANK"), _env_int("WORLD_SIZE"), _env_int("LOCAL_RANK")
    if not 0 <= rank < world_size:
        raise ConfigError(f"distributed run: RANK={rank} is outside WORLD_SIZE={world_size}")
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if not dist.is_initialized():
        if backend == "nccl":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend, timeout=timedelta(seconds=timeout_s))
    context = DistContext(rank=rank, world_size=world_size, local_rank=local_rank, backend=dist.get_backend())
    logger.debug("initialised %s process group: rank %d of %d", context.backend, rank, world_size)
    return context


def shutdown(*, wait: bool = True) -> None:
    """Destroy the default process group if one is running, after every rank has got here (`wait`).

    Why wait: a rank that tears its group down while another is still working closes the rendezvous store under
    it (rank 0 hosts it), and the slower rank then aborts ("terminate called without an active exception")
    instead of exiting cleanly; this happened under load on a 2-core machine. Pass `wait=False` on an error path,
    where the other ranks may never arrive.
    """
    torch = require("torch", "repro_core.distributed.shutdown")
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        if wait:
            torch.distributed.barrier()
        torch.distributed.destroy_process_group()


def barrier() -> None:
    """Wait for every rank (a no-op in a single-process run, and without torch)."""
    try:
        import torch.distributed as dist
    except ImportError:
        return
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def data_parallel_group(distributed: bool | None = None) -> tuple[int, int]:
    """`(rank, world_size)` a trainer should shard its batches over; `(0, 1)` for a single process.

    `distributed=None` follows the process group (data-parallel whenever one is running), `False` ignores it, and
    `True` requires one (a `ConfigError` says to start with torchrun) so a misconfigured launch fails loudly
    instead of training the whole batch on every rank.
    """
    try:
        import torch.distributed as dist
    except ImportError:
        running = False
    else:
        running = dist.is_available() and dist.is_initialized()
    if distributed and not running:
        raise ConfigError("distributed=True needs a process group (start with torchrun; init_from_env)")
    if distributed is False or not running:
        return 0, 1
    return int(dist.get_rank()), int(dist.get_world_size())


def is_main_process() -> bool:
    """True on rank 0 or in a single-process run; reads the process group, else $RANK."""
    try:
        import torch.distributed as dist
    except ImportError:
        return int(os.environ.get("RANK", "0")) == 0
    if dist.is_available() and dist.is_initialized():
        return int(dist.get_rank()) == 0
    return int(os.environ.get("RANK", "0")) == 0


def all_reduce_gradients(params: Iterable[Any]) -> None:
    """Sum the gradients of `params` over every rank, in place, with one all-reduce of a flat buffer.

    Data-parallel trainers call it after `backward()` (each rank's loss being its share of the global loss), so every
    rank steps with the same gradient; one flat collective is much cheaper than one per parameter. A parameter
    without a gradient counts as zero and receives the sum (another rank may have one). Needs a process group.
    """
    torch = require("torch", "repro_core.distributed.all_reduce_gradients")
    params = list(params)
    if not params:
        return
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params])
    torch.distributed.all_reduce(flat)
    offset = 0
    for p in params:
        size = p.numel()
        p.grad = flat[offset : offset + size].view_as(p).clone()
        offset += size


def rank_seed(seed: int, rank: int, *names: str | int) -> int:
    """A seed for `rank`'s stream `names`: different per rank (data sharding, dropout), reproducible per run.

    Model initialisation should use the same seed on every rank (`derive_seed(seed, "init")`), data and noise
    streams a per-rank one (`rank_seed(seed, rank, "data")`).
    """
    if rank < 0:
        raise ValueError(f"rank must be >= 0, got {rank}")
    return derive_seed(seed, *names, "rank", rank)


class _RankZeroFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return is_main_process()


@contextmanager
def rank_zero_only_logging(logger_name: str = "") -> Iterator[None]:
    """Silence the named logger (root by default) on every rank but 0 while the block runs."""
    target = logging.getLogger(logger_name)
    log_filter = _RankZeroFilter()
    handlers = target.handlers or logging.getLogger().handlers
    for handler in handlers:
        handler.addFilter(log_filter)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(log_filter)


def write_on_main(write: Any, *args: Any, **kwargs: Any) -> Any:
    """Call `write(*args, **kwargs)` on rank 0 only, then wait for every rank; returns the result on rank 0."""
    result = write(*args, **kwargs) if is_main_process() else None
    barrier()
    return result
