"""What the packages use from repro-core is public, and lives in library modules below the CLI (issue #14).

`repro_core.optional` replaces the private `_optional`; `progress` and `to_jsonable` moved out of `repro_core.cli`
(which re-exports them); `check_std`, `all_reduce_gradients` and `value_errors_as_config_errors` replace copies
that lived in the packages. The import rules themselves are checked in `tests/test_layering.py`.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import repro_core.cli
import repro_core.optional
import repro_core.progress
import repro_core.serialization
from repro_core.cli import value_errors_as_config_errors
from repro_core.errors import ConfigError, InputError, MissingExtraError
from repro_core.kernels import check_std


def test_optional_is_public() -> None:
    assert set(repro_core.optional.__all__) == {"MissingExtraError", "has_module", "require"}
    assert repro_core.optional.MissingExtraError is MissingExtraError
    assert repro_core.optional.has_module("json") and not repro_core.optional.has_module("nope_not_a_module")
    with pytest.raises(MissingExtraError, match=r"pip install 'mult-probe\[plot\]'"):
        repro_core.optional.require("nope_not_a_module", "a feature", extra="plot", distribution="mult-probe")


def test_private_optional_is_a_deprecated_alias_of_the_same_objects(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "repro_core._optional", raising=False)
    with pytest.warns(DeprecationWarning, match=r"repro_core\.optional"):
        alias = importlib.import_module("repro_core._optional")
    assert alias.require is repro_core.optional.require
    assert alias.has_module is repro_core.optional.has_module
    assert alias.EXTRA_FOR is repro_core.optional.EXTRA_FOR


def test_cli_reexports_the_moved_helpers() -> None:
    """Code written against `repro_core.cli` keeps working: the same objects, still in its `__all__`."""
    assert repro_core.cli.progress is repro_core.progress.progress
    assert repro_core.cli.PROGRESS_INTERVAL_ENV == repro_core.progress.PROGRESS_INTERVAL_ENV
    assert repro_core.cli.to_jsonable is repro_core.serialization.to_jsonable
    assert {"progress", "PROGRESS_INTERVAL_ENV", "to_jsonable"} <= set(repro_core.cli.__all__)


def test_library_modules_load_without_the_cli() -> None:
    """Reports, progress bars and JSON conversion no longer pull in the command-line layer."""
    script = textwrap.dedent(
        """
        import sys
        import repro_core.report, repro_core.progress, repro_core.serialization, repro_core.optional
        import repro_core.distributed, repro_core.kernels
        above = ("repro_core.cli", "repro_core.umbrella", "repro_core._optional")
        print(sorted(m for m in above if m in sys.modules))
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_progress_and_to_jsonable_work_from_their_new_homes(capsys: pytest.CaptureFixture[str]) -> None:
    assert list(repro_core.progress.progress(range(3), desc="x")) == [0, 1, 2]
    assert capsys.readouterr().out == ""
    assert repro_core.serialization.to_jsonable({"a": np.float64("nan"), "b": (1, 2)}) == {"a": None, "b": [1, 2]}


def test_value_errors_become_config_errors() -> None:
    with (
        pytest.raises(ConfigError, match=r"^--rank: rank must be >= 0$") as caught,
        value_errors_as_config_errors("--rank: "),
    ):
        raise ValueError("rank must be >= 0")
    assert isinstance(caught.value.__cause__, ValueError)

    bad_input = InputError("not a number", path="x.csv", line=3)
    with pytest.raises(InputError) as passed, value_errors_as_config_errors("--data: "):
        raise bad_input
    assert passed.value is bad_input  # repro errors pass unchanged, without the prefix

    with pytest.raises(KeyError), value_errors_as_config_errors():
        raise KeyError("a bug keeps its type (and traceback)")


def test_value_errors_as_config_errors_decorates_a_command() -> None:
    @value_errors_as_config_errors()
    def command(value: int) -> int:
        if value < 0:
            raise ValueError(f"value: must be >= 0, got {value}")
        return value

    assert command(3) == 3
    with pytest.raises(ConfigError, match="value: must be >= 0, got -1"):
        command(-1)


@pytest.mark.parametrize("value", [0, 2, 0.5, np.float32(1.5), np.int64(3)])
def test_check_std_accepts_finite_non_negative_reals(value: object) -> None:
    checked = check_std(value, "w_std")
    assert type(checked) is float and checked == float(value)


@pytest.mark.parametrize("value", [True, "1", None, float("nan"), float("inf"), -0.1, np.float64(-1)])
def test_check_std_names_the_argument(value: object) -> None:
    with pytest.raises(ValueError, match=r"^b_std: "):
        check_std(value, "b_std")


def test_all_reduce_gradients_sums_every_gradient_in_one_collective(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two identical ranks, simulated: the collective doubles the flat buffer; a missing gradient counts as zero."""
    torch = pytest.importorskip("torch")
    from repro_core.distributed import all_reduce_gradients

    calls = []

    def fake_all_reduce(tensor: torch.Tensor) -> None:
        calls.append(tensor.numel())
        tensor.mul_(2)

    monkeypatch.setattr(torch.distributed, "all_reduce", fake_all_reduce)
    weight = torch.nn.Parameter(torch.zeros(2, 3))
    bias = torch.nn.Parameter(torch.zeros(3))
    unused = torch.nn.Parameter(torch.zeros(4))
    weight.grad = torch.arange(6.0).reshape(2, 3)
    bias.grad = torch.ones(3)
    all_reduce_gradients(p for p in (weight, unused, bias))
    assert calls == [13]
    assert torch.equal(weight.grad, 2 * torch.arange(6.0).reshape(2, 3))
    assert torch.equal(bias.grad, torch.full((3,), 2.0))
    assert torch.equal(unused.grad, torch.zeros(4))
    all_reduce_gradients([])
    assert calls == [13]  # nothing to reduce: no collective
