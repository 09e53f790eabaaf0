"""The ntk-permute CLI (repro_core conventions, `analytic`, `complexity`) and the quick reproduction."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import ntk_permute
from ntk_permute.cli import main
from ntk_permute.reproduction import quick
from repro_core.report import Verdict
from repro_core.testing import check_package_cli, check_reproduction


def test_cli_conventions(tmp_path: Path) -> None:
    check_package_cli("ntk-permute", main, tmp_path)


def test_quick_reproduction_reproduces_the_claims(tmp_path: Path) -> None:
    results = check_reproduction("ntk-permute", quick, tmp_path)
    assert len(results) >= 20
    # Figure 1 compares one trained pool with the official single-trial first-passage value: it may differ.
    failed = [
        r
        for r in results
        if r.verdict not in (Verdict.REPRODUCED, Verdict.MEASURED)
        and not (r.verdict is Verdict.DIFFERS and r.claim.startswith("Figure 1"))
    ]
    assert not failed, failed
    assert (tmp_path / "ntk-permute-figure1.png").is_file()
    assert {r.our_value for r in results if r.metric == "M" and "ensemble size M" in r.claim} == {944, 152, 284, 46}
    assert ntk_permute.PAPER.startswith("arXiv:")


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> object:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_analytic_closed_form(capsys: pytest.CaptureFixture[str]) -> None:
    out = _json(capsys, ["analytic", "--k", "8", "--m", "2", "3", "--json"])
    assert isinstance(out, dict)
    assert out["ntk"][0]["mu_on"] == pytest.approx(0.5639386392, abs=1e-9)
    assert out["nngp"][1]["mu_off"] == pytest.approx(-0.0503996584, abs=1e-9)
    assert main(["analytic", "--k", "4", "--kind", "ntk"]) == 0
    assert "mu_on" in capsys.readouterr().err


def test_analytic_exhaustive(capsys: pytest.CaptureFixture[str]) -> None:
    out = _json(capsys, ["analytic", "--k", "6", "--exhaustive", "--perms", "3", "--json"])
    assert isinstance(out, dict)
    assert out["ntk"]["n_exact"] == [63, 63, 63] and out["nngp"]["all_exact"] is True
    strict = _json(
        capsys, ["analytic", "--k", "6", "--exhaustive", "--eps", "0", "--t", "120", "--kind", "ntk", "--json"]
    )
    assert isinstance(strict, dict) and strict["ntk"]["n_exact"] == [57]  # the 6 training inputs fail


def test_complexity(capsys: pytest.CaptureFixture[str]) -> None:
    rows = _json(capsys, ["complexity", "--k", "8", "--delta", "0.1", "0.01", "--json"])
    assert isinstance(rows, list)
    sizes = {(r["kind"], r["delta"], r["bound"]): r["M"] for r in rows}
    assert sizes[("ntk", 0.01, "all")] == 944 and sizes[("nngp", 0.01, "all")] == 152
    assert sizes[("ntk", 0.1, "single")] == 284 and sizes[("nngp", 0.1, "single")] == 46


@pytest.mark.parametrize(
    "argv",
    [
        ["analytic", "--k", "0"],
        ["analytic", "--k", "4", "--m", "9"],
        ["analytic", "--k", "4", "--exhaustive", "--perms", "0"],
        ["complexity", "--k", "8", "--delta", "2"],
        ["analytic", "--k", "4", "--w-std", "-1"],
    ],
)
def test_bad_input_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "error:" in err
