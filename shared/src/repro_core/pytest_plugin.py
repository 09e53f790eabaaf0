"""The pytest set-up every repro distribution's tests rely on, shipped with repro-core so that a package's tests
run from its own sdist, not only from the repository (whose root conftest.py is not part of any distribution).

Registered in the `pytest11` entry-point group, so pytest loads it wherever repro-core is installed. It only adds
things that cost nothing unless asked for:

- the `shared_data` fixture: the read-only project data (`$REPRO_SHARED_DATA`, else `shared/data` beside the
  repository, i.e. next to pytest's rootdir); it skips the requesting test with a reason when the data is absent;
- the `gpu` and `slow` markers, and the skip of `gpu` tests on a machine without CUDA;
- the hypothesis profiles `repro-dev` (no deadline: first calls compile kernels) and `repro-ci` (also
  derandomised), registered but never loaded: choose one with `--hypothesis-profile repro-dev`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

__all__ = ["CUDA_SKIP_REASON", "shared_data", "shared_data_folder"]

CUDA_SKIP_REASON = "needs CUDA: no GPU on this machine"


def shared_data_folder(rootdir: Path) -> Path:
    """Where the project data is expected: `$REPRO_SHARED_DATA`, else `<rootdir>/../shared/data`."""
    configured = os.environ.get("REPRO_SHARED_DATA")
    return Path(configured) if configured else rootdir.resolve().parent / "shared" / "data"


def _register_hypothesis_profiles() -> None:
    try:
        from hypothesis import HealthCheck, settings
    except ImportError:  # hypothesis is a test dependency of the packages, not of repro-core
        return
    # No example database: a stored failure would be replayed first on every later run (see the root README).
    settings.register_profile("repro-dev", deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
    settings.register_profile("repro-ci", parent=settings.get_profile("repro-dev"), derandomize=True)


# At import time: hypothesis' own plugin loads `--hypothesis-profile` in pytest_configure, after this import.
_register_hypothesis_profiles()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gpu: needs CUDA (skipped without it)")
    config.addinivalue_line("markers", "slow: long-running")


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip `gpu` tests without CUDA (torch is imported only when such a test was collected)."""
    gpu_items = [item for item in items if item.get_closest_marker("gpu") is not None]
    if gpu_items and not _cuda_available():
        for item in gpu_items:
            item.add_marker(pytest.mark.skip(reason=CUDA_SKIP_REASON))


@pytest.fixture(scope="session")
def shared_data(pytestconfig: pytest.Config) -> Path:
    """The read-only project data (papers, data sets); never written by tests. Skips when it is not there."""
    folder = shared_data_folder(pytestconfig.rootpath)
    if not folder.is_dir():
        pytest.skip(f"project data not found at {folder} (set REPRO_SHARED_DATA to its location)")
    return folder
