"""The repository's own rules, checked: layout, versions, sibling ranges, changelogs, console scripts."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
DISTRIBUTIONS = {
    "repro-core": ROOT / "shared",
    "ntk-permute": ROOT / "packages" / "ntk-permute",
    "mult-probe": ROOT / "packages" / "mult-probe",
    "truth-crowd": ROOT / "packages" / "truth-crowd",
    "premise-search": ROOT / "packages" / "premise-search",
    "bt2-compat": ROOT / "packages" / "bt2-compat",
}
PACKAGES = [name for name in DISTRIBUTIONS if name != "repro-core"]


def _pyproject(folder: Path) -> dict:
    return tomllib.loads((folder / "pyproject.toml").read_text())


def _version(folder: Path, import_name: str) -> Version:
    text = (folder / "src" / import_name / "__about__.py").read_text()
    match = re.search(r'^__version__ = "([^"]+)"$', text, re.M)
    assert match, f"{folder}: no __version__ line"
    return Version(match.group(1))


def test_package_folders_are_exactly_the_five() -> None:
    assert sorted(p.name for p in (ROOT / "packages").iterdir() if p.is_dir()) == sorted(PACKAGES)


def test_root_is_not_a_distribution() -> None:
    assert "project" not in tomllib.loads((ROOT / "pyproject.toml").read_text())


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_distribution_files(name: str) -> None:
    folder = DISTRIBUTIONS[name]
    import_name = name.replace("-", "_")
    for required in (
        "README.md",
        "LICENSE",
        "CHANGELOG.md",
        "pyproject.toml",
        f"src/{import_name}/__about__.py",
        f"src/{import_name}/__init__.py",
        f"src/{import_name}/py.typed",
    ):
        assert (folder / required).is_file(), f"{name}: {required} is missing"
    assert not list(folder.glob("tests/**/__init__.py")), f"{name}: tests folders must not be packages"
    if name != "repro-core":
        assert (folder / "benchmarks").is_dir()


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_metadata_shape(name: str) -> None:
    folder = DISTRIBUTIONS[name]
    import_name = name.replace("-", "_")
    meta = _pyproject(folder)
    project = meta["project"]
    assert project["name"] == name
    assert project["dynamic"] == ["version"] and "version" not in project
    assert project["requires-python"] == ">=3.11"
    assert meta["build-system"]["build-backend"] == "hatchling.build"
    assert meta["tool"]["hatch"]["version"]["path"] == f"src/{import_name}/__about__.py"
    assert "pytest" not in meta.get("tool", {}), "pytest is configured at the root only"
    for requirement in map(Requirement, project.get("dependencies", [])):
        if requirement.name == "torch":
            assert not any(s.operator in {"==", "<", "<=", "~="} for s in requirement.specifier), (
                "published metadata must not pin or cap torch (the pin lives in constraints.txt)"
            )


@pytest.mark.parametrize("name", PACKAGES)
def test_sibling_range_admits_the_core_version(name: str) -> None:
    core_version = _version(DISTRIBUTIONS["repro-core"], "repro_core")
    requirements = [Requirement(r) for r in _pyproject(DISTRIBUTIONS[name])["project"]["dependencies"]]
    core = [r for r in requirements if r.name == "repro-core"]
    assert len(core) == 1, f"{name} must declare one range on repro-core"
    specifier = core[0].specifier
    assert specifier.contains(core_version, prereleases=True), f"{name}: {specifier} excludes {core_version}"
    assert any(s.operator == "<" for s in specifier), f"{name}: the range on repro-core needs an upper bound"


@pytest.mark.parametrize("name", PACKAGES)
def test_console_script_and_reproduction_named_after_the_distribution(name: str) -> None:
    project = _pyproject(DISTRIBUTIONS[name])["project"]
    import_name = name.replace("-", "_")
    assert project["scripts"] == {name: f"{import_name}.cli:main"}
    assert project["entry-points"]["repro.reproductions"] == {name: f"{import_name}.reproduction:quick"}


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_changelog_has_an_unreleased_section(name: str) -> None:
    text = (DISTRIBUTIONS[name] / "CHANGELOG.md").read_text()
    assert text.startswith("# Changelog")
    assert "\n## Unreleased\n" in text


def test_constraints_pin_torch_and_every_install_uses_them() -> None:
    constraints = (ROOT / "constraints.txt").read_text()
    assert re.search(r"^torch==2\.13\.0$", constraints, re.M)
    assert (ROOT / "requirements-dev.txt").read_text().startswith("#") and "-c constraints.txt" in (
        ROOT / "requirements-dev.txt"
    ).read_text()
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["envs"]
    for name, env in root.items():
        assert env["installer"] == "pip" and env["python-sources"] == ["external"] and env["skip-install"], name
        if "workspace" in env:  # environments that install torch
            assert env["env-vars"]["PIP_CONSTRAINT"] == "{root}/constraints.txt", name


def test_readme_starts_with_the_two_commands() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    block = lines[lines.index("```") + 1 : lines.index("```", lines.index("```") + 1)]
    assert [line.split("#")[0].strip() for line in block] == [
        "python tools/bootstrap.py reproduce",
        "python tools/bootstrap.py test",
    ]
    assert "tools/bootstrap.py test" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.parametrize("name", PACKAGES)
def test_every_cli_runs_the_bad_input_harness(name: str) -> None:
    """Issue #13's guard: each package's tests feed every subcommand generated bad input (see repro_core.testing)."""
    tests = DISTRIBUTIONS[name] / "tests"
    callers = [p.name for p in tests.glob("test_*.py") if "check_cli_rejects_bad_input(" in p.read_text()]
    assert callers, f"{name}: no test calls repro_core.testing.check_cli_rejects_bad_input"
