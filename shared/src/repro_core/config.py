"""Configurations (frozen dataclasses) read back from JSON: one key check shared by every package.

Configs travel in checkpoints, index manifests and `--config` files and are rebuilt with `cls(**data)`. A stray or
misspelt key must be refused by name, as a `ConfigError` (exit code 2 in the CLIs), rather than surface as a
`TypeError` from the constructor; each field's value is then validated by the dataclass's own `__post_init__`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from repro_core.errors import ConfigError

__all__ = ["checked_fields"]


def checked_fields(cls: type, data: object, what: str) -> dict[str, Any]:
    """`data` as a new dict of `cls`'s dataclass fields; a `ConfigError` names `what` and any unknown keys."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{what}: expected a JSON object, got {type(data).__name__}")
    known = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{what}: unknown field(s) {unknown}; known: {sorted(known)}")
    return dict(data)
