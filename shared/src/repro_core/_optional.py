"""Deprecated alias of `repro_core.optional` (the same objects), kept so code written against it still imports.

Import `require`, `has_module` and `EXTRA_FOR` from `repro_core.optional` instead; this module will be removed in
repro-core 1.0.
"""

from __future__ import annotations

import warnings

from repro_core.optional import EXTRA_FOR, has_module, require

__all__ = ["EXTRA_FOR", "has_module", "require"]

warnings.warn(
    "repro_core._optional is deprecated: import require and has_module from repro_core.optional",
    DeprecationWarning,
    stacklevel=2,
)
