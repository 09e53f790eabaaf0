"""Lazy imports of the optional heavy frameworks, with an error that says which extra to install.

`import repro_core` needs numpy alone; torch, jax, triton and matplotlib are imported on first use.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from repro_core.errors import MissingExtraError

__all__ = ["has_module", "require"]

#: The extra of repro-core that provides each optional module.
EXTRA_FOR = {"torch": "torch", "jax": "jax", "triton": "triton", "matplotlib": "plot"}


def require(module: str, feature: str) -> ModuleType:
    """Import `module` or raise `MissingExtraError` naming the repro-core extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        raise MissingExtraError(top, EXTRA_FOR.get(top, top), feature) from exc


def has_module(module: str) -> bool:
    """True when `module` imports (without raising); used to pick optional code paths and to skip tests."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True
