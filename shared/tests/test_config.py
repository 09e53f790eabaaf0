"""`repro_core.config.checked_fields`: the one key check for configs read back from JSON."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from repro_core.config import checked_fields
from repro_core.errors import ConfigError


@dataclass(frozen=True)
class _Example:
    steps: int = 1
    lr: float = 0.1


def test_known_fields_round_trip_and_the_input_is_not_aliased() -> None:
    data = {"steps": 3}
    fields = checked_fields(_Example, data, "example config")
    assert _Example(**fields) == _Example(steps=3)
    fields["lr"] = 1.0
    assert data == {"steps": 3}


def test_unknown_keys_and_non_objects_are_named() -> None:
    with pytest.raises(ConfigError, match=r"example config: unknown field\(s\) \['stpes'\]; known: \['lr', 'steps'\]"):
        checked_fields(_Example, {"stpes": 3}, "example config")
    with pytest.raises(ConfigError, match="example config: expected a JSON object, got list"):
        checked_fields(_Example, [1, 2], "example config")
