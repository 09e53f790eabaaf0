"""End-to-end tests of `tools/release` and `tools/api-check` on throw-away git repositories, plus their helpers.

Each test builds a minimal monorepo in `tmp_path` (a `shared/` repro-core and one package, `demo-pkg`, each with the
repository's towncrier configuration, template and one changelog fragment), commits it, and runs the real scripts
with `REPRO_ROOT` pointing there. Git identity and configuration come from environment
variables, so the developer's global git configuration (signing, hooks) cannot interfere.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

__all__: list[str] = []

TOOLS = Path(__file__).resolve().parent.parent / "tools"
DEV_VENV = Path(os.environ.get("REPRO_VENV") or TOOLS.parent / ".venv")
DATE = "2024-05-01"

CORE_PYPROJECT = """\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "repro-core"
dynamic = ["version"]
dependencies = ["numpy>=1.24"]

[project.scripts]
repro = "repro_core.umbrella:main"

[tool.hatch.version]
path = "src/repro_core/__about__.py"
"""

PKG_PYPROJECT = """\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "demo-pkg"
dynamic = ["version"]
dependencies = [
  "repro-core[torch]>=0.1.0.dev0,<0.2",
]

[project.scripts]
demo-pkg = "demo_pkg.cli:main"

[tool.hatch.version]
path = "src/demo_pkg/__about__.py"
"""

PKG_CODE = '''\
"""A demo package whose public API the api-check tests break."""

from demo_pkg.__about__ import __version__

__all__ = ["__version__", "scale", "shift"]


def scale(x: float, factor: float = 2.0) -> float:
    return x * factor


def shift(x: float) -> float:
    return x + 1.0
'''

CHANGELOG = """\
# Changelog

All notable changes to {name} are documented here (Keep a Changelog).

Unreleased changes are fragments in changelog.d/.

<!-- towncrier release notes start -->

## [0.0.1](https://github.com/repro/repro/releases/tag/{name}-v0.0.1) - 2024-01-01

### Added

- First cut.
"""
#: The released heading tools/release writes (towncrier's title_format in every towncrier.toml).
HEADING = "## [{version}](https://github.com/repro/repro/releases/tag/{name}-v{version}) - {date}"
MARKER = "<!-- towncrier release notes start -->"


def _towncrier_config(name: str) -> str:
    """The repository's own towncrier.toml (repro-core's), renamed for `name`: the tests use the real format."""
    return (TOOLS.parent / "shared" / "towncrier.toml").read_text(encoding="utf-8").replace("repro-core", name)


FAKE_CHECK = """\
#!/usr/bin/env python3
\"\"\"Stands in for the repository's {name} in release tests: says it ran, exits {code}.\"\"\"
import sys
print("fake {name} ran:", *sys.argv[1:])
sys.exit({code})
"""


def _load_module(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


repo_helpers = _load_module("_repo_under_test", TOOLS / "_repo.py")


def _env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        REPRO_ROOT=str(root),
        REPRO_VENV=str(DEV_VENV),
        GIT_AUTHOR_NAME="Release Test",
        GIT_AUTHOR_EMAIL="release-test@example.invalid",
        GIT_COMMITTER_NAME="Release Test",
        GIT_COMMITTER_EMAIL="release-test@example.invalid",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CONFIG_NOSYSTEM="1",
    )
    return env


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=root, env=_env(root), capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _tool(root: Path, name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TOOLS / name), *args],
        cwd=root,
        env=_env(root),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A committed two-distribution monorepo: repro-core in shared/ and demo-pkg in packages/, both 0.1.0.dev0.

    Each has one fragment: shared/changelog.d/3.added.md and packages/demo-pkg/changelog.d/7.added.md.
    """
    root = tmp_path / "repo"
    files = {
        "shared/pyproject.toml": CORE_PYPROJECT,
        "shared/CHANGELOG.md": CHANGELOG.format(name="repro-core"),
        "shared/towncrier.toml": _towncrier_config("repro-core"),
        "shared/changelog.d/README.md": "Fragments.\n",
        "shared/changelog.d/3.added.md": "- Core news.\n",
        "shared/src/repro_core/__about__.py": '__version__ = "0.1.0.dev0"\n',
        "shared/src/repro_core/__init__.py": "from repro_core.__about__ import __version__\n",
        "packages/demo-pkg/pyproject.toml": PKG_PYPROJECT,
        "packages/demo-pkg/CHANGELOG.md": CHANGELOG.format(name="demo-pkg"),
        "packages/demo-pkg/towncrier.toml": _towncrier_config("demo-pkg").replace('"../tools/', '"../../tools/'),
        "packages/demo-pkg/changelog.d/README.md": "Fragments.\n",
        "packages/demo-pkg/changelog.d/7.added.md": "- Something new.\n",
        "packages/demo-pkg/src/demo_pkg/__about__.py": '"""Version."""\n\n__version__ = "0.1.0.dev0"\n',
        "packages/demo-pkg/src/demo_pkg/__init__.py": PKG_CODE,
        "tools/api-check": FAKE_CHECK.format(name="api-check", code=0),
        "tools/isolation-check": FAKE_CHECK.format(name="isolation-check", code=0),
        "tools/changelog-template.md": (TOOLS / "changelog-template.md").read_text(encoding="utf-8"),
        ".gitignore": "__pycache__/\n",
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "initial")
    return root


def _tag_core_release(root: Path, version: str = "0.1.0") -> None:
    """Mark a repro-core release, so that packages requiring it may be released (release repro-core first)."""
    _git(root, "tag", "-a", f"repro-core-v{version}", "-m", f"repro-core {version}")


def _snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): p.read_text(encoding="utf-8")
        for p in root.rglob("*")
        if p.is_file() and ".git" not in p.relative_to(root).parts
    }


# ----------------------------------------------------------------------------------------------------- release


def test_release_bumps_dates_changelog_commits_and_tags(repo: Path) -> None:
    _tag_core_release(repo)
    done = _tool(repo, "release", "demo-pkg", "minor", "--date", DATE)
    assert done.returncode == 0, done.stderr

    about = _git(repo, "show", "demo-pkg-v0.1.0:packages/demo-pkg/src/demo_pkg/__about__.py") + "\n"
    assert about == '"""Version."""\n\n__version__ = "0.1.0"\n'  # only the version line changed
    log = (repo / "packages/demo-pkg/CHANGELOG.md").read_text()
    heading = HEADING.format(version="0.1.0", name="demo-pkg", date=DATE)
    assert f"{MARKER}\n\n{heading}\n\n### Added\n\n- Something new. (#7)\n\n## [0.0.1]" in log
    assert not (repo / "packages/demo-pkg/changelog.d/7.added.md").exists()
    assert (repo / "packages/demo-pkg/changelog.d/README.md").is_file()  # keeps the folder in git
    assert (repo / "shared/changelog.d/3.added.md").is_file()  # another distribution's fragments stay

    assert _git(repo, "log", "-1", "--format=%s", "HEAD~1") == "release demo-pkg v0.1.0"
    assert _git(repo, "cat-file", "-t", "demo-pkg-v0.1.0") == "tag"  # annotated
    assert _git(repo, "rev-parse", "demo-pkg-v0.1.0^{commit}") == _git(repo, "rev-parse", "HEAD~1")
    assert _git(repo, "status", "--porcelain") == ""
    changed = _git(repo, "show", "--name-only", "--format=", "HEAD~1").splitlines()
    assert sorted(changed) == [
        "packages/demo-pkg/CHANGELOG.md",
        "packages/demo-pkg/changelog.d/7.added.md",  # deleted in the release commit
        "packages/demo-pkg/src/demo_pkg/__about__.py",
    ]

    # main moves on to the next dev version in a follow-up commit, so later builds never carry 0.1.0.
    assert _git(repo, "log", "-1", "--format=%s") == "start demo-pkg 0.1.1.dev0"
    about = (repo / "packages/demo-pkg/src/demo_pkg/__about__.py").read_text()
    assert about == '"""Version."""\n\n__version__ = "0.1.1.dev0"\n'
    assert _git(repo, "show", "--name-only", "--format=", "HEAD") == "packages/demo-pkg/src/demo_pkg/__about__.py"
    # The checks ran before the tag (their output goes to stderr, the plan to stdout).
    assert "fake api-check ran: demo-pkg" in done.stderr
    assert "fake isolation-check ran: --only demo-pkg" in done.stderr

    # No fragment is left, so an immediate second release is refused.
    again = _tool(repo, "release", "demo-pkg", "patch")
    assert again.returncode == 1
    assert "packages/demo-pkg/changelog.d/ holds no changelog fragment: nothing to release" in again.stderr


def test_release_refuses_without_fragments(repo: Path) -> None:
    _git(repo, "rm", "-q", "packages/demo-pkg/changelog.d/7.added.md")
    _git(repo, "commit", "-q", "-m", "no fragment")
    _tag_core_release(repo)
    before = _snapshot(repo)

    done = _tool(repo, "release", "demo-pkg", "patch")

    assert done.returncode == 1
    assert len(done.stderr.strip().splitlines()) == 1
    assert "holds no changelog fragment: nothing to release" in done.stderr
    assert "+release.changed.md with '- No user-facing changes.'" in done.stderr  # how to release anyway
    assert _snapshot(repo) == before
    assert _git(repo, "tag", "--list", "demo-pkg-v*") == ""


def _add_fragments(root: Path, fragments: dict[str, str]) -> None:
    for name, text in fragments.items():
        (root / "packages/demo-pkg/changelog.d" / name).write_text(text, encoding="utf-8")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "fragments")


def test_release_compiles_every_fragment_with_its_issue_number(repo: Path) -> None:
    _add_fragments(
        repo,
        {
            "12.fixed.md": "- Fix one thing\n  over two lines.\n- Fix another.\n",
            "13.fixed.md": "- Fix a crash.\n",
            "15.fixed.md": "- Fix a crash.\n",  # the same text as #13: one bullet naming both issues
            "9.changed.md": "- CLI conventions:\n  - stdout for results\n  - stderr for logs\n",
            "+tidy-docs.changed.md": "- Tidier docs.\n",
            "14.deprecated.1.md": "- Old name.\n",
        },
    )
    _tag_core_release(repo)

    done = _tool(repo, "release", "demo-pkg", "minor", "--date", DATE)

    assert done.returncode == 0, done.stderr
    log = (repo / "packages/demo-pkg/CHANGELOG.md").read_text()
    heading = HEADING.format(version="0.1.0", name="demo-pkg", date=DATE)
    section = log.split(f"{MARKER}\n\n", 1)[1].split("\n## [0.0.1]", 1)[0]
    assert section == (
        f"{heading}\n\n"
        "### Added\n\n- Something new. (#7)\n\n"
        "### Changed\n\n- CLI conventions: (#9)\n  - stdout for results\n  - stderr for logs\n- Tidier docs.\n\n"
        "### Deprecated\n\n- Old name. (#14)\n\n"
        "### Fixed\n\n- Fix one thing\n  over two lines. (#12)\n- Fix another. (#12)\n- Fix a crash. (#13, #15)\n"
    )
    assert sorted(p.name for p in (repo / "packages/demo-pkg/changelog.d").iterdir()) == ["README.md"]
    released = _git(repo, "show", "--name-status", "--format=", "demo-pkg-v0.1.0").splitlines()
    assert sum(line.startswith("D\tpackages/demo-pkg/changelog.d/") for line in released) == 7
    assert _git(repo, "status", "--porcelain") == ""


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        ("fix-typo.md", "- Typo.\n", "fix-typo.md: not a fragment name"),
        ("14.feature.md", "- New.\n", "14.feature.md: not a fragment name"),  # not a Keep a Changelog type
        ("14.fixed.txt", "- Fix.\n", "14.fixed.txt: not a fragment name"),
        ("+.fixed.md", "- Fix.\n", "+.fixed.md: not a fragment name"),
        ("14.fixed.md", "Fixed the thing.\n", "14.fixed.md: the content must be a markdown bullet list"),
        ("14.fixed.md", "\n", "14.fixed.md: empty fragment"),
    ],
)
def test_bad_fragment_is_caught_by_the_consistency_rule_and_refused(
    repo: Path, name: str, text: str, problem: str
) -> None:
    """`changelog_problems` is what tests/test_repo_consistency.py asserts empty for every distribution."""
    dist = repo_helpers.discover(repo)[1]
    assert repo_helpers.changelog_problems(dist) == []
    _add_fragments(repo, {name: text})
    _tag_core_release(repo)
    before = _snapshot(repo)

    problems = repo_helpers.changelog_problems(dist)

    assert len(problems) == 1 and problem in problems[0]
    done = _tool(repo, "release", "demo-pkg", "minor", "--dry-run", "--skip-isolation-check")
    assert done.returncode == 1
    assert problem in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert _snapshot(repo) == before


def test_hand_edited_unreleased_section_is_caught_and_refused(repo: Path) -> None:
    log = repo / "packages/demo-pkg/CHANGELOG.md"
    log.write_text(log.read_text().replace(MARKER, f"{MARKER}\n\n## Unreleased\n\n### Fixed\n\n- By hand."))
    _git(repo, "commit", "-q", "-am", "hand edit")
    _tag_core_release(repo)

    problems = repo_helpers.changelog_problems(repo_helpers.discover(repo)[1])

    assert len(problems) == 1 and "has a '## Unreleased' heading: move its entries into changelog.d/" in problems[0]
    done = _tool(repo, "release", "demo-pkg", "minor", "--dry-run", "--skip-isolation-check")
    assert done.returncode == 1 and "'## Unreleased'" in done.stderr


def test_failed_release_commit_restores_changelog_and_fragments(repo: Path) -> None:
    hooks = repo / ".hooks"
    hooks.mkdir()
    (hooks / "pre-commit").write_text("#!/bin/sh\necho refused by hook >&2\nexit 1\n")
    (hooks / "pre-commit").chmod(0o755)
    (repo / ".gitignore").write_text("__pycache__/\n.hooks/\n")
    _git(repo, "commit", "-q", "-am", "ignore hooks")
    _git(repo, "config", "core.hooksPath", str(hooks))
    _tag_core_release(repo)
    before, head = _snapshot(repo), _git(repo, "rev-parse", "HEAD")

    done = _tool(repo, "release", "demo-pkg", "minor", "--date", DATE)

    assert done.returncode == 1
    assert "release aborted, files restored" in done.stderr
    assert _snapshot(repo) == before
    assert _git(repo, "status", "--porcelain") == ""  # towncrier's `git rm` of the fragments undone too
    assert _git(repo, "rev-parse", "HEAD") == head and _git(repo, "tag", "--list", "demo-pkg-v*") == ""


def test_release_refuses_dirty_tree(repo: Path) -> None:
    (repo / "packages/demo-pkg/src/demo_pkg/extra.py").write_text("X = 1\n")
    done = _tool(repo, "release", "demo-pkg", "patch")
    assert done.returncode == 1
    assert "working tree is dirty" in done.stderr
    assert _git(repo, "tag", "--list") == ""


def test_dry_run_changes_nothing(repo: Path) -> None:
    _tag_core_release(repo)
    before = _snapshot(repo)
    head = _git(repo, "rev-parse", "HEAD")

    done = _tool(repo, "release", "demo-pkg", "0.3.0", "--dry-run", "--date", DATE)

    assert done.returncode == 0, done.stderr
    assert "0.1.0.dev0 -> 0.3.0 (1 changelog fragment(s))" in done.stdout
    assert "demo-pkg-v0.3.0" in done.stdout
    # The compiled draft is shown; the fragment stays (the snapshot includes changelog.d/).
    heading = HEADING.format(version="0.3.0", name="demo-pkg", date=DATE)
    assert f"    {heading}\n\n    ### Added\n\n    - Something new. (#7)\n" in done.stdout
    assert (repo / "packages/demo-pkg/changelog.d/7.added.md").is_file()
    assert _snapshot(repo) == before
    assert _git(repo, "rev-parse", "HEAD") == head
    assert _git(repo, "tag", "--list") == "repro-core-v0.1.0"
    assert _git(repo, "status", "--porcelain") == ""
    assert "fake isolation-check ran" in done.stderr  # a dry run runs every check...

    done = _tool(repo, "release", "demo-pkg", "0.3.0", "--dry-run", "--skip-isolation-check")
    assert done.returncode == 0, done.stderr
    assert "fake api-check ran" in done.stderr and "fake isolation-check" not in done.stderr  # ...unless told


def test_core_release_reports_dependents_out_of_range(repo: Path) -> None:
    done = _tool(repo, "release", "repro-core", "0.2.0", "--date", DATE)
    assert done.returncode == 0, done.stderr
    assert "NEEDS UPDATE: demo-pkg" in done.stdout
    assert "'repro-core[torch]>=0.2,<0.3'" in done.stdout
    # Not edited without --update-dependents.
    assert "repro-core[torch]>=0.1.0.dev0,<0.2" in (repo / "packages/demo-pkg/pyproject.toml").read_text()
    assert _git(repo, "tag", "--list") == "repro-core-v0.2.0"


def test_core_release_updates_dependents_on_request(repo: Path) -> None:
    done = _tool(repo, "release", "repro-core", "0.2.0", "--update-dependents", "--date", DATE)
    assert done.returncode == 0, done.stderr
    assert '"repro-core[torch]>=0.2,<0.3"' in (repo / "packages/demo-pkg/pyproject.toml").read_text()
    fragment = "packages/demo-pkg/changelog.d/+repro-core-0.2.0.changed.md"
    assert (repo / fragment).read_text() == "- Require `repro-core[torch]>=0.2,<0.3` (repro-core 0.2.0 released).\n"
    assert (repo / "packages/demo-pkg/changelog.d/7.added.md").is_file()  # the dependent's own fragments stay
    assert (repo / "packages/demo-pkg/CHANGELOG.md").read_text() == CHANGELOG.format(name="demo-pkg")
    changed = set(_git(repo, "show", "--name-only", "--format=", "repro-core-v0.2.0").splitlines())
    assert {"packages/demo-pkg/pyproject.toml", fragment, "shared/changelog.d/3.added.md"} <= changed
    assert _git(repo, "status", "--porcelain") == ""


def test_core_release_within_range_needs_nothing(repo: Path) -> None:
    done = _tool(repo, "release", "repro-core", "patch", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "0.1.0.dev0 -> 0.1.0" in done.stdout
    assert "NEEDS UPDATE" not in done.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["demo-pkg", "huge"],
        ["no-such-dist", "patch"],
        ["demo-pkg", "0.0.1"],
        ["demo-pkg"],
        ["demo-pkg", "1.0", "--date", "May"],
        ["demo-pkg", "patch", "--skip-isolation-check"],  # a real release runs every check
    ],
)
def test_release_bad_usage_exits_2_with_one_line(repo: Path, args: list[str]) -> None:
    done = _tool(repo, "release", *args)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1
    assert done.stderr.startswith("release: error:")


def test_release_refuses_existing_tag(repo: Path) -> None:
    _git(repo, "tag", "-a", "demo-pkg-v0.1.0", "-m", "pre-existing")
    done = _tool(repo, "release", "demo-pkg", "patch")
    assert done.returncode == 1
    assert "tag demo-pkg-v0.1.0 already exists" in done.stderr


def test_core_release_updates_the_ranges_in_extras_too(repo: Path) -> None:
    """An extra left at the old range makes `pip install demo-pkg[plot]` unresolvable after the core release."""
    pyproject = repo / "packages/demo-pkg/pyproject.toml"
    extra = '\n[project.optional-dependencies]\nplot = ["repro-core[plot]>=0.1.0.dev0,<0.2", "matplotlib>=3.7"]\n'
    pyproject.write_text(pyproject.read_text().replace("\n[project.scripts]", extra + "\n[project.scripts]"))
    _git(repo, "commit", "-q", "-am", "plot extra")

    done = _tool(repo, "release", "repro-core", "0.2.0", "--update-dependents", "--date", DATE)

    assert done.returncode == 0, done.stderr
    text = pyproject.read_text()
    assert '"repro-core[torch]>=0.2,<0.3"' in text
    assert 'plot = ["repro-core[plot]>=0.2,<0.3", "matplotlib>=3.7"]' in text
    assert "<0.2" not in text
    # With the new core tag, the package may be released: every one of its ranges admits repro-core 0.2.0.
    fragment = repo / "packages/demo-pkg/changelog.d/+repro-core-0.2.0.changed.md"
    assert "- Require `repro-core[plot]>=0.2,<0.3` (repro-core 0.2.0 released).\n" in fragment.read_text()
    assert _tool(repo, "release", "demo-pkg", "minor", "--dry-run", "--skip-isolation-check").returncode == 0


def test_package_release_refused_until_repro_core_is_released(repo: Path) -> None:
    before = _snapshot(repo)

    done = _tool(repo, "release", "demo-pkg", "minor", "--dry-run", "--skip-isolation-check")

    assert done.returncode == 1
    assert len(done.stderr.strip().splitlines()) == 1
    assert "'repro-core[torch]>=0.1.0.dev0,<0.2', which no released repro-core satisfies (tags: none)" in done.stderr
    assert "release repro-core first" in done.stderr
    assert _snapshot(repo) == before

    # A core release outside the range does not count either; one inside it does.
    _tag_core_release(repo, "0.2.0")
    assert "(tags: 0.2.0)" in _tool(repo, "release", "demo-pkg", "minor").stderr
    _tag_core_release(repo, "0.1.0")
    assert _tool(repo, "release", "demo-pkg", "minor", "--date", DATE).returncode == 0
    assert _git(repo, "tag", "--list", "demo-pkg-v*") == "demo-pkg-v0.1.0"


def test_package_release_checks_the_ranges_in_extras(repo: Path) -> None:
    pyproject = repo / "packages/demo-pkg/pyproject.toml"
    extra = '\n[project.optional-dependencies]\nplot = ["repro-core[plot]>=0.2,<0.3"]\n'
    pyproject.write_text(pyproject.read_text().replace("\n[project.scripts]", extra + "\n[project.scripts]"))
    _git(repo, "commit", "-q", "-am", "plot extra on an unreleased core")
    _tag_core_release(repo)

    done = _tool(repo, "release", "demo-pkg", "minor", "--dry-run", "--skip-isolation-check")

    assert done.returncode == 1
    assert "'repro-core[plot]>=0.2,<0.3', which no released repro-core satisfies (tags: 0.1.0)" in done.stderr


@pytest.mark.parametrize("failing", ["api-check", "isolation-check"])
def test_release_refused_when_a_check_fails_before_tagging(repo: Path, failing: str) -> None:
    (repo / "tools" / failing).write_text(FAKE_CHECK.format(name=failing, code=1))
    _git(repo, "commit", "-q", "-am", f"{failing} fails")
    _tag_core_release(repo)
    before, head = _snapshot(repo), _git(repo, "rev-parse", "HEAD")

    done = _tool(repo, "release", "demo-pkg", "minor", "--date", DATE)

    assert done.returncode == 1
    assert f"tools/{failing}" in done.stderr and "failed (exit 1): nothing released" in done.stderr
    assert f"fake {failing} ran" in done.stderr
    assert _snapshot(repo) == before
    assert _git(repo, "rev-parse", "HEAD") == head
    assert _git(repo, "tag", "--list", "demo-pkg-v*") == ""


# --------------------------------------------------------------------------------------------------- api-check

needs_griffe = pytest.mark.skipif(
    not (DEV_VENV / "bin" / "griffe").is_file(), reason=f"griffe not installed in {DEV_VENV}"
)


def test_api_check_without_tag_passes_with_notice(repo: Path) -> None:
    done = _tool(repo, "api-check", "demo-pkg")
    assert done.returncode == 0, done.stderr
    assert "no tag yet for demo-pkg: nothing to compare" in done.stdout


@needs_griffe
def test_api_check_flags_removed_parameter_and_function(repo: Path) -> None:
    _git(repo, "tag", "-a", "demo-pkg-v0.1.0", "-m", "demo-pkg 0.1.0")
    init = repo / "packages/demo-pkg/src/demo_pkg/__init__.py"
    init.write_text(init.read_text().replace(", factor: float = 2.0", "").replace("x * factor", "x * 2.0"))

    done = _tool(repo, "api-check", "demo-pkg")

    assert done.returncode == 1
    output = done.stdout + done.stderr
    assert "scale(factor): Parameter was removed" in output
    assert "demo-pkg vs demo-pkg-v0.1.0" in done.stdout

    init.write_text(PKG_CODE.replace('"shift"]', "]").split("\n\ndef shift")[0] + "\n")
    done = _tool(repo, "api-check", "demo-pkg")
    assert done.returncode == 1
    assert "shift: Public object was removed" in done.stdout + done.stderr


@needs_griffe
def test_api_check_uses_highest_version_tag_and_passes_when_compatible(repo: Path) -> None:
    _git(repo, "tag", "-a", "demo-pkg-v0.9.0", "-m", "old")
    _git(repo, "tag", "-a", "repro-core-v5.0.0", "-m", "another distribution's tag")
    init = repo / "packages/demo-pkg/src/demo_pkg/__init__.py"
    init.write_text(init.read_text() + "\n\ndef added(x: float) -> float:\n    return x\n")
    _git(repo, "commit", "-q", "-am", "add a function")
    _git(repo, "tag", "-a", "demo-pkg-v0.10.0", "-m", "new")

    done = _tool(repo, "api-check", "--all")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "demo-pkg vs demo-pkg-v0.10.0: no breaking change" in done.stdout
    assert "repro-core vs repro-core-v5.0.0: no breaking change" in done.stdout


def test_api_check_bad_usage(repo: Path) -> None:
    for args in ([], ["--all", "demo-pkg"], ["nope"]):
        done = _tool(repo, "api-check", *args)
        assert done.returncode == 2, args
        assert len(done.stderr.strip().splitlines()) == 1


# ------------------------------------------------------------------------------------------------------ helpers


@pytest.mark.parametrize(
    ("current", "bump", "expected"),
    [
        ("0.1.0.dev0", "patch", "0.1.0"),
        ("0.1.0.dev0", "minor", "0.1.0"),
        ("0.1.0.dev0", "major", "1.0.0"),
        ("0.1.1.dev0", "minor", "0.2.0"),
        ("1.0.0rc1", "major", "1.0.0"),
        ("0.3.2", "patch", "0.3.3"),
        ("0.3.2", "minor", "0.4.0"),
        ("0.3.2", "major", "1.0.0"),
        ("0.3.2", "0.5.0b1", "0.5.0b1"),
    ],
)
def test_bump_version(current: str, bump: str, expected: str) -> None:
    assert repo_helpers.bump_version(current, bump) == expected


def test_bump_version_rejects_downgrade_and_garbage() -> None:
    with pytest.raises(ValueError, match="must be higher"):
        repo_helpers.bump_version("0.3.0", "0.3.0")
    with pytest.raises(ValueError, match="not a version"):
        repo_helpers.bump_version("0.3.0", "next")


@pytest.mark.parametrize(
    ("version", "spec", "inside"),
    [
        ("0.1.0", ">=0.1.0.dev0,<0.2", True),
        ("0.1.0.dev0", ">=0.1.0.dev0,<0.2", True),
        ("0.2.0", ">=0.1.0.dev0,<0.2", False),
        ("0.2.0.dev0", "<0.2", False),
        ("1.9.3", "~=1.2", True),
        ("2.0.0", "~=1.2", False),
        ("0.3.7", "==0.3.*", True),
        ("0.4", "!=0.4.0", False),
    ],
)
def test_satisfies(version: str, spec: str, inside: bool) -> None:
    assert repo_helpers.satisfies(version, spec) is inside


def test_version_order_and_ranges() -> None:
    order = ["0.9.0", "0.10.0.dev0", "0.10.0a1", "0.10.0rc2", "0.10.0", "0.10.0.post1", "1.0"]
    parsed = [repo_helpers.Version.parse(v) for v in order]
    assert all(a < b for a, b in itertools.pairwise(parsed))
    assert repo_helpers.format_range("0.3.0") == ">=0.3,<0.4"
    assert repo_helpers.format_range("1.2.0") == "~=1.2"


def test_coinstall_check_asks_for_every_distribution_with_every_extra() -> None:
    import importlib.machinery
    import tomllib

    loader = importlib.machinery.SourceFileLoader("coinstall_check", str(TOOLS / "coinstall-check"))
    spec = importlib.util.spec_from_loader("coinstall_check", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    expected = set()
    root = TOOLS.parent
    for pyproject in [root / "shared" / "pyproject.toml", *(root / "packages").glob("*/pyproject.toml")]:
        extras = sorted(tomllib.loads(pyproject.read_text())["project"].get("optional-dependencies", {}))
        folder = pyproject.parent.relative_to(TOOLS.parent).as_posix()
        expected.add(f"./{folder}[{','.join(extras)}]" if extras else f"./{folder}")
    assert set(module.requirement_specs()) == expected and len(expected) == 6
