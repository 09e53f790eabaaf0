"""The root conftest's hypothesis profiles keep no example database unless asked (issue #14): the default
`.hypothesis/` database replayed one failing draw on every later run until someone deleted the folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif("HYPOTHESIS_DATABASE" in os.environ, reason="HYPOTHESIS_DATABASE asks for a database")
def test_profiles_keep_no_example_database() -> None:
    assert settings.get_profile("dev").database is None
    assert settings.get_profile("ci").database is None
    assert settings().database is None  # the profile loaded for this run


def test_hypothesis_database_variable_opts_in(tmp_path: Path) -> None:
    code = (
        "import conftest; from hypothesis import settings; "
        "print(type(settings.get_profile('dev').database).__name__, settings.get_profile('dev').database.path)"
    )
    env = {**os.environ, "HYPOTHESIS_DATABASE": str(tmp_path / "examples")}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["DirectoryBasedExampleDatabase", str(tmp_path / "examples")]
