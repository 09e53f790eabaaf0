"""Atomic checkpoints, safe loading and resume.

A checkpoint is written to a temporary file in the target's directory, flushed and fsync'ed, then renamed over the
target (`os.replace`, atomic on POSIX and Windows), and the directory is fsync'ed: a crash or a kill at any moment
leaves either the old complete file or the new complete file, never a truncated one.
Loading always uses `torch.load(..., weights_only=True)`, which refuses to unpickle arbitrary objects, so a
checkpoint from an untrusted source cannot run code. Store plain containers of tensors, numbers and strings
(nanoGPT-style dicts: `model`, `optimizer`, `step`, `config`, `rng`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from repro_core.errors import InputError
from repro_core.optional import require

__all__ = [
    "CheckpointManager",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "load_checkpoint",
    "resume_or_start",
    "save_checkpoint",
]

logger = logging.getLogger(__name__)


def _fsync_directory(directory: Path) -> None:
    """Persist the rename itself (POSIX); directories cannot be opened this way on Windows."""
    if os.name == "nt":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _create_temporary(target: Path) -> tuple[int, Path]:
    """Create `.<name>.<random>.tmp` beside `target` with mode 0666 minus the umask, as `open()` would.

    (`tempfile.mkstemp` always uses 0600, which would make every report and model file private to its writer.)
    """
    for _ in range(100):
        tmp = target.parent / f".{target.name}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file beside {target}")


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside `path`; on clean exit it is fsync'ed and renamed to `path`.

    If the body raises (or the process dies), `path` is untouched and the temporary file is removed (or, after a
    hard kill, left as `.<name>.*.tmp`, which no loader ever reads).
    """
    if mode not in {"wb", "w"}:
        raise ValueError(f"mode must be 'wb' or 'w', got {mode!r}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temporary(target)
    try:
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        _fsync_directory(target.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_write(path, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    with atomic_write(path, "w") as handle:
        handle.write(text)


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Save `state` (a dict of tensors, numbers, strings, lists and dicts) to `path` atomically; return the path."""
    torch = require("torch", "repro_core.checkpoint.save_checkpoint")
    if not isinstance(state, dict):
        raise TypeError(f"state must be a dict, got {type(state).__name__}")
    with atomic_write(path, "wb") as handle:
        torch.save(state, handle)
    logger.debug("saved checkpoint %s", path)
    return Path(path)


def load_checkpoint(path: str | os.PathLike[str], *, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint with `weights_only=True` (no arbitrary unpickling); bad files raise `InputError`."""
    torch = require("torch", "repro_core.checkpoint.load_checkpoint")
    path = Path(path)
    if not path.is_file():
        raise InputError("checkpoint not found", path=path)
    if path.stat().st_size == 0:
        raise InputError("empty file, not a checkpoint", path=path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt or unsafe files
        first_line = next(iter(str(exc).splitlines()), "").strip()
        reason = f"{type(exc).__name__}: {first_line}" if first_line else type(exc).__name__
        raise InputError(f"cannot load checkpoint ({reason})", path=path) from exc
    if not isinstance(state, dict):
        raise InputError(f"checkpoint holds a {type(state).__name__}, expected a dict", path=path)
    return state


class CheckpointManager:
    """Numbered checkpoints `<prefix>-<step>.pt` in one directory, keeping the newest `keep`.

    Resume pattern::

        manager = CheckpointManager(run_dir, keep=3)
        state = manager.load_latest()          # None on a fresh run
        start = 0 if state is None else state["step"] + 1
        for step in range(start, n_steps):
            ...
            if step % every == 0:
                manager.save({"step": step, "model": model.state_dict(), ...}, step)
    """

    def __init__(self, directory: str | os.PathLike[str], *, prefix: str = "ckpt", keep: int | None = 3) -> None:
        if keep is not None and keep < 1:
            raise ValueError(f"keep must be >= 1 or None, got {keep}")
        if not re.fullmatch(r"[A-Za-z0-9_.]+", prefix):
            raise ValueError(f"prefix must be letters, digits, '_' or '.', got {prefix!r}")
        self.directory = Path(directory)
        self.prefix = prefix
        self.keep = keep
        self._pattern = re.compile(rf"{re.escape(prefix)}-(\d+)\.pt")

    def path_for(self, step: int) -> Path:
        return self.directory / f"{self.prefix}-{step:09d}.pt"

    def steps(self) -> list[int]:
        """Steps of the complete checkpoints on disk, oldest first (temporary files are never listed)."""
        if not self.directory.is_dir():
            return []
        found = (self._pattern.fullmatch(p.name) for p in self.directory.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def save(self, state: dict[str, Any], step: int) -> Path:
        path = save_checkpoint(state, self.path_for(step))
        self._prune()
        return path

    def latest(self) -> Path | None:
        steps = self.steps()
        return self.path_for(steps[-1]) if steps else None

    def load_latest(self, *, map_location: Any = "cpu") -> dict[str, Any] | None:
        path = self.latest()
        return None if path is None else load_checkpoint(path, map_location=map_location)

    def _prune(self) -> None:
        if self.keep is None:
            return
        for step in self.steps()[: -self.keep]:
            self.path_for(step).unlink(missing_ok=True)


def resume_or_start(
    manager: CheckpointManager, init: Callable[[], dict[str, Any]], *, map_location: Any = "cpu"
) -> tuple[dict[str, Any], bool]:
    """The latest checkpoint's state and True, or `init()` and False on a fresh run."""
    state = manager.load_latest(map_location=map_location)
    return (state, True) if state is not None else (init(), False)
