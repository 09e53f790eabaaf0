"""Bad input on the command line (issue #13): every option of every subcommand, fed bad numbers, choices and files,
answers one line on stderr and exit 2 (repro_core's harness); and the loader and data findings of the issue, each
with its own regression test."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from repro_core.errors import InputError
from repro_core.testing import check_cli_rejects_bad_input, run_cli
from truth_crowd.cli import build_parser, main
from truth_crowd.io import IPM_ITEM_STEMS, load_csv, load_ipm2021
from truth_crowd.schema import ITEMS

_PF_LEVELS = ("LIE", "FALSE", "BARELYTRUE", "HALFTRUE", "MOSTLYTRUE", "TRUE")
_ABC_LEVELS = ("Negative", "In_Between", "Positive")
_PF_LABELS = ("pants-on-fire", "false", "barely-true", "half-true", "mostly-true", "true")
_ABC_LABELS = ("negative", "in-between", "positive")


def write_ipm(path: Path, *, n_workers: int = 6, seed: int = 0) -> Path:
    """A small file in the layout of the 16-column IPM2021 release: every worker judges 18 real statements (the
    label columns naming each one's level) and both gold statements."""
    rng = np.random.default_rng(seed)
    statements = [
        (f"{party}_{level}_doc1", "politifact", label, "", k / 5)
        for party in ("DEM", "REP")
        for k, (level, label) in enumerate(zip(_PF_LEVELS, _PF_LABELS, strict=True))
    ]
    statements += [
        (f"{party}_{level}_doc1", "abc", "", label, k / 2)
        for party in ("Labor", "Liberal")
        for k, (level, label) in enumerate(zip(_ABC_LEVELS, _ABC_LABELS, strict=True))
    ]
    statements += [("LOW", "gold_question", "", "", 0.0), ("HIGH", "gold_question", "", "", 1.0)]
    header = ["unit_id", "doc_index", "doc_name", "doc_source"]
    header += ["doc_ground_truth_politifact_label", "doc_ground_truth_abc_label"]
    header += [f"doc_{stem}_value" for stem in IPM_ITEM_STEMS.values()]
    lines = [",".join(header)]
    for worker in range(n_workers):
        for position, (name, source, pf_label, abc_label, truth) in enumerate(statements):
            values = np.clip(np.rint(4 * truth - 2 + rng.normal(0, 0.8, len(IPM_ITEM_STEMS))), -2, 2).astype(int)
            row = [f"unit_{worker}", str(position), name, source, pf_label, abc_label, *map(str, values)]
            lines.append(",".join(row))
    path.write_text("\n".join(lines) + "\n")
    return path


def write_wide(path: Path, *, n_workers: int = 4, n_statements: int = 6) -> Path:
    """A small generic wide file: one row per (worker, statement), the nine items as columns."""
    rng = np.random.default_rng(1)
    lines = ["worker_id,statement_id,dataset," + ",".join(ITEMS)]
    for worker in range(n_workers):
        for statement in range(n_statements):
            values = rng.integers(-2, 3, len(ITEMS))
            lines.append(f"w{worker},s{statement},politifact," + ",".join(map(str, values)))
    path.write_text("\n".join(lines) + "\n")
    return path


def write_long(path: Path) -> Path:
    path.write_text("worker_id,statement_id,item,value\nw1,s1,ot,2\nw2,s1,ot,1\nw1,s2,ot,-2\nw2,s2,ot,-1\n")
    return path


def test_every_subcommand_rejects_bad_input(tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    ipm = str(write_ipm(inputs / "multidimensional.csv"))
    wide = str(write_wide(inputs / "wide.csv"))
    long = str(write_long(inputs / "long.csv"))
    gold = inputs / "gold.csv"
    gold.write_text("statement_id,label\ns1,2\n")
    cases = {
        "validate": ["--data", ipm, "--seed", "1"],
        "qc": ["--data", ipm, "--min-seconds", "2", "--max-tries", "10"],
        "agreement": ["--data", wide, "--format", "wide", "--levels", "interval", "--bootstrap", "20", "--icc"],
        "aggregate": [
            "--data",
            long,
            "--format",
            "long",
            "--item",
            "ot",
            "--method",
            "gold-mv",
            "--tie-break",
            "highest",
            "--gold",
            str(gold),
            "--missing-skill",
            "0.5",
            "--mmsr-vote",
            "normalised",
            "--mace-method",
            "em",
            "--worker-metrics",
        ],
        "analyze": [
            "--data",
            ipm,
            "--analyses",
            "correlations",
            "factors",
            "--n-factors",
            "2",
            "--rotation",
            "varimax",
            "--phi-samples",
            "50",
            "--folds",
            "2",
            "--seeds",
            "0",
            "--models",
            "naive_bayes",
        ],
        "report": ["--data", ipm, "--out", str(tmp_path / "report"), "--bootstrap", "0", "--phi-samples", "50"],
        "reproduce": ["--out", str(tmp_path / "reproduction"), "--seed", "0"],
        # A closed port: the harness only runs cases with one bad option, each refused before any download.
        "data fetch": ["--dest", str(tmp_path / "fetched"), "--url", "http://127.0.0.1:9/", "--timeout", "5"],
    }
    counts = check_cli_rejects_bad_input(build_parser(), main, cases, tmp_path, max_examples=80)
    print("bad-input cases per subcommand:", counts)
    assert set(counts) == set(cases) and all(counts[c] > 0 for c in cases), counts


# --- the findings of issue #13, one regression test each ------------------------------------------------------


def test_header_only_file_is_an_input_error_not_a_key_error(tmp_path: Path) -> None:
    """A header-only file loaded 0 judgments and `agreement` died with KeyError 'alpha'."""
    long = tmp_path / "header-only.csv"
    long.write_text("worker_id,statement_id,item,value\n")
    with pytest.raises(InputError, match="no judgments") as info:
        load_csv(long)
    assert (info.value.path, info.value.line) == (str(long), 2)
    ipm = tmp_path / "multidimensional.csv"
    ipm.write_text(write_ipm(tmp_path / "full.csv").read_text().splitlines()[0] + "\n")
    with pytest.raises(InputError, match="no judgments"):
        load_ipm2021(ipm)
    for argv in (["agreement", "--data", str(long), "--format", "long"], ["agreement", "--data", str(ipm)]):
        code, out, err = run_cli(main, argv)
        assert code == 2 and out == "" and "no judgments" in err and len(err.splitlines()) == 1, err


def test_one_worker_is_refused_instead_of_a_silent_nan(tmp_path: Path) -> None:
    """One worker only: alpha was NaN with exit 0."""
    path = tmp_path / "one-worker.csv"
    path.write_text("worker_id,statement_id,item,value\nw1,s1,ot,2\nw1,s2,ot,-1\nw1,s3,ot,0\n")
    code, out, err = run_cli(main, ["agreement", "--data", str(path), "--format", "long", "--json"])
    assert code == 2 and out == "" and len(err.splitlines()) == 1, err
    assert str(path) in err and "'worker_id'" in err and "at least 2 workers" in err
    ipm = write_ipm(tmp_path / "multidimensional.csv", n_workers=1)
    code, out, err = run_cli(main, ["report", "--data", str(ipm), "--out", str(tmp_path / "report")])
    assert code == 2 and "at least 2 workers" in err and not (tmp_path / "report").exists(), err


def test_undefined_alpha_is_reported_not_silent(tmp_path: Path) -> None:
    """Every worker giving the same value leaves alpha undefined: the NaN is named on stderr."""
    path = tmp_path / "same.csv"
    path.write_text("worker_id,statement_id,item,value\nw1,s1,ot,1\nw2,s1,ot,1\nw1,s2,ot,1\nw2,s2,ot,1\n")
    code, out, err = run_cli(main, ["agreement", "--data", str(path), "--format", "long", "--json"])
    assert code == 0 and "alpha is undefined" in err and "ot (ALL, interval)" in err, err
    assert json.loads(out)["alpha"][-1]["alpha"] is None


def test_ids_with_surrounding_whitespace_are_stripped(tmp_path: Path) -> None:
    """' w1' and 'w1' were two workers (and ' ot' vs 'ot' crashed the long pivot with a ValueError)."""
    path = tmp_path / "spaces.csv"
    path.write_text("worker_id,statement_id,item,value\n w1 ,s1, ot,2\nw2, s1 ,ot,1\nw1,s2,ot ,-2\nw2,s2,ot,-1\n")
    data = load_csv(path)
    assert sorted(data.judgments["worker_id"]) == ["w1", "w1", "w2", "w2"] and data.items == ("ot",)
    duplicate = tmp_path / "duplicate.csv"
    duplicate.write_text("worker_id,statement_id,item,value\nw1,s1,ot,2\nw1,s1, ot,1\n")
    with pytest.raises(InputError, match="duplicate") as info:
        load_csv(duplicate)
    assert (info.value.line, info.value.field) == (3, "item")
    wide = tmp_path / "wide.csv"
    wide.write_text("worker_id,statement_id,dataset,ot\nw1,s1, politifact ,2\nw1 ,s1,politifact,1\n")
    with pytest.raises(InputError, match="duplicate"):
        load_csv(wide, layout="wide")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x00\x89PNG\r\n", "not UTF-8"),
        (b"caf\xe9 \xff\xfe\n", "not UTF-8"),
        (b"worker_id,statement_id,item,value\nw1,s1,ot,2\nw2,s1,ot,", "missing value"),
        (b'worker_id,statement_id,item,value\nw1,"s1', "malformed CSV"),
        (b"worker_id,statem", "missing required column"),
    ],
)
def test_binary_and_truncated_files_name_the_file(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "answers.csv"
    path.write_bytes(content)
    code, out, err = run_cli(main, ["aggregate", "--data", str(path), "--format", "long", "--item", "ot"])
    assert code == 2 and out == "" and len(err.splitlines()) == 1 and str(path) in err and message in err, err


def test_generic_data_without_the_columns_a_command_needs(tmp_path: Path) -> None:
    """qc on a wide file without try numbers, and report and analyze without expert labels, died with KeyError."""
    wide = str(write_wide(tmp_path / "wide.csv"))
    code, out, err = run_cli(main, ["qc", "--data", wide, "--format", "wide"])
    assert code == 2 and out == "" and "'time_elapsed_s'" in err and len(err.splitlines()) == 1, err
    code, out, err = run_cli(main, ["report", "--data", wide, "--format", "wide", "--out", str(tmp_path / "r")])
    assert code == 2 and "expert labels" in err and "'gt_value'" in err and not (tmp_path / "r").exists(), err
    code, out, err = run_cli(main, ["analyze", "--data", wide, "--format", "wide", "--analyses", "external", "pca"])
    assert code == 2 and out == "" and "more than 7 statements" in err and len(err.splitlines()) == 1, err
    wide = str(write_wide(tmp_path / "wide.csv", n_statements=12))
    code, out, err = run_cli(main, ["analyze", "--data", wide, "--format", "wide", "--analyses", "external", "pca"])
    assert code == 0 and "external: skipped, the data has no expert labels" in err and "== pca ==" in out, err


def test_output_paths_are_checked_before_any_work(tmp_path: Path) -> None:
    long = str(write_long(tmp_path / "long.csv"))
    code, _, err = run_cli(main, ["aggregate", "--data", long, "--format", "long", "--item", "ot", "--out", "."])
    assert code == 2 and "--out" in err and len(err.splitlines()) == 1, err
    ipm = str(write_ipm(tmp_path / "multidimensional.csv"))
    code, _, err = run_cli(main, ["report", "--data", ipm, "--out", long])
    assert code == 2 and "--out" in err and len(err.splitlines()) == 1, err


def test_report_shows_progress_per_stage_and_is_quiet_with_q(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`report` was one long step without progress: each stage now advances a `repro_core.cli.progress` bar (plain
    lines on a non-terminal); with -q stderr stays empty and the result is on stdout."""
    import repro_core.cli
    import truth_crowd.report

    stages: list[str] = []
    counted: list[int] = []
    totals: list[int] = []

    def recording_progress(**kwargs: object) -> object:
        bar = repro_core.cli.progress(**kwargs)
        totals.append(bar.total)
        show, advance = bar.set_postfix_str, bar.update

        def set_postfix_str(text: str, refresh: bool = True) -> None:
            stages.append(text)
            show(text, refresh=refresh)

        def update(n: int = 1) -> None:
            counted.append(n)
            advance(n)

        bar.set_postfix_str, bar.update = set_postfix_str, update
        return bar

    monkeypatch.setattr(truth_crowd.report, "progress", recording_progress)
    ipm = str(write_ipm(tmp_path / "multidimensional.csv"))
    argv = ["report", "--data", ipm, "--out", str(tmp_path / "report"), "--phi-samples", "50", "-q"]
    code, out, err = run_cli(main, argv)
    assert code == 0 and err == "" and out.startswith("report written to"), err
    assert stages[:3] == ["alpha", "phi", "crowd vs experts"] and stages[-1] == "writing"
    assert totals == [len(stages)] and sum(counted) == len(stages)
