"""Repository-wide pytest set-up: hypothesis profiles and caches that tests may write (never the user's).

What a distribution's own tests need (the `shared_data` fixture, the `gpu` marker and its skip without CUDA) lives
in repro-core's pytest plugin (`repro_core.pytest_plugin`), so that the tests also run from each sdist."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

# No example database unless HYPOTHESIS_DATABASE names a folder: the default `.hypothesis/` replays a past failure
# first on every later run until someone deletes it, so one unlucky draw looked like a permanent failure.
_EXAMPLE_DATABASE = os.environ.get("HYPOTHESIS_DATABASE")
# First calls into torch/JAX compile kernels; on 2 cores that blows hypothesis' 200 ms default deadline.
settings.register_profile(
    "dev",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=DirectoryBasedExampleDatabase(_EXAMPLE_DATABASE) if _EXAMPLE_DATABASE else None,
)
# CI: the same examples every run, so a red CI is reproducible on a developer's machine.
settings.register_profile("ci", parent=settings.get_profile("dev"), derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


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
