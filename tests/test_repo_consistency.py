"""The repository's own rules, checked: layout, versions, sibling ranges, changelogs, console scripts."""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

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


def _core_requirements(project: dict) -> dict[str, Requirement]:
    """Each requirement on repro-core, keyed by where it is declared: `dependencies` or `extra <name>`."""
    found = {}
    places = [("dependencies", project.get("dependencies", []))]
    places += [(f"extra {extra}", reqs) for extra, reqs in project.get("optional-dependencies", {}).items()]
    for place, requirements in places:
        for requirement in map(Requirement, requirements):
            if requirement.name == "repro-core":
                assert place not in found, f"two requirements on repro-core in {place}"
                found[place] = requirement
    return found


def test_core_requirements_are_read_from_extras_too() -> None:
    """A stale extra (`pip install mult-probe[plot]` unresolvable after a core release) must not go unseen."""
    project = {
        "dependencies": ["repro-core[torch]>=0.2,<0.3", "numpy"],
        "optional-dependencies": {"plot": ["repro-core[plot]>=0.1.0.dev0,<0.2"], "docs": ["sphinx"]},
    }
    found = _core_requirements(project)
    assert sorted(found) == ["dependencies", "extra plot"]
    assert str(found["extra plot"].specifier) == "<0.2,>=0.1.0.dev0"


@pytest.mark.parametrize("name", PACKAGES)
def test_sibling_range_admits_the_core_version(name: str) -> None:
    """Every range on repro-core, in `dependencies` and in each extra, admits the core version and is capped."""
    core_version = _version(DISTRIBUTIONS["repro-core"], "repro_core")
    core = _core_requirements(_pyproject(DISTRIBUTIONS[name])["project"])
    assert "dependencies" in core, f"{name} must declare one range on repro-core in its dependencies"
    for place, requirement in core.items():
        specifier, where = requirement.specifier, f"{name} {place}"
        assert specifier.contains(core_version, prereleases=True), f"{where}: {specifier} excludes {core_version}"
        assert any(s.operator == "<" for s in specifier), f"{where}: the range on repro-core needs an upper bound"
    assert len({str(r.specifier) for r in core.values()}) == 1, f"{name}: its ranges on repro-core differ: {core}"


@pytest.mark.parametrize("name", PACKAGES)
def test_console_script_and_reproduction_named_after_the_distribution(name: str) -> None:
    project = _pyproject(DISTRIBUTIONS[name])["project"]
    import_name = name.replace("-", "_")
    assert project["scripts"] == {name: f"{import_name}.cli:main"}
    assert project["entry-points"]["repro.reproductions"] == {name: f"{import_name}.reproduction:quick"}


def _load_repo_helpers() -> ModuleType:
    """tools/_repo.py, whose `changelog_problems` is the one changelog rule that tools/release enforces too."""
    spec = importlib.util.spec_from_file_location("_repo_for_consistency", ROOT / "tools" / "_repo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_changelog_is_compiled_from_fragments(name: str) -> None:
    """towncrier.toml and changelog.d/ exist, each fragment is named and written by the rule, no hand edits.

    Unreleased changes are `changelog.d/<issue>.<type>.md` (or `+<name>.<type>.md`) fragments, never lines under a
    `## Unreleased` heading that concurrent changes would all edit; tools/release compiles them.
    """
    folder = DISTRIBUTIONS[name]
    assert (folder / "CHANGELOG.md").read_text().startswith("# Changelog")
    repo = _load_repo_helpers()
    (dist,) = [d for d in repo.discover(ROOT) if d.name == name]
    assert dist.towncrier_config.is_file() and dist.fragments_dir.is_dir()
    assert (dist.fragments_dir / "README.md").is_file(), "the README keeps changelog.d/ in git after a release"
    assert repo.changelog_problems(dist) == []


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_fragments_compile_with_the_readme_preview_command(name: str) -> None:
    """The README's preview (`towncrier build --draft` in the distribution's folder) renders every fragment line.

    towncrier comes from requirements-dev.txt (pinned: tools/release compiles the changelogs with it).
    """
    assert re.search(r"^towncrier==\S+$", (ROOT / "requirements-dev.txt").read_text(), re.M)
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "cd packages/mult-probe && ../../.venv/bin/towncrier build --draft --version next" in readme
    pytest.importorskip("towncrier", reason="towncrier is installed by requirements-dev.txt")
    folder = DISTRIBUTIONS[name]
    before = {p.name: p.read_text() for p in (folder / "changelog.d").iterdir()}
    done = subprocess.run(
        [sys.executable, "-m", "towncrier", "build", "--draft", "--version", "next"],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"## [next](https://github.com/repro/repro/releases/tag/{name}-vnext) - ")
    rendered = done.stdout
    for fragment, text in before.items():
        if fragment != "README.md":
            for line in filter(str.strip, text.splitlines()):
                assert line in rendered, f"{name}: {fragment}: {line!r} is missing from the draft"
    assert {p.name: p.read_text() for p in (folder / "changelog.d").iterdir()} == before


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


# ---------------------------------------------------------------------------- installable from source and sdist

GITHUB = "https://github.com/repro/repro"
_MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)")
_HTML_LINK = re.compile(r"""(?:href|src)=["']([^"']+)""")


@pytest.mark.parametrize("name", PACKAGES)
def test_readme_states_an_install_from_a_checkout(name: str) -> None:
    """`pip install ./packages/<dist>` alone cannot find repro-core: the README names both folders in one call."""
    readme = (DISTRIBUTIONS[name] / "README.md").read_text()
    line = re.search(rf"^pip install (?:-c \S+ )?\./shared \./packages/{re.escape(name)}\s*$", readme, re.M)
    assert line, f"{name}: README has no `pip install ./shared ./packages/{name}` line"
    for folder in line.group(0).split()[2:]:
        if folder != "-c" and folder.startswith("./"):
            assert (ROOT / folder / "pyproject.toml").is_file(), f"{name}: {folder} is not a distribution folder"


def test_core_readme_and_root_readme_state_the_install_from_a_checkout() -> None:
    assert "`pip install ./shared`" in (DISTRIBUTIONS["repro-core"] / "README.md").read_text()
    root = (ROOT / "README.md").read_text()
    assert re.search(r"^pip install -c constraints\.txt \./shared \./packages/[a-z-]+$", root, re.M)


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_readme_links_are_absolute(name: str) -> None:
    """The README is the package index's long description: a relative link there leads nowhere."""
    text = (DISTRIBUTIONS[name] / "README.md").read_text()
    targets = _MARKDOWN_LINK.findall(text) + _HTML_LINK.findall(text)
    relative = [t for t in targets if not t.startswith(("https://", "http://", "mailto:", "#"))]
    assert not relative, f"{name}: relative links in README.md: {relative}"
    for target in targets:
        if target.startswith(f"{GITHUB}/blob/main/") or target.startswith(f"{GITHUB}/tree/main/"):
            path = target.split("/main/", 1)[1].split("#", 1)[0]
            assert (ROOT / path).exists(), f"{name}: README links to {path}, which is not in the repository"


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_readme_has_no_internal_status_lines(name: str) -> None:
    text = (DISTRIBUTIONS[name] / "README.md").read_text()
    internal = re.findall(r"[^\n]*(?:issue #\d+|working step)[^\n]*", text, re.I)
    assert not internal, f"{name}: internal tracker references in README.md: {internal}"


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_development_status_classifier(name: str) -> None:
    classifiers = _pyproject(DISTRIBUTIONS[name])["project"].get("classifiers", [])
    statuses = [c for c in classifiers if c.startswith("Development Status :: ")]
    assert len(statuses) == 1, f"{name}: needs exactly one Development Status classifier, has {statuses}"
    version = _version(DISTRIBUTIONS[name], name.replace("-", "_"))
    if version.major == 0:  # 0.x may break between minor releases: Alpha or Beta, never Production/Stable
        assert statuses[0] in {"Development Status :: 3 - Alpha", "Development Status :: 4 - Beta"}, statuses


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_project_urls_point_at_the_distribution_folder(name: str) -> None:
    folder = DISTRIBUTIONS[name].relative_to(ROOT).as_posix()
    urls = _pyproject(DISTRIBUTIONS[name])["project"]["urls"]
    assert urls["Source"] == f"{GITHUB}/tree/main/{folder}"
    assert urls["Changelog"] == f"{GITHUB}/blob/main/{folder}/CHANGELOG.md"
    for url in urls.values():
        if url.startswith(GITHUB + "/"):
            path = url.split("/main/", 1)[1]
            assert (ROOT / path).exists(), f"{name}: project URL {url} names no path of the repository"


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_sdist_ships_the_tests(name: str) -> None:
    include = _pyproject(DISTRIBUTIONS[name])["tool"]["hatch"]["build"]["targets"]["sdist"]["include"]
    assert "/tests" in include and "/src" in include, f"{name}: the sdist must ship src/ and tests/"


def _fixtures_defined(path: Path) -> set[str]:
    """Names of the functions decorated with `pytest.fixture` (called or not) in one Python file."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for decorator in node.decorator_list:
                target = decorator.func if isinstance(decorator, ast.Call) else decorator
                if ast.unparse(target) in {"pytest.fixture", "fixture"}:
                    names.add(node.name)
    return names


def _arguments_requested(path: Path) -> set[str]:
    """Every parameter name of every function in a test file: the fixtures it may request."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.update(arg.arg for arg in node.args.args + node.args.kwonlyargs)
        elif isinstance(node, ast.Call) and ast.unparse(node.func).endswith("usefixtures"):
            names.update(a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str))
    return names


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_package_tests_need_no_fixture_from_the_root_conftest(name: str) -> None:
    """The root conftest.py is in no sdist: a fixture defined only there breaks the tests run from the sdist."""
    root_only = _fixtures_defined(ROOT / "conftest.py")
    own = set().union(*(_fixtures_defined(p) for p in (DISTRIBUTIONS[name] / "tests").rglob("conftest.py")))
    used = {
        fixture
        for test_file in (DISTRIBUTIONS[name] / "tests").rglob("*.py")
        for fixture in _arguments_requested(test_file) & (root_only - own)
    }
    assert not used, f"{name}: tests request {sorted(used)}, defined only in the root conftest.py (not in the sdist)"


def test_pytest_plugin_serves_package_tests_outside_the_repository(tmp_path: Path) -> None:
    """What an unpacked sdist sees: no root conftest.py, only repro-core's registered pytest plugin."""
    entry_points = _pyproject(DISTRIBUTIONS["repro-core"])["project"]["entry-points"]["pytest11"]
    assert entry_points == {"repro-core": "repro_core.pytest_plugin"}
    sdist = tmp_path / "demo-0.1.0"
    (sdist / "tests").mkdir(parents=True)
    (sdist / "tests" / "test_demo.py").write_text(
        "import pytest\n\n"
        "def test_data(shared_data):\n    assert (shared_data / 'marker.txt').read_text() == 'here'\n\n"
        "@pytest.mark.gpu\ndef test_gpu():\n    import torch\n    assert torch.cuda.is_available()\n"
    )
    data = tmp_path / "data"
    data.mkdir()
    (data / "marker.txt").write_text("here")
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--strict-markers", "-rs", "tests"]
    env = {**os.environ, "REPRO_SHARED_DATA": str(data)}
    done = subprocess.run(command, cwd=sdist, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
    cuda = "needs CUDA: no GPU on this machine" in done.stdout
    assert cuda or "2 passed" in done.stdout

    env["REPRO_SHARED_DATA"] = str(tmp_path / "missing")
    command[-1] = "tests/test_demo.py::test_data"  # no torch import this time
    done = subprocess.run(command, cwd=sdist, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0 and "project data not found at" in done.stdout, done.stdout + done.stderr
