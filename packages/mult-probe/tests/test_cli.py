"""The mult-probe skeleton: installable, CLI answers, reproduction registered and honest."""

from __future__ import annotations

import json
from importlib.metadata import entry_points, version

import pytest

import mult_probe
from mult_probe.cli import main
from mult_probe.reproduction import quick
from repro_core.report import ReproductionContext, Verdict


def test_version_matches_metadata() -> None:
    assert mult_probe.__version__ == version("mult-probe")


def test_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_help:
        main(["--help"])
    assert exit_help.value.code == 0
    assert "reproduce" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_version:
        main(["--version"])
    assert exit_version.value.code == 0
    assert mult_probe.__version__ in capsys.readouterr().out


def test_reproduction_is_registered() -> None:
    names = {ep.name: ep.value for ep in entry_points(group="repro.reproductions")}
    assert names["mult-probe"] == "mult_probe.reproduction:quick"


def test_quick_reproduction_reports_pending_honestly(tmp_path) -> None:
    results = quick(ReproductionContext(out_dir=tmp_path))
    assert results and all(r.verdict is Verdict.PENDING and r.our_value is None for r in results)
    assert all("not implemented" in r.note for r in results)


def test_reproduce_json(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reproduce", "--out", str(tmp_path), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert [o["package"] for o in payload["outcomes"]] == ["mult-probe"]
    assert (tmp_path / "index.md").read_text().count("mult-probe") >= 2
