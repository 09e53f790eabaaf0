"""Shared logic for the repository tools (`tools/isolation-check`, `tools/release`, `tools/api-check`).

Standard library only: the tools run with any Python 3.11+, before or without the development environment.

The repository root is this file's grandparent, or `$REPRO_ROOT` when set (the tests point it at a throw-away git
repository). The development environment is `$REPRO_VENV`, else `<root>/.venv` (the same rule as
`tools/bootstrap.py`).

Distributions are discovered from the layout, not listed by hand: `shared/` is `repro-core` and every
`packages/<dist>/pyproject.toml` is one more. Each distribution's name, console script and version file come from its
`pyproject.toml`; the import name is the distribution name with `-` replaced by `_`.

Versions are handled by a small PEP 440 subset (`X.Y.Z`, optional `aN`/`bN`/`rcN`, `.postN`, `.devN`), enough for
ordering tags, bumping and checking the sibling ranges on `repro-core`; it needs no `packaging`.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

__all__ = [
    "CHANGELOG_START",
    "CORE",
    "FRAGMENT_TYPES",
    "RELEASE_URL",
    "ROOT",
    "Distribution",
    "OneLineParser",
    "ToolError",
    "UsageError",
    "Version",
    "bump_version",
    "changelog_problems",
    "discover",
    "format_range",
    "fragment_files",
    "fragment_name_ok",
    "git",
    "parse_requirement",
    "read_version",
    "run_tool",
    "satisfies",
    "select",
    "towncrier_command",
    "venv_python",
    "write_version",
]

ROOT = Path(os.environ.get("REPRO_ROOT") or Path(__file__).resolve().parent.parent).resolve()
#: The distribution every package depends on; its folder is the repository's own `shared/`.
CORE = "repro-core"
#: Release headings in the changelogs link here, followed by the tag.
RELEASE_URL = "https://github.com/repro/repro/releases/tag/"

VERSION_LINE = re.compile(r"""^(?P<head>\s*__version__\s*=\s*)(?P<q>["'])(?P<version>[^"']+)(?P=q)""", re.MULTILINE)


class UsageError(Exception):
    """Bad command-line usage: one line on stderr, exit status 2."""


class ToolError(Exception):
    """The tool refuses or a step failed: one line on stderr, exit status 1."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (and exit 2) instead of the usage block.

    Descriptions and epilogs are printed as written (the tools lay out their own help text).
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def run_tool(main: object, argv: list[str] | None = None) -> int:
    """Call `main(argv)` and turn `UsageError`/`ToolError` into one stderr line and exit status 2/1."""
    prog = Path(sys.argv[0]).name
    try:
        return int(main(sys.argv[1:] if argv is None else argv))  # type: ignore[operator]
    except UsageError as exc:
        print(f"{prog}: error: {exc} (see --help)", file=sys.stderr)
        return 2
    except ToolError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


# --------------------------------------------------------------------------------------------------- versions

_VERSION_RE = re.compile(
    r"^v?(?P<release>\d+(?:\.\d+)*)"
    r"(?:[-_.]?(?P<pre_l>a|b|rc|alpha|beta|c)[-_.]?(?P<pre_n>\d*))?"
    r"(?:[-_.]?post[-_.]?(?P<post>\d*))?"
    r"(?:[-_.]?dev[-_.]?(?P<dev>\d*))?$",
    re.IGNORECASE,
)
_PRE_ALIASES = {"alpha": "a", "beta": "b", "c": "rc"}
_PRE_RANK = {"a": 0, "b": 1, "rc": 2}


@dataclass(frozen=True)
class Version:
    """A parsed version (PEP 440 subset). Ordering follows PEP 440: `1.0.dev0 < 1.0a1 < 1.0rc1 < 1.0 < 1.0.post1`."""

    release: tuple[int, ...]
    pre: tuple[str, int] | None = None
    post: int | None = None
    dev: int | None = None

    @classmethod
    def parse(cls, text: str) -> Version:
        """Parse `text` or raise `ValueError` naming it."""
        match = _VERSION_RE.match(text.strip())
        if match is None:
            raise ValueError(f"not a version this tool understands: {text!r} (expected e.g. 0.2.0, 1.0.0rc1)")
        release = tuple(int(part) for part in match["release"].split("."))
        pre = None
        if match["pre_l"]:
            label = match["pre_l"].lower()
            pre = (_PRE_ALIASES.get(label, label), int(match["pre_n"] or 0))
        post = int(match["post"] or 0) if match["post"] is not None else None
        dev = int(match["dev"] or 0) if match["dev"] is not None else None
        return cls(release, pre, post, dev)

    @property
    def is_prerelease(self) -> bool:
        """A dev or a/b/rc version: it names the release it leads to, not a release."""
        return self.pre is not None or self.dev is not None

    def padded(self, width: int = 3) -> tuple[int, ...]:
        """The release part padded with zeros to `width` numbers (`0.2` -> `(0, 2, 0)`)."""
        return self.release + (0,) * max(0, width - len(self.release))

    def _key(self) -> tuple[object, ...]:
        release = list(self.release)
        while len(release) > 1 and release[-1] == 0:
            release.pop()
        if self.pre is None and self.post is None and self.dev is not None:
            pre_key: tuple[int, int] = (-1, 0)  # X.devN sorts before X.aN
        elif self.pre is None:
            pre_key = (3, 0)
        else:
            pre_key = (_PRE_RANK[self.pre[0]], self.pre[1])
        post_key = -1 if self.post is None else self.post
        dev_key = float("inf") if self.dev is None else self.dev
        return (tuple(release), pre_key, post_key, dev_key)

    def __lt__(self, other: Version) -> bool:
        return self._key() < other._key()

    def __le__(self, other: Version) -> bool:
        return self._key() <= other._key()

    def __gt__(self, other: Version) -> bool:
        return self._key() > other._key()

    def __ge__(self, other: Version) -> bool:
        return self._key() >= other._key()

    def same(self, other: Version) -> bool:
        """Equal under PEP 440 (`0.2` == `0.2.0`), unlike `==` which compares the fields."""
        return self._key() == other._key()

    def __str__(self) -> str:
        text = ".".join(str(part) for part in self.release)
        if self.pre is not None:
            text += f"{self.pre[0]}{self.pre[1]}"
        if self.post is not None:
            text += f".post{self.post}"
        if self.dev is not None:
            text += f".dev{self.dev}"
        return text


BUMPS = ("major", "minor", "patch")


def bump_version(current: str, bump: str) -> str:
    """The release that `bump` (major, minor, patch, or an explicit version) makes of `current`.

    From a final `X.Y.Z`: patch -> `X.Y.(Z+1)`, minor -> `X.(Y+1).0`, major -> `(X+1).0.0`.
    From a pre-release (`X.Y.Z.devN`, `X.Y.ZrcN`), which already names the release it leads to, the bump first
    releases that version if it is of the asked kind (npm's rule): `0.1.0.dev0` + patch or minor -> `0.1.0`,
    + major -> `1.0.0`; `0.1.1.dev0` + minor -> `0.2.0`; `1.0.0rc1` + major -> `1.0.0`.
    (`hatch version minor` would give `0.2.0` from `0.1.0.dev0`, skipping the 0.1.0 the dev version was working
    towards.) An explicit version must be higher than `current`. Raises `ValueError` for anything else.
    """
    old = Version.parse(current)
    if bump not in BUMPS:
        new = Version.parse(bump)
        if not new > old:
            raise ValueError(f"the new version {new} must be higher than the current {current}")
        return str(new)
    major, minor, patch = old.padded()[:3]
    pending = old.is_prerelease and old.post is None
    if bump == "patch":
        release = (major, minor, patch) if pending else (major, minor, patch + 1)
    elif bump == "minor":
        release = (major, minor, 0) if pending and patch == 0 else (major, minor + 1, 0)
    else:
        release = (major, 0, 0) if pending and minor == 0 and patch == 0 else (major + 1, 0, 0)
    return str(Version(release))


# ------------------------------------------------------------------------------------------- requirement ranges

_REQ_RE = re.compile(
    r"^\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?P<extras>\[[^\]]*\])?\s*(?P<spec>[^;]*?)\s*(?P<marker>;.*)?$"
)
_CLAUSE_RE = re.compile(r"^\s*(?P<op>~=|===|==|!=|<=|>=|<|>)\s*(?P<version>[^\s,]+)\s*$")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_requirement(text: str) -> tuple[str, str, str, str]:
    """Split a PEP 508 requirement into (normalised name, extras, specifier, marker); raises `ValueError`."""
    match = _REQ_RE.match(text)
    if match is None:
        raise ValueError(f"cannot parse requirement {text!r}")
    return _normalise(match["name"]), match["extras"] or "", match["spec"].strip(), (match["marker"] or "").strip()


_COMPARE = {
    "==": lambda a, b: a.same(b),
    "!=": lambda a, b: not a.same(b),
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
}


def satisfies(version: str, specifier: str) -> bool:
    """Whether `version` lies in `specifier` (`>=0.1,<0.2`, `~=1.2`, `==0.3.*`; PEP 440 subset, no `===`).

    As in PEP 440, `<V` excludes pre-releases of `V` itself (`0.2.0.dev0` is not `<0.2`).
    """
    candidate = Version.parse(version)
    for clause in filter(None, (part.strip() for part in specifier.split(","))):
        match = _CLAUSE_RE.match(clause)
        if match is None or match["op"] == "===":
            raise ValueError(f"unsupported version clause {clause!r} in {specifier!r}")
        op, text = match["op"], match["version"]
        if text.endswith(".*"):
            if op not in {"==", "!="}:
                raise ValueError(f"a wildcard is only allowed with == or != ({clause!r})")
            prefix = Version.parse(text[:-2]).release
            inside = candidate.padded(len(prefix))[: len(prefix)] == prefix
            if inside != (op == "=="):
                return False
            continue
        bound = Version.parse(text)
        if op == "~=":
            if len(bound.release) < 2:
                raise ValueError(f"~= needs at least two release numbers ({clause!r})")
            prefix = bound.release[:-1]
            if not (candidate >= bound and candidate.padded(len(prefix))[: len(prefix)] == prefix):
                return False
        elif op in _COMPARE:
            if not _COMPARE[op](candidate, bound):
                return False
        elif op == "<":
            if not candidate < bound:
                return False
            if candidate.is_prerelease and not bound.is_prerelease and candidate.padded() == bound.padded():
                return False
    return True


def format_range(version: str) -> str:
    """The compatible range dependents should declare on `version` (0.x: `>=0.3,<0.4`; 1.0+: `~=1.2`)."""
    parsed = Version.parse(version)
    major, minor, patch = parsed.padded()[:3]
    lower = f"{major}.{minor}" if patch == 0 else f"{major}.{minor}.{patch}"
    if major == 0:
        return f">={lower},<0.{minor + 1}"
    return f"~={lower}" if patch == 0 else f">={lower},<{major + 1}"


# ------------------------------------------------------------------------------------------------ distributions


@dataclass(frozen=True)
class Distribution:
    """One distribution of the monorepo, as its `pyproject.toml` describes it."""

    name: str
    folder: Path
    import_name: str
    version_file: Path
    script: str | None
    dependencies: tuple[str, ...]
    extras: tuple[str, ...]

    @property
    def rel_folder(self) -> str:
        """The folder relative to the repository root, POSIX style (`packages/mult-probe`)."""
        try:
            return self.folder.relative_to(ROOT).as_posix()
        except ValueError:
            return str(self.folder)

    @property
    def changelog(self) -> Path:
        return self.folder / "CHANGELOG.md"

    @property
    def pyproject(self) -> Path:
        return self.folder / "pyproject.toml"

    @property
    def fragments_dir(self) -> Path:
        """`changelog.d/`: one file per unreleased change, compiled into the changelog at release."""
        return self.folder / "changelog.d"

    @property
    def towncrier_config(self) -> Path:
        return self.folder / "towncrier.toml"

    def version(self) -> str:
        return read_version(self.version_file)

    def sibling_requirements(self, names: set[str]) -> list[tuple[str, str]]:
        """(requirement text, normalised name) of each dependency on another distribution in `names`."""
        found = []
        for requirement in self.dependencies:
            try:
                name = parse_requirement(requirement)[0]
            except ValueError:
                continue
            if name in names and name != self.name:
                found.append((requirement, name))
        return found


def _load(folder: Path) -> Distribution:
    pyproject = folder / "pyproject.toml"
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ToolError(f"cannot read {pyproject}: {exc}") from exc
    project = data.get("project", {})
    name = project.get("name")
    if not name:
        raise ToolError(f"{pyproject} has no [project].name")
    name = _normalise(name)
    import_name = name.replace("-", "_")
    version_rel = data.get("tool", {}).get("hatch", {}).get("version", {}).get("path")
    version_file = folder / (version_rel or f"src/{import_name}/__about__.py")
    scripts = project.get("scripts", {})
    script = name if name in scripts else (next(iter(scripts)) if len(scripts) == 1 else None)
    return Distribution(
        name=name,
        folder=folder.resolve(),
        import_name=import_name,
        version_file=version_file.resolve(),
        script=script,
        dependencies=tuple(project.get("dependencies", [])),
        extras=tuple(project.get("optional-dependencies", {})),
    )


def discover(root: Path | None = None) -> list[Distribution]:
    """Every distribution in the repository, `repro-core` (`shared/`) first, then `packages/*` by name."""
    base = ROOT if root is None else root
    folders = [base / "shared"] if (base / "shared" / "pyproject.toml").is_file() else []
    folders += sorted(path.parent for path in (base / "packages").glob("*/pyproject.toml"))
    return [_load(folder) for folder in folders]


def select(names: list[str], distributions: list[Distribution] | None = None) -> list[Distribution]:
    """The named distributions (in repository order); an unknown name is a `UsageError` listing the known ones."""
    known = discover() if distributions is None else distributions
    by_name = {dist.name: dist for dist in known}
    wanted = {_normalise(name) for name in names}
    unknown = sorted(wanted - set(by_name))
    if unknown:
        raise UsageError(f"unknown distribution {', '.join(unknown)}; known: {', '.join(by_name) or 'none'}")
    return [dist for dist in known if dist.name in wanted]


def read_version(path: Path) -> str:
    """The `__version__ = "..."` value in `path`."""
    try:
        match = VERSION_LINE.search(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ToolError(f"cannot read {path}: {exc}") from exc
    if match is None:
        raise ToolError(f'{path} has no `__version__ = "..."` line')
    return match["version"]


def write_version(path: Path, version: str) -> None:
    """Rewrite the `__version__` line of `path`, keeping everything else byte for byte."""
    text = path.read_text(encoding="utf-8")
    new_text, count = VERSION_LINE.subn(lambda m: f"{m['head']}{m['q']}{version}{m['q']}", text, count=1)
    if count != 1:
        raise ToolError(f'{path} has no `__version__ = "..."` line')
    path.write_text(new_text, encoding="utf-8")


# ------------------------------------------------------------------------------------------------ environment


def venv_python() -> Path:
    """The development environment's python (`$REPRO_VENV`, else `<root>/.venv`); it may not exist."""
    venv = Path(os.environ.get("REPRO_VENV") or ROOT / ".venv")
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def git(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run git in the repository root and capture its output; a failure is a `ToolError` with git's message."""
    try:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise ToolError("git is not installed") from exc
    if check and done.returncode != 0:
        message = (done.stderr or done.stdout).strip().splitlines()
        raise ToolError(f"git {' '.join(args)} failed: {message[-1] if message else f'exit {done.returncode}'}")
    return done


# ------------------------------------------------------------------------------------------ changelog fragments

#: Keep a Changelog's sections, in its order: the fragment types every towncrier.toml declares.
FRAGMENT_TYPES = ("added", "changed", "deprecated", "removed", "fixed", "security")
#: towncrier inserts each release's notes right below this line of CHANGELOG.md.
CHANGELOG_START = "<!-- towncrier release notes start -->"
#: `<issue>.<type>.md` (issue number), `+<name>.<type>.md` (no issue), each optionally `.<counter>` before `.md`.
_FRAGMENT_NAME = re.compile(
    rf"^(?:[1-9][0-9]*|\+[A-Za-z0-9][A-Za-z0-9._-]*)\.(?:{'|'.join(FRAGMENT_TYPES)})(?:\.[0-9]+)?\.md$"
)
#: Files of changelog.d/ that are not fragments (towncrier ignores them too; the README keeps the folder in git).
_NOT_FRAGMENTS = {"README.md"}
_LEVEL2_HEADING = re.compile(r"^##[ \t]", re.MULTILINE)
_UNRELEASED_HEADING = re.compile(r"^##[ \t]+\[?unreleased\]?[ \t]*$", re.IGNORECASE | re.MULTILINE)


def fragment_name_ok(name: str) -> bool:
    """Whether `name` is a valid fragment file name (`14.fixed.md`, `+tidy-docs.changed.md`)."""
    return _FRAGMENT_NAME.match(name) is not None


def fragment_files(dist: Distribution) -> list[Path]:
    """The fragment files of `dist` (every file of changelog.d/ but its README), sorted by name."""
    if not dist.fragments_dir.is_dir():
        return []
    return sorted(p for p in dist.fragments_dir.iterdir() if p.is_file() and p.name not in _NOT_FRAGMENTS)


def _fragment_problems(path: Path) -> list[str]:
    if not fragment_name_ok(path.name):
        return [
            f"{path.name}: not a fragment name; use <issue>.<type>.md or +<name>.<type>.md with <type> one of "
            + ", ".join(FRAGMENT_TYPES)
        ]
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not lines:
        return [f"{path.name}: empty fragment"]
    if not lines[0].startswith("- ") or any(not (line.startswith(("- ", " "))) for line in lines):
        return [f"{path.name}: the content must be a markdown bullet list ('- ...' lines, continuations indented)"]
    return []


def changelog_problems(dist: Distribution) -> list[str]:
    """What breaks the changelog rules in `dist`; empty when it follows them.

    The rules: a towncrier.toml whose output is this repository's changelog format, a changelog.d/ folder of
    validly named bullet-list fragments, and a CHANGELOG.md with towncrier's start marker and no hand-written
    entries above it or under a `## Unreleased` heading (towncrier would never compile them).
    """
    where = dist.rel_folder
    problems: list[str] = []
    try:
        config = tomllib.loads(dist.towncrier_config.read_text(encoding="utf-8"))["tool"]["towncrier"]
    except (OSError, KeyError, tomllib.TOMLDecodeError) as exc:
        problems.append(f"{where}/towncrier.toml: missing or without [tool.towncrier] ({type(exc).__name__})")
        config = None
    if config is not None:
        expected = {
            "name": dist.name,
            "directory": "changelog.d",
            "filename": "CHANGELOG.md",
            "start_string": CHANGELOG_START + "\n",
            "title_format": f"## [{{version}}]({RELEASE_URL}{dist.name}-v{{version}}) - {{project_date}}",
            "issue_format": "#{issue}",
            "orphan_prefix": "+",
        }
        for key, value in expected.items():
            if config.get(key) != value:
                problems.append(f"{where}/towncrier.toml: {key} must be {value!r}, not {config.get(key)!r}")
        types = [entry.get("directory") for entry in config.get("type", [])]
        if types != list(FRAGMENT_TYPES):
            problems.append(f"{where}/towncrier.toml: fragment types must be {', '.join(FRAGMENT_TYPES)} in order")
        template = config.get("template")
        if not isinstance(template, str) or not (dist.folder / template).is_file():
            problems.append(f"{where}/towncrier.toml: template {template!r} is not a file")
    if not dist.fragments_dir.is_dir():
        problems.append(f"{where}/changelog.d/ does not exist")
    problems += [
        f"{where}/changelog.d/{problem}" for path in fragment_files(dist) for problem in _fragment_problems(path)
    ]
    try:
        text = dist.changelog.read_text(encoding="utf-8")
    except OSError:
        return [*problems, f"{where}/CHANGELOG.md does not exist"]
    if text.count(CHANGELOG_START) != 1:
        problems.append(f"{where}/CHANGELOG.md must hold the line {CHANGELOG_START} exactly once")
    if _UNRELEASED_HEADING.search(text):
        problems.append(f"{where}/CHANGELOG.md has a '## Unreleased' heading: move its entries into changelog.d/")
    elif _LEVEL2_HEADING.search(text.split(CHANGELOG_START, 1)[0]):
        problems.append(f"{where}/CHANGELOG.md has a section above {CHANGELOG_START}: releases go below it")
    return problems


def towncrier_command() -> list[str]:
    """How to call towncrier: the development environment's, else whatever this Python or PATH offers."""
    python = venv_python()
    script = python.parent / "towncrier"
    if script.is_file():
        return [str(script)]
    if python.is_file():
        return [str(python), "-m", "towncrier"]
    found = shutil.which("towncrier")
    if found:
        return [found]
    raise ToolError(f"towncrier not found (no {script}); run `python tools/bootstrap.py env` first")
