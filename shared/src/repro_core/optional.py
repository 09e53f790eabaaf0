"""Lazy imports of the optional heavy frameworks, with an error that says which extra to install.

`import repro_core` needs numpy alone; torch, jax, triton and matplotlib are imported on first use. The packages
built on repro-core use `require` and `has_module` for their own extras too, so this module is public API.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from repro_core.errors import MissingExtraError

__all__ = ["MissingExtraError", "has_module", "require"]

#: The extra of repro-core that provides each optional module.
EXTRA_FOR = {"torch": "torch", "jax": "jax", "triton": "triton", "matplotlib": "plot"}


def require(module: str, feature: str, *, extra: str | None = None, distribution: str = "repro-core") -> ModuleType:
    """Import `module` or raise `MissingExtraError` naming the extra that installs it.

    By default the extra is repro-core's (`EXTRA_FOR`); a package that declares its own extra passes `extra` and
    its `distribution`, so the message says e.g. `pip install 'truth-crowd[classify]'`.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        raise MissingExtraError(top, extra or EXTRA_FOR.get(top, top), feature, distribution=distribution) from exc


def has_module(module: str) -> bool:
    """True when `module` imports (without raising); used to pick optional code paths and to skip tests."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True
