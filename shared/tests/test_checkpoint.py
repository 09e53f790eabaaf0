"""repro_core.checkpoint: atomic saves survive interruption; loads are weights-only; resume picks the latest."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from repro_core.checkpoint import (
    CheckpointManager,
    atomic_write_bytes,
    atomic_write_text,
    load_checkpoint,
    resume_or_start,
    save_checkpoint,
)
from repro_core.errors import InputError


def _state(value: float) -> dict:
    return {"step": 3, "model": {"w": torch.full((4, 4), value)}, "config": {"lr": 0.1, "name": "tiny"}}


def test_round_trip(tmp_path: Path) -> None:
    path = save_checkpoint(_state(1.0), tmp_path / "sub" / "ckpt.pt")
    loaded = load_checkpoint(path)
    assert loaded["step"] == 3 and loaded["config"] == {"lr": 0.1, "name": "tiny"}
    assert torch.equal(loaded["model"]["w"], torch.ones(4, 4))


def test_exception_during_save_keeps_the_old_file_and_no_temp(tmp_path: Path) -> None:
    path = save_checkpoint(_state(1.0), tmp_path / "ckpt.pt")

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom while writing")

    with pytest.raises(RuntimeError, match="boom"):
        save_checkpoint({"model": {"w": torch.zeros(3)}, "bad": Unpicklable()}, path)
    assert torch.equal(load_checkpoint(path)["model"]["w"], torch.ones(4, 4))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt"]


KILLED_MID_WRITE = textwrap.dedent(
    """
    import os, signal, sys, torch
    from repro_core import checkpoint
    path = sys.argv[1]
    real_save = torch.save
    def save_then_die(obj, handle, *args, **kwargs):
        real_save(obj, handle, *args, **kwargs)
        handle.flush()
        handle.truncate(handle.tell() // 2)   # half of the bytes are on disk ...
        os.kill(os.getpid(), signal.SIGKILL)  # ... when the process is killed
    torch.save = save_then_die
    checkpoint.save_checkpoint({"model": {"w": torch.zeros(256, 256)}, "step": 99}, path)
    """
)


def test_killed_process_never_leaves_a_truncated_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.pt"
    save_checkpoint(_state(1.0), path)
    before = path.read_bytes()
    proc = subprocess.run([sys.executable, "-c", KILLED_MID_WRITE, str(path)], capture_output=True, check=False)
    assert proc.returncode == -signal.SIGKILL
    assert path.read_bytes() == before  # the old, complete checkpoint
    assert load_checkpoint(path)["step"] == 3
    leftovers = [p for p in tmp_path.iterdir() if p.name != "ckpt.pt"]
    assert leftovers and all(p.name.startswith(".ckpt.pt.") and p.suffix == ".tmp" for p in leftovers)
    manager = CheckpointManager(tmp_path, prefix="ckpt")
    assert manager.steps() == []  # temp files are never mistaken for checkpoints


def test_killed_first_save_leaves_no_target(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.pt"
    subprocess.run([sys.executable, "-c", KILLED_MID_WRITE, str(path)], capture_output=True, check=False)
    assert not path.exists()


def test_load_refuses_arbitrary_pickles(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pt"
    with path.open("wb") as handle:
        torch.save({"model": Exploit()}, handle, pickle_module=pickle)
    with pytest.raises(InputError, match=r"evil\.pt: cannot load checkpoint"):
        load_checkpoint(path)
    assert not marker.exists()


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"missing\.pt: checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match=r"garbage\.pt"):
        load_checkpoint(garbage)
    scalar = tmp_path / "scalar.pt"
    torch.save(torch.zeros(2), scalar)
    with pytest.raises(InputError, match="expected a dict"):
        load_checkpoint(scalar)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")  # torch's error for it has an empty message: this was an IndexError
    with pytest.raises(InputError, match=r"empty\.pt: empty file"):
        load_checkpoint(empty)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes((tmp_path / "scalar.pt").read_bytes()[:40])
    with pytest.raises(InputError, match=r"truncated\.pt: cannot load checkpoint"):
        load_checkpoint(truncated)


def test_atomic_text_and_bytes(tmp_path: Path) -> None:
    atomic_write_text(tmp_path / "a.json", '{"x": 1}\n')
    atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01")
    assert (tmp_path / "a.json").read_text() == '{"x": 1}\n'
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"


def test_manager_keeps_newest_and_resumes(tmp_path: Path) -> None:
    manager = CheckpointManager(tmp_path / "run", keep=2)
    assert manager.load_latest() is None
    state, resumed = resume_or_start(manager, lambda: {"step": -1})
    assert (state, resumed) == ({"step": -1}, False)
    for step in (1, 5, 12):
        manager.save({"step": step, "w": torch.tensor([float(step)])}, step)
    assert manager.steps() == [5, 12]
    state, resumed = resume_or_start(manager, lambda: {"step": -1})
    assert resumed and state["step"] == 12


def test_interrupted_training_resumes_to_the_same_result(tmp_path: Path) -> None:
    """Train 10 steps straight vs 6 steps, 'crash', resume from the checkpoint, 4 more: identical weights."""

    def train(manager: CheckpointManager, stop_at: int | None) -> torch.Tensor:
        torch.manual_seed(0)
        model = torch.nn.Linear(4, 1)
        optimiser = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        generator = torch.Generator().manual_seed(1)
        state = manager.load_latest()
        start = 0
        if state is not None:
            model.load_state_dict(state["model"])
            optimiser.load_state_dict(state["optimizer"])
            generator.set_state(state["rng"])
            start = state["step"] + 1
        for step in range(start, 10):
            batch = torch.randn(8, 4, generator=generator)
            optimiser.zero_grad()
            model(batch).pow(2).mean().backward()
            optimiser.step()
            manager.save(
                {
                    "step": step,
                    "model": model.state_dict(),
                    "optimizer": optimiser.state_dict(),
                    "rng": generator.get_state(),
                },
                step,
            )
            if stop_at is not None and step == stop_at:
                break
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    straight = train(CheckpointManager(tmp_path / "a"), None)
    resumable = CheckpointManager(tmp_path / "b")
    train(resumable, stop_at=5)
    assert torch.equal(train(resumable, None), straight)


def test_manager_validates_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="keep"):
        CheckpointManager(tmp_path, keep=0)
    with pytest.raises(ValueError, match="prefix"):
        CheckpointManager(tmp_path, prefix="a/b")
