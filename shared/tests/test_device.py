"""repro_core.device: explicit device choice, dtype policy, memory-based chunk sizes."""

from __future__ import annotations

import pytest
import torch

from repro_core.device import DEVICE_ENV, auto_chunk_size, default_dtype, free_memory_bytes, pick_device
from repro_core.errors import ConfigError


def test_auto_pick_on_this_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DEVICE_ENV, raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert pick_device().type in {expected, "mps"}


def test_environment_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DEVICE_ENV, "cpu")
    assert pick_device() == torch.device("cpu")
    assert pick_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised when CUDA is missing")
def test_unavailable_device_is_an_error_not_a_silent_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DEVICE_ENV, "cuda")
    with pytest.raises(ConfigError, match="CUDA is not available"):
        pick_device()
    with pytest.raises(ConfigError, match="not a device name"):
        pick_device("gpu-please")


def test_dtype_policy() -> None:
    assert default_dtype("cpu") == torch.float32
    assert default_dtype("cpu", precision="fast") == torch.float32
    assert default_dtype("cpu", precision="exact") == torch.float64
    with pytest.raises(ConfigError, match="precision"):
        default_dtype("cpu", precision="half-ish")


def test_chunk_size_from_budget() -> None:
    assert auto_chunk_size(1_000, budget_bytes=64_000) == 64
    assert auto_chunk_size(1_000, budget_bytes=10) == 1
    assert auto_chunk_size(1_000, budget_bytes=10**9, maximum=500) == 500
    assert free_memory_bytes("cpu") > 0
    assert auto_chunk_size(4_000) >= 1
    with pytest.raises(ConfigError, match="bytes_per_item"):
        auto_chunk_size(0)
    with pytest.raises(ConfigError, match="memory_fraction"):
        auto_chunk_size(8, memory_fraction=0.0)


@pytest.mark.gpu
def test_cuda_free_memory_is_reported() -> None:
    assert free_memory_bytes("cuda") > 0
    assert pick_device("cuda").type == "cuda"
