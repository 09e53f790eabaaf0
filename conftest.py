"""Repository-wide pytest set-up: hypothesis profiles, the GPU auto-skip, the `shared_data` fixture, and caches
that tests may write (never the user's)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# First calls into torch/JAX compile kernels; on 2 cores that blows hypothesis' 200 ms default deadline.
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
# CI: the same examples every run, so a red CI is reproducible on a developer's machine.
settings.register_profile("ci", parent=settings.get_profile("dev"), derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

#: Read-only project material beside the repository (papers, data). Never written by tests.
SHARED_DATA = Path(os.environ.get("REPRO_SHARED_DATA", Path(__file__).resolve().parent.parent / "shared" / "data"))


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if any("gpu" in item.keywords for item in items) and not _cuda_available():
        skip = pytest.mark.skip(reason="needs CUDA: no GPU on this machine")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(autouse=True, scope="session")
def _isolated_caches(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Point package caches at a session directory (kept across tests and inherited by subprocesses).

    premise-search builds its index of all of Mathlib (about 1.5 min) once per session there; the package
    tests and the `repro reproduce` integration test then share it, and the user's cache is never touched.
    """
    patch = pytest.MonkeyPatch()
    patch.setenv("PREMISE_SEARCH_INDEX_DIR", str(tmp_path_factory.mktemp("premise-search-index") / "mathlib"))
    yield
    patch.undo()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data` beside the repository (or $REPRO_SHARED_DATA); skips when it is not there."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"project data not found at {SHARED_DATA} (set REPRO_SHARED_DATA to its location)")
    return SHARED_DATA
