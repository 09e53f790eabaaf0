"""The truth-crowd CLI: repro conventions (repro_core.testing), every subcommand with --json, bad input -> exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import truth_crowd
from repro_core.report import Verdict
from repro_core.testing import check_package_cli, check_reproduction, run_cli
from truth_crowd.cli import main
from truth_crowd.reproduction import (
    DESIGN_CLAIMS,
    HOW_TO_GET_DATA,
    MEASURED_CLAIMS,
    SIGIR2020_CLAIMS,
    _real_claims,
    quick,
)
from truth_crowd.schema import ITEMS


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
    # Real data present: every design count reproduced; absent: needs data, with how to get it.
    assert all(r.verdict is Verdict.REPRODUCED for r in design) or all(
        r.verdict is Verdict.NEEDS_DATA and HOW_TO_GET_DATA in r.note for r in design
    )
    assert not any("spec" in r.note for r in results)  # users have no spec file: notes cite the paper


def test_reproduction_without_data_says_how_to_get_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue #14: the 21 design rows said *pending* ("not implemented yet") when only the data was missing."""
    monkeypatch.setenv("REPRO_SHARED_DATA", str(tmp_path))  # a folder without the IPM2021 file
    monkeypatch.setenv("TRUTH_CROWD_DATA_DIR", str(tmp_path))  # and no fetched copy
    rows = _real_claims()
    assert len(DESIGN_CLAIMS) == 21 and len(rows) == len(DESIGN_CLAIMS) + len(MEASURED_CLAIMS) + len(SIGIR2020_CLAIMS)
    assert all(r.verdict is Verdict.NEEDS_DATA and r.note.endswith(HOW_TO_GET_DATA) for r in rows)
    assert "REPRO_SHARED_DATA" in HOW_TO_GET_DATA and "truth-crowd data fetch" in HOW_TO_GET_DATA


def test_subcommands_json_on_simulated_data(tmp_path: Path) -> None:
    code, out, err = run_cli(main, ["validate", "--simulate", "--json"])
    assert code == 0, err
    counts = json.loads(out)["counts"]
    assert counts["workers"] == 200 and counts["statements"] == 180 and counts["rows"] == 2200

    code, out, err = run_cli(main, ["qc", "--simulate", "--json"])
    assert code == 0, err
    summary = {r["check"]: r for r in json.loads(out)["summary"]}
    assert set(summary) == {"completeness", "gold", "time", "tries", "url_domain"}

    code, out, err = run_cli(
        main,
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
        ],
    )
    assert code == 0, err
    rows = json.loads(out)["alpha"]
    assert {r["group"] for r in rows} == {"politifact", "abc", "ALL"}
    assert all(r["low"] <= r["alpha"] <= r["high"] for r in rows)

    csv_path = tmp_path / "agg.csv"
    for method in ("mean", "median", "mv", "ds", "onecoin", "glad", "mace", "wawa", "zbs"):
        code, out, err = run_cli(
            main, ["aggregate", "--simulate", "--method", method, "--out", str(csv_path), "--json"]
        )
        assert code == 0, err
        payload = json.loads(out)
        assert payload["n_statements"] == 180 and csv_path.is_file()


def test_generic_long_csv_with_column_mapping(tmp_path: Path) -> None:
    path = tmp_path / "answers.csv"
    path.write_text("WorkerId,Task,Item,Answer\nw1,s1,ot,2\nw2,s1,ot,1\nw1,s2,ot,-2\nw2,s2,ot,-1\n")
    code, out, err = run_cli(
        main,
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
        ],
    )
    assert code == 0, err
    values = {r["statement_id"]: r["value"] for r in json.loads(out)["aggregates"]}
    assert values == {"s1": 1.5, "s2": -1.5}


def test_bad_input_exits_2_naming_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("worker_id,statement_id,item,value\nw1,s1,ot,1\nw2,s1,ot,7\n")
    code, out, err = run_cli(main, ["validate", "--data", str(path), "--format", "long"])
    assert code == 2 and out == ""
    assert "Traceback" not in err and f"{path}:3" in err and "'value'" in err and len(err.strip().splitlines()) == 1

    code, _, err = run_cli(main, ["validate", "--data", str(tmp_path / "missing.csv")])
    assert code == 2 and "missing.csv" in err
    code, _, err = run_cli(main, ["validate", "--data", str(path), "--format", "long", "--map", "oops"])
    assert code == 2 and "--map" in err


def test_report_on_simulated_data(tmp_path: Path) -> None:
    out_dir = tmp_path / "report"
    code, out, err = run_cli(
        main, ["report", "--simulate", "--out", str(out_dir), "--bootstrap", "0", "--phi-samples", "100", "--json"]
    )
    assert code == 0, err
    payload = json.loads(out)
    for name in ("levels.png", "correlations.png", "agreement.png", "time_by_position.png", "report.md"):
        assert (out_dir / name).is_file() and (out_dir / name).stat().st_size > 0, name
    assert {"phi", "alpha", "external_adjacent", "pca", "factors", "learning_mixed"} <= set(payload["tables"])
    assert "phi_mle" not in payload["tables"]  # only with --bootstrap N
    assert "classify_summary" in payload["tables"] or "## Predicting" in (out_dir / "report.md").read_text()
    text = (out_dir / "report.md").read_text()
    assert "## Crowd against experts" in text and "![levels](levels.png)" in text
    code, _, err = run_cli(main, ["report", "--simulate", "--out", str(out_dir), "--bootstrap", "1"])
    assert code == 2 and "--bootstrap" in err


def test_report_on_real_data(tmp_path: Path, shared_data: Path) -> None:
    data = shared_data / "truth-crowd" / "IPM2021" / "multidimensional.csv"
    code, out, err = run_cli(
        main, ["report", "--data", str(data), "--out", str(tmp_path), "--phi-samples", "100", "--json"]
    )
    assert code == 0, err
    payload = json.loads(out)
    tables = payload["tables"]
    # The acceptance point: the report's tables agree with the documented design (200 workers, 180 statements,
    # 9 items; spec 6).
    design = payload["counts"]
    assert (design["workers"], design["statements"], design["values_per_judgment"]) == (200, 180, 9)
    assert design["canonical_rows"] == 1799 and design["values_real"] == 16200
    assert {r["item"] for r in tables["alpha"]} == set(ITEMS) and len(tables["alpha"]) == 9 * 3 * 3
    assert {r["level"] for r in tables["alpha"]} == {"interval", "ordinal", "nominal"}  # issue #12: nominal too
    # Issue #12 point 7: the judgment-level PCA beside the statement-level one, and crowd vs experts as two coders.
    assert len(tables["pca_judgment"]) == len(tables["pca"]) == 7
    assert tables["pca_judgment"][0]["eigenvalue"] != tables["pca"][0]["eigenvalue"]
    crowd_experts = {r["dataset"]: r for r in tables["crowd_expert_agreement"]}
    assert set(crowd_experts) == {"politifact", "abc"} and crowd_experts["politifact"]["n"] == 120
    assert all(0 < r["kappa_quadratic"] < 1 and 0 < r["alpha_interval"] < 1 for r in crowd_experts.values())
    text = (tmp_path / "report.md").read_text()
    assert "individual judgments" in text and "nominal ALL" in text and "weighted linearly" in text
    assert {r["n_items"] for r in tables["phi"]} == {120, 60, 180}
    assert len(tables["correlations_statement"]) == 9 * 8 // 2 and len(tables["factor_loadings"]) == 7
    assert sum(r["n"] for r in tables["external_levels"]) == 180
    assert sum(r["n"] for r in tables["evidence_sources"]) == 1799
    counts = {r["dataset"]: 0 for r in tables["external_levels"]}
    for r in tables["external_levels"]:
        counts[r["dataset"]] += r["n"]
    assert counts == {"politifact": 120, "abc": 60}
    assert len(tables["phi"]) == 9 * 3 and all(-1 < r["phi"] < 1 for r in tables["phi"])
    assert sum(r["n"] for r in tables["learning_per_position"] if r["block"] == "all") == 2200


def test_analyze_and_agreement_extras_json(tmp_path: Path) -> None:
    from repro_core.optional import has_module

    args = ["analyze", "--simulate", "--phi-samples", "100", "--models", "naive_bayes", "--json"]
    code, out, err = run_cli(main, args)
    assert code == 0, err
    payload = json.loads(out)
    tables = payload["tables"]
    expected = {"external_levels", "external_adjacent", "correlations", "pca", "factors", "factor_loadings"}
    assert expected | {"learning_mixed", "phi", "evidence_sources"} <= set(tables)
    assert len(tables["phi"]) == 9 * 3 and {r["method"] for r in tables["phi"]} == {"mcmc"}
    assert len(tables["factor_loadings"]) == 7 and {"F1", "F2", "uniqueness"} <= set(tables["factor_loadings"][0])
    if has_module("sklearn"):
        assert {r["model"] for r in tables["classify_summary"]} == {"majority", "naive_bayes"}
        assert payload["classify_protocol"]["n_splits"] == 5
    argv = ["analyze", "--simulate", "--analyses", "factors", "--n-factors", "3", "--level", "judgment"]
    code, out, err = run_cli(main, argv)
    assert code == 0 and "== factor_loadings ==" in out and "F3" in out, err
    code, _, err = run_cli(main, ["analyze", "--simulate", "--analyses", "factors", "--n-factors", "9"])
    assert code == 2 and "--n-factors" in err
    code, _, err = run_cli(main, ["analyze", "--simulate", "--item", "nope"])
    assert code == 2 and "--item" in err

    argv = ["agreement", "--simulate", "--items", "correctness", "--phi", "--kappa", "--bootstrap", "50", "--json"]
    code, out, err = run_cli(main, argv)
    assert code == 0, err
    payload = json.loads(out)
    assert {r["group"] for r in payload["phi"]} == {"politifact", "abc", "ALL"}
    assert all(r["low"] < r["phi"] < r["high"] for r in payload["phi"])
    assert len(payload["kappa"]) == 3 and all(r["low"] <= r["fleiss_kappa"] <= r["high"] for r in payload["kappa"])
    code, out, err = run_cli(main, ["agreement", "--simulate", "--items", "correctness", "--kappa"])
    assert code == 0 and "Fleiss' kappa" in out, err


def test_parquet_input_on_the_command_line(tmp_path: Path) -> None:
    import pandas as pd
    import pytest

    pytest.importorskip("pyarrow", reason="pyarrow is the optional [parquet] extra")
    path = tmp_path / "answers.parquet"
    frame = pd.DataFrame({"W": ["w1", "w2", "w1", "w2"], "T": ["s1", "s1", "s2", "s2"], "V": [2, 1, -2, -1]})
    frame.to_parquet(path)
    argv = ["aggregate", "--data", str(path), "--format", "wide", "--map", "worker_id=W", "--map", "statement_id=T"]
    code, out, err = run_cli(main, [*argv, "--item", "V", "--json"])
    assert code == 0, err
    assert {r["statement_id"]: r["value"] for r in json.loads(out)["aggregates"]} == {"s1": 1.5, "s2": -1.5}
    frame.assign(V=[2, 1, 9, -1]).to_parquet(path)
    code, out, err = run_cli(main, [*argv, "--item", "V"])
    assert code == 2 and f"{path}:3" in err and "'V'" in err
