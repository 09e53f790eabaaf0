"""Every package's console script, run as a user would: --help, --version, and parseable --json output."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGES = ["ntk-permute", "mult-probe", "truth-crowd", "premise-search", "bt2-compat"]


def _script(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    assert found, f"console script {name} is not installed in {Path(sys.executable).parent}"
    return found


@pytest.mark.integration
@pytest.mark.parametrize("name", PACKAGES)
def test_console_script(name: str) -> None:
    """The installed script answers; `reproduce --json` itself is checked in each package's tests (in-process,
    with a small budget) and end to end, once for all packages, by the umbrella test below."""
    script = _script(name)
    help_text = subprocess.run([script, "--help"], capture_output=True, text=True, check=True).stdout
    assert f"usage: {name}" in help_text and "reproduce" in help_text
    version = subprocess.run([script, "--version"], capture_output=True, text=True, check=True).stdout
    assert version.startswith(f"{name} 0.") and "repro-core" in version
    bad = subprocess.run([script, "reproduce", "--seed", "not-a-number"], capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


@pytest.mark.integration
def test_every_package_registers_a_reproduction() -> None:
    from repro_core.umbrella import discover

    assert sorted(discover()) == sorted(PACKAGES)


@pytest.mark.integration
def test_umbrella_report_lists_every_package(tmp_path: Path) -> None:
    proc = subprocess.run(
        [_script("repro"), "reproduce", "--out", str(tmp_path / "report"), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(o["package"] for o in json.loads(proc.stdout)["outcomes"]) == sorted(PACKAGES)
    index = (tmp_path / "report" / "index.md").read_text()
    assert all(f"| {name} |" in index for name in PACKAGES)


@pytest.mark.integration
def test_seeding_is_shared_across_packages() -> None:
    """Every package sees the same repro_core seeding (one installed copy, same derived streams)."""
    code = (
        "import importlib, repro_core.seeding as s\n"
        "mods = [importlib.import_module(m) for m in "
        "('ntk_permute', 'mult_probe', 'truth_crowd', 'premise_search', 'bt2_compat')]\n"
        "print(s.derive_seed(0, 'init'), len({m.__name__ for m in mods}))"
    )
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    second = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert first == second and first.split()[1] == "5"
