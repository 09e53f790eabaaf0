"""The layering of the distributions, checked over every import in their sources (issue #14, points 2 and 3).

Rules, each failure naming the module, the line and the offending import:

1. Packages use repro-core's public API only: no module or name whose path has a component starting with `_`
   (dunders such as `__version__` excepted), and every name imported from a repro-core module is listed in that
   module's `__all__` (or is one of its public submodules). `tools/api-check` (griffe) guards exactly that API.
2. (a) No package imports another package; (b) repro-core imports no package.
3. Library modules never import top-layer modules. The top layer is the command line (`cli.py`, `__main__.py`,
   `repro_core/umbrella.py`) and `repro_core/testing.py`, the harness that drives those command lines in tests:
   it sits above them. Everything else in `src/` is a library module.

And code that moved into repro-core stays there: no CLI writes its own `except ValueError: raise ConfigError(...)`
(`repro_core.cli.value_errors_as_config_errors` does it for all of them).

Every import counts: module-level, function-local, under `TYPE_CHECKING`, relative, and string literals passed to
`importlib.import_module` / `import_module` / `__import__`. The sources are parsed, never imported, so the check
needs neither torch nor any optional extra.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE = "repro_core"
#: Top-layer modules besides every `cli.py` and `__main__.py`.
TOP_LAYER_MODULES = frozenset({"repro_core.umbrella", "repro_core.testing"})
TOP_LAYER_FILES = frozenset({"cli", "__main__"})
IMPORT_FUNCTIONS = frozenset({"import_module", "__import__"})


@dataclass(frozen=True)
class ModuleInfo:
    """One source module: its dotted name, whether it is a package `__init__`, its source and its `__all__`."""

    name: str
    is_package: bool
    source: str
    exports: frozenset[str] | None

    @property
    def top(self) -> str:
        return self.name.split(".")[0]

    @property
    def is_top_layer(self) -> bool:
        return self.name in TOP_LAYER_MODULES or self.name.rsplit(".", 1)[-1] in TOP_LAYER_FILES


@dataclass(frozen=True)
class ImportRef:
    """One import: the module it reaches and, for `from module import name`, the name."""

    line: int
    module: str
    name: str | None = None

    def __str__(self) -> str:
        what = f"from {self.module} import {self.name}" if self.name else f"import {self.module}"
        return f"line {self.line}: {what}"


def _module_name(relative: str) -> tuple[str, bool]:
    parts = relative.removesuffix(".py").split("/")
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def _exports(tree: ast.Module) -> frozenset[str] | None:
    """The literal `__all__` of a module (assignments and `+=`), or None when it has none."""
    names: set[str] | None = None
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        else:
            continue
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets) and node.value is not None:
            names = (names or set()) | set(ast.literal_eval(node.value))
    return None if names is None else frozenset(names)


def build_layout(files: Mapping[str, str]) -> dict[str, ModuleInfo]:
    """Modules by dotted name, from sources keyed by their path under a `src/` folder (`repro_core/cli.py`)."""
    layout = {}
    for relative, source in files.items():
        name, is_package = _module_name(relative)
        layout[name] = ModuleInfo(name, is_package, source, _exports(ast.parse(source, relative)))
    return layout


def _source_files() -> dict[str, str]:
    files = {}
    for src in [ROOT / "shared" / "src", *sorted((ROOT / "packages").glob("*/src"))]:
        for path in sorted(src.rglob("*.py")):
            files[path.relative_to(src).as_posix()] = path.read_text(encoding="utf-8")
    return files


def _resolve_relative(module: ModuleInfo, level: int, target: str | None) -> str:
    base = module.name.split(".") if module.is_package else module.name.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, target] if target else base)


def imports_of(module: ModuleInfo) -> Iterator[ImportRef]:
    """Every import in `module`'s source, wherever it sits, with relative imports resolved."""
    for node in ast.walk(ast.parse(module.source, module.name)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield ImportRef(node.lineno, alias.name)
        elif isinstance(node, ast.ImportFrom):
            target = _resolve_relative(module, node.level, node.module) if node.level else node.module or ""
            for alias in node.names:
                yield ImportRef(node.lineno, target, alias.name)
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            first = node.args[0]
            if called in IMPORT_FUNCTIONS and isinstance(first, ast.Constant) and isinstance(first.value, str):
                text = first.value
                if text.startswith("."):
                    stripped = text.lstrip(".")
                    text = _resolve_relative(module, len(text) - len(stripped), stripped or None)
                yield ImportRef(node.lineno, text)


def _reached_modules(ref: ImportRef, layout: Mapping[str, ModuleInfo]) -> list[str]:
    """The modules an import loads: `from a import b` reaches `a`, and `a.b` too when that is a module."""
    reached = [ref.module]
    if ref.name and f"{ref.module}.{ref.name}" in layout:
        reached.append(f"{ref.module}.{ref.name}")
    return reached


def _is_private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def private_api_violations(module: ModuleInfo, layout: Mapping[str, ModuleInfo]) -> list[str]:
    """Rule 1: what a package module imports from repro-core that is not public API."""
    if module.top == CORE:
        return []
    found = []
    for ref in imports_of(module):
        if ref.module.split(".")[0] != CORE:
            continue
        private = [part for part in [*ref.module.split("."), ref.name or ""] if _is_private(part)]
        if private:
            found.append(f"{ref}: private repro-core {'module' if ref.name != private[-1] else 'name'} {private[-1]!r}")
            continue
        if ref.name is None or ref.name.startswith("__") or f"{ref.module}.{ref.name}" in layout:
            continue
        target = layout.get(ref.module)
        if target is None:
            found.append(f"{ref}: no repro-core module {ref.module!r}")
        elif target.exports is None or ref.name not in target.exports:
            found.append(f"{ref}: {ref.name!r} is not in {ref.module}.__all__")
    return found


def layering_violations(module: ModuleInfo, layout: Mapping[str, ModuleInfo]) -> list[str]:
    """Rules 2 and 3: imports across packages, from repro-core into a package, and from a library into a CLI."""
    packages = {info.top for info in layout.values()} - {CORE}
    found = []
    for ref in imports_of(module):
        top = ref.module.split(".")[0]
        if top in packages and top != module.top:
            rule = "repro-core imports no package" if module.top == CORE else "no package imports another package"
            found.append(f"{ref}: {rule}")
        if module.is_top_layer:
            continue
        for reached in _reached_modules(ref, layout):
            if reached in layout and layout[reached].is_top_layer:
                found.append(f"{ref}: library module imports the top-layer (CLI) module {reached}")
    return found


LAYOUT = build_layout(_source_files())
MODULES = sorted(LAYOUT)


def test_the_layout_covers_the_core_and_all_five_packages() -> None:
    assert {info.top for info in LAYOUT.values()} == {
        "repro_core",
        "ntk_permute",
        "mult_probe",
        "truth_crowd",
        "premise_search",
        "bt2_compat",
    }


@pytest.mark.parametrize("name", MODULES)
def test_packages_import_only_public_core_api(name: str) -> None:
    violations = private_api_violations(LAYOUT[name], LAYOUT)
    assert not violations, f"{name}:\n  " + "\n  ".join(violations)


@pytest.mark.parametrize("name", MODULES)
def test_layering(name: str) -> None:
    violations = layering_violations(LAYOUT[name], LAYOUT)
    assert not violations, f"{name}:\n  " + "\n  ".join(violations)


def hand_written_config_error_wrappers(module: ModuleInfo) -> list[str]:
    """`except ValueError: raise ConfigError(...)` blocks: `repro_core.cli.value_errors_as_config_errors` (the one
    such block allowed) does that for every CLI."""
    found = []
    for node in ast.walk(ast.parse(module.source, module.name)):
        if not isinstance(node, ast.ExceptHandler) or node.type is None:
            continue
        caught = node.type.elts if isinstance(node.type, ast.Tuple) else [node.type]
        if not any(isinstance(c, ast.Name) and c.id == "ValueError" for c in caught):
            continue
        raised = [n.exc for n in ast.walk(node) if isinstance(n, ast.Raise) and isinstance(n.exc, ast.Call)]
        if any(isinstance(r.func, ast.Name) and r.func.id == "ConfigError" for r in raised):
            found.append(f"line {node.lineno}: except ValueError -> ConfigError; use value_errors_as_config_errors")
    return found


@pytest.mark.parametrize("name", [n for n in MODULES if LAYOUT[n].is_top_layer and n != "repro_core.cli"])
def test_clis_share_one_value_error_wrapper(name: str) -> None:
    violations = hand_written_config_error_wrappers(LAYOUT[name])
    assert not violations, f"{name}:\n  " + "\n  ".join(violations)


# The checkers on small synthetic trees: each rule is caught however the import is written.

SYNTHETIC_CORE = {
    "repro_core/__init__.py": '__all__ = ["ConfigError"]\n',
    "repro_core/__about__.py": '__version__ = "0.1.0"\n',
    "repro_core/_optional.py": '__all__ = ["require"]\n',
    "repro_core/optional.py": '__all__ = ["require"]\n',
    "repro_core/cli.py": '__all__ = ["emit"]\n',
    "repro_core/umbrella.py": '__all__ = ["main"]\n',
    "repro_core/progress.py": '__all__ = ["progress"]\n',
    "repro_core/kernels/__init__.py": '__all__ = ["kappa0"]\n',
    "repro_core/kernels/_common.py": '__all__ = ["resolve_backend"]\n',
    "pkg_a/__init__.py": "",
    "pkg_a/cli.py": "",
    "pkg_a/core.py": "",
    "pkg_b/__init__.py": "",
}


def _check(checker, path: str, source: str) -> list[str]:
    layout = build_layout({**SYNTHETIC_CORE, path: source})
    return checker(layout[_module_name(path)[0]], layout)


@pytest.mark.parametrize(
    "source",
    [
        "from repro_core._optional import require\n",
        "import repro_core._optional\n",
        "from repro_core import _optional\n",
        "from repro_core.kernels._common import resolve_backend\n",
        "from repro_core.cli import _parser\n",
        "def f():\n    from repro_core._optional import require\n",
        "import importlib\nmod = importlib.import_module('repro_core._optional')\n",
        "from importlib import import_module\nmod = import_module('repro_core.kernels._common')\n",
        "from repro_core.optional import has_module\n",  # not in that module's __all__
        "from repro_core.kernels import relu_ntk\n",
        "from repro_core.nowhere import thing\n",
    ],
)
def test_private_core_api_is_caught(source: str) -> None:
    assert _check(private_api_violations, "pkg_a/lib.py", source)


@pytest.mark.parametrize(
    "source",
    [
        "from repro_core.optional import require\n",
        "import repro_core.optional\n",
        "from repro_core import optional, ConfigError\n",
        "from repro_core import kernels\nfrom repro_core.kernels import kappa0\n",
        "from repro_core.__about__ import __version__\n",
        "from repro_core.cli import emit as emit_result\n",
        "from pkg_a._private import thing\n",  # its own private modules are the package's business
    ],
)
def test_public_core_api_passes(source: str) -> None:
    assert _check(private_api_violations, "pkg_a/lib.py", source) == []


def test_repro_core_may_use_its_own_private_modules() -> None:
    assert _check(private_api_violations, "repro_core/device.py", "from repro_core._optional import require\n") == []


@pytest.mark.parametrize(
    ("path", "source", "message"),
    [
        ("pkg_a/core.py", "import pkg_b\n", "no package imports another package"),
        ("pkg_a/cli.py", "def f():\n    from pkg_b import thing\n", "no package imports another package"),
        ("pkg_a/core.py", "__import__('pkg_b.sub')\n", "no package imports another package"),
        ("repro_core/report.py", "from pkg_a.core import x\n", "repro-core imports no package"),
        ("repro_core/umbrella.py", "import importlib\nimportlib.import_module('pkg_b')\n", "repro-core imports no"),
        ("repro_core/report.py", "from repro_core.cli import emit\n", "top-layer (CLI) module repro_core.cli"),
        ("repro_core/report.py", "from repro_core import cli\n", "top-layer (CLI) module repro_core.cli"),
        ("repro_core/kernels/x.py", "from .. import umbrella\n", "top-layer (CLI) module repro_core.umbrella"),
        ("pkg_a/core.py", "def f():\n    from pkg_a.cli import main\n", "top-layer (CLI) module pkg_a.cli"),
        ("pkg_a/core.py", "from .cli import main\n", "top-layer (CLI) module pkg_a.cli"),
        ("pkg_a/core.py", "from . import cli\n", "top-layer (CLI) module pkg_a.cli"),
        ("pkg_a/core.py", "import importlib\nimportlib.import_module('.cli', __package__)\n", "module pkg_a.cli"),
        ("pkg_a/sub/__init__.py", "from ..cli import main\n", "top-layer (CLI) module pkg_a.cli"),
    ],
)
def test_layering_violations_are_caught(path: str, source: str, message: str) -> None:
    violations = _check(layering_violations, path, source)
    assert len(violations) == 1 and message in violations[0], violations
    assert violations[0].startswith("line "), violations


@pytest.mark.parametrize(
    ("path", "source"),
    [
        (
            "pkg_a/cli.py",
            "from repro_core.cli import emit\nfrom repro_core.umbrella import main\nfrom .core import x\n",
        ),
        ("pkg_a/core.py", "from repro_core.progress import progress\nimport repro_core.kernels\nfrom . import core\n"),
        ("repro_core/umbrella.py", "from repro_core.cli import emit\n"),
        ("repro_core/report.py", "import numpy\nfrom repro_core.progress import progress\n"),
    ],
)
def test_allowed_imports_pass(path: str, source: str) -> None:
    assert _check(layering_violations, path, source) == []


def test_a_hand_written_value_error_wrapper_is_caught() -> None:
    layout = build_layout(
        {
            "pkg_a/cli.py": "try:\n    run()\nexcept (KeyError, ValueError) as exc:\n    raise ConfigError(str(exc))\n",
            "pkg_b/cli.py": "try:\n    run()\nexcept ValueError:\n    logger.warning('skipped')\n",
        }
    )
    assert hand_written_config_error_wrappers(layout["pkg_a.cli"]) == [
        "line 3: except ValueError -> ConfigError; use value_errors_as_config_errors"
    ]
    assert hand_written_config_error_wrappers(layout["pkg_b.cli"]) == []
