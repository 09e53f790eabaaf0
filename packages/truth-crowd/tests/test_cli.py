"""The truth-crowd CLI: repro conventions (repro_core.testing), every subcommand with --json, bad input -> exit 2."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import truth_crowd
from repro_core.report import Verdict
from repro_core.testing import check_package_cli, check_reproduction
from truth_crowd.cli import main
from truth_crowd.reproduction import DESIGN_CLAIMS, quick


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def test_cli_conventions(tmp_path: Path) -> None:
    check_package_cli("truth-crowd", main, tmp_path)


def test_quick_reproduction_measures_claims(tmp_path: Path) -> None:
    results = check_reproduction("truth-crowd", quick, tmp_path)
    assert truth_crowd.PAPER.startswith("arXiv:")
    by_claim = {r.claim: r for r in results}
    sim = by_claim["simulated IPM-like run (embedded default data): statements with exactly 10 judgments"]
    assert sim.verdict is Verdict.REPRODUCED
    gain = next(r for r in results if "Dawid-Skene accuracy minus" in r.claim)
    assert gain.our_value is not None and gain.our_value > 0.03
    design = [by_claim[claim] for claim, _, _ in DESIGN_CLAIMS]
    # Real data present: every design count reproduced; absent: pending, with the reason.
    assert all(r.verdict is Verdict.REPRODUCED for r in design) or all(
        r.verdict is Verdict.PENDING and "not found" in r.note for r in design
    )


def test_subcommands_json_on_simulated_data(tmp_path: Path) -> None:
    code, out, err = _run(["validate", "--simulate", "--json"])
    assert code == 0, err
    counts = json.loads(out)["counts"]
    assert counts["workers"] == 200 and counts["statements"] == 180 and counts["rows"] == 2200

    code, out, err = _run(["qc", "--simulate", "--json"])
    assert code == 0, err
    summary = {r["check"]: r for r in json.loads(out)["summary"]}
    assert set(summary) == {"completeness", "gold", "time", "tries", "url_domain"}

    code, out, err = _run(
        [
            "agreement",
            "--simulate",
            "--levels",
            "interval",
            "--items",
            "overall_truthfulness",
            "--bootstrap",
            "20",
            "--json",
        ]
    )
    assert code == 0, err
    rows = json.loads(out)["alpha"]
    assert {r["group"] for r in rows} == {"politifact", "abc", "ALL"}
    assert all(r["low"] <= r["alpha"] <= r["high"] for r in rows)

    csv_path = tmp_path / "agg.csv"
    for method in ("mean", "median", "mv", "ds", "onecoin", "glad", "mace", "wawa", "zbs"):
        code, out, err = _run(["aggregate", "--simulate", "--method", method, "--out", str(csv_path), "--json"])
        assert code == 0, err
        payload = json.loads(out)
        assert payload["n_statements"] == 180 and csv_path.is_file()


def test_generic_long_csv_with_column_mapping(tmp_path: Path) -> None:
    path = tmp_path / "answers.csv"
    path.write_text("WorkerId,Task,Item,Answer\nw1,s1,ot,2\nw2,s1,ot,1\nw1,s2,ot,-2\nw2,s2,ot,-1\n")
    code, out, err = _run(
        [
            "aggregate",
            "--data",
            str(path),
            "--format",
            "long",
            "--map",
            "worker_id=WorkerId",
            "--map",
            "statement_id=Task",
            "--map",
            "item=Item",
            "--map",
            "value=Answer",
            "--item",
            "ot",
            "--json",
        ]
    )
    assert code == 0, err
    values = {r["statement_id"]: r["value"] for r in json.loads(out)["aggregates"]}
    assert values == {"s1": 1.5, "s2": -1.5}


def test_bad_input_exits_2_naming_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("worker_id,statement_id,item,value\nw1,s1,ot,1\nw2,s1,ot,7\n")
    code, out, err = _run(["validate", "--data", str(path), "--format", "long"])
    assert code == 2 and out == ""
    assert "Traceback" not in err and f"{path}:3" in err and "'value'" in err and len(err.strip().splitlines()) == 1

    code, _, err = _run(["validate", "--data", str(tmp_path / "missing.csv")])
    assert code == 2 and "missing.csv" in err
    code, _, err = _run(["validate", "--data", str(path), "--format", "long", "--map", "oops"])
    assert code == 2 and "--map" in err


def test_report_on_simulated_data(tmp_path: Path) -> None:
    out_dir = tmp_path / "report"
    code, out, err = _run(["report", "--simulate", "--out", str(out_dir), "--bootstrap", "0", "--json"])
    assert code == 0, err
    payload = json.loads(out)
    for name in ("levels.png", "correlations.png", "agreement.png", "time_by_position.png", "report.md"):
        assert (out_dir / name).is_file() and (out_dir / name).stat().st_size > 0, name
    assert {"phi", "alpha", "external_adjacent", "pca", "learning_mixed"} <= set(payload["tables"])
    text = (out_dir / "report.md").read_text()
    assert "## Crowd against experts" in text and "![levels](levels.png)" in text
    code, _, err = _run(["report", "--simulate", "--out", str(out_dir), "--bootstrap", "1"])
    assert code == 2 and "--bootstrap" in err


def test_report_on_real_data(tmp_path: Path, shared_data: Path) -> None:
    data = shared_data / "truth-crowd" / "IPM2021" / "multidimensional.csv"
    code, out, err = _run(["report", "--data", str(data), "--out", str(tmp_path), "--bootstrap", "0", "--json"])
    assert code == 0, err
    tables = json.loads(out)["tables"]
    counts = {r["dataset"]: 0 for r in tables["external_levels"]}
    for r in tables["external_levels"]:
        counts[r["dataset"]] += r["n"]
    assert counts == {"politifact": 120, "abc": 60}
    assert len(tables["phi"]) == 9 * 3 and all(-1 < r["phi"] < 1 for r in tables["phi"])
    assert sum(r["n"] for r in tables["learning_per_position"] if r["block"] == "all") == 2200
