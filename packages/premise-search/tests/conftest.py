"""Keep the tests' index cache out of the user's home: every run gets its own cache directory."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True, scope="session")
def _isolated_index_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    patch = pytest.MonkeyPatch()
    patch.setenv("PREMISE_SEARCH_INDEX_DIR", str(tmp_path_factory.mktemp("premise-search-index")))
    yield
    patch.undo()
