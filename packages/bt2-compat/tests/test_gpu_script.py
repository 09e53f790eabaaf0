"""The prepared GPU script (`benchmarks/gpu_series_resnet18.py`) in its CPU smoke mode: it runs end to end."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_series_resnet18.py"


def test_gpu_series_script_smoke(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="the heatmaps use matplotlib (repro-core[plot])")
    spec = importlib.util.spec_from_file_location("gpu_series_resnet18", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--out", str(tmp_path), "--smoke", "--device", "cpu"]) == 0
    report = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert report["smoke"] and report["device"] == "cpu"
    assert set(report["series"]) == {"bt2", "independent"}
    bt2 = report["series"]["bt2"]
    assert bt2["config"]["backbone"] == "resnet18" and bt2["config"]["train"]["augment"]
    assert bt2["names"] == ["m0", "m1", "m2"]
    for metric in ("mAP", "top1"):
        assert len(bt2["matrix"][metric]) == 3 and set(bt2["criteria"][metric]) == {"m1/m0", "m2/m0", "m2/m1"}
        for method in ("bt2", "independent"):
            assert (tmp_path / f"{method}_{metric}.png").read_bytes()[:4] == b"\x89PNG"
