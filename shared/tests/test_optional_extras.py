"""`import repro_core` needs numpy alone; torch-only calls name the extra to install.

The real fresh-venv check (pip install ./shared, no torch) is `tools/isolation-check`; here torch, jax, triton and
matplotlib are hidden from a subprocess (`sys.modules[name] = None` makes their import fail).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import sys
    for name in ("torch", "jax", "triton", "matplotlib"):
        sys.modules[name] = None
    import repro_core, repro_core.metrics, repro_core.seeding, repro_core.report, repro_core.cli
    import repro_core.checkpoint, repro_core.device, repro_core.distributed, repro_core.umbrella
    import repro_core.kernels
    assert repro_core.seeding.seed_everything(3) is None      # random + numpy still seeded
    assert repro_core.seeding.derive_seed(0, "x") >= 0
    from repro_core.errors import MissingExtraError
    calls = {
        "torch_generator": lambda: repro_core.seeding.torch_generator(0),
        "pick_device": repro_core.device.pick_device,
        "save_checkpoint": lambda: repro_core.checkpoint.save_checkpoint({}, "x.pt"),
        "topk_similarity": lambda: repro_core.kernels.topk_similarity([[1.0]], [[1.0]], 1),
        "new_figure": repro_core.report.new_figure,
    }
    for name, call in calls.items():
        try:
            call()
        except MissingExtraError as exc:
            print(name, "|", exc)
        else:
            raise SystemExit(f"{name} did not raise")
    leaked = [m for m in ("torch", "jax", "triton", "matplotlib") if sys.modules.get(m) is not None]
    assert not leaked, leaked
    """
)


def test_core_imports_and_names_the_extra_without_torch() -> None:
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    lines = dict(line.split(" | ", 1) for line in proc.stdout.splitlines())
    assert set(lines) == {"torch_generator", "pick_device", "save_checkpoint", "topk_similarity", "new_figure"}
    for name in ("torch_generator", "pick_device", "save_checkpoint", "topk_similarity"):
        assert "pip install 'repro-core[torch]'" in lines[name], lines[name]
    assert "pip install 'repro-core[plot]'" in lines["new_figure"]


def test_require_names_a_package_extra() -> None:
    from repro_core.errors import MissingExtraError
    from repro_core.optional import require

    with pytest.raises(MissingExtraError, match=r"pip install 'repro-core\[nope_not_a_module\]'"):
        require("nope_not_a_module.sub", "a test feature")
    with pytest.raises(MissingExtraError, match=r"a test feature needs .*pip install 'truth-crowd\[classify\]'"):
        require("nope_not_a_module", "a test feature", extra="classify", distribution="truth-crowd")
    assert require("json", "a test feature").__name__ == "json"
