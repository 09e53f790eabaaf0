"""`repro reproduce`: runs every registered reproduction; a failing one does not stop the others.

These tests register fake reproductions; the run over the five real packages is in tests/integration.
"""

from __future__ import annotations

import json
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from repro_core import umbrella
from repro_core.report import ClaimResult, ReproductionContext, Verdict, new_figure, save_figure


def good(context: ReproductionContext) -> list[ClaimResult]:
    figure = new_figure()
    figure.add_subplot().plot([0, 1], [0, 1])
    save_figure(figure, context.figure_path("curve"))
    return [ClaimResult("claim A", "accuracy", 0.9, 0.91, tolerance=0.02)]


def broken(context: ReproductionContext) -> list[ClaimResult]:
    raise RuntimeError("data file missing")


def wrong_type(context: ReproductionContext) -> list[ClaimResult]:
    return "not a list"  # type: ignore[return-value]


def _fake_discover(monkeypatch: pytest.MonkeyPatch) -> None:
    # Entry points that resolve to the functions above (pytest registers this module under __name__).
    entries = {
        name: EntryPoint(name, f"{__name__}:{name.replace('-', '_')}", umbrella.ENTRY_POINT_GROUP)
        for name in ("good", "broken", "wrong-type")
    }
    entries["missing"] = EntryPoint("missing", "no_such_module_xyz:quick", umbrella.ENTRY_POINT_GROUP)
    monkeypatch.setattr(umbrella, "discover", lambda: dict(sorted(entries.items())))


def test_failures_are_isolated_and_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    _fake_discover(monkeypatch)
    assert umbrella.main(["reproduce", "--out", str(tmp_path), "--json"]) == 1
    payload = json.loads(capsys.readouterr().out)
    by_name = {o["package"]: o for o in payload["outcomes"]}
    assert by_name["good"]["error"] is None and by_name["good"]["results"][0]["verdict"] == "reproduced"
    assert "RuntimeError: data file missing" in by_name["broken"]["error"]
    assert "must return a list of ClaimResult" in by_name["wrong-type"]["error"]
    assert "ModuleNotFoundError" in by_name["missing"]["error"]
    index = (tmp_path / "index.md").read_text()
    assert "| broken | claim" not in index
    assert "failed: RuntimeError: data file missing" in index
    assert "![curve](good/curve.png)" in index and (tmp_path / "ours_vs_paper.png").exists()
    assert json.loads((tmp_path / "results.json").read_text())["seed"] == 0


def test_only_selects_and_rejects_unknown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    _fake_discover(monkeypatch)
    assert umbrella.main(["reproduce", "--out", str(tmp_path), "--only", "good", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert [o["package"] for o in payload["outcomes"]] == ["good"]
    assert umbrella.main(["reproduce", "--out", str(tmp_path), "--only", "nope"]) == 2
    assert "no reproduction registered for nope" in capsys.readouterr().err


def test_list(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    _fake_discover(monkeypatch)
    assert umbrella.main(["list", "--json"]) == 0
    assert sorted(json.loads(capsys.readouterr().out)) == ["broken", "good", "missing", "wrong-type"]


def test_seeds_are_per_package(tmp_path: Path) -> None:
    seen = {}

    def record(context: ReproductionContext) -> list[ClaimResult]:
        seen[context.out_dir.name] = context.seed
        return [ClaimResult.pending("x")]

    umbrella.run_one("a", record, tmp_path, 0)
    umbrella.run_one("b", record, tmp_path, 0)
    assert seen["a"] != seen["b"]
    assert umbrella.run_one("a", record, tmp_path, 0).results[0].verdict is Verdict.PENDING
