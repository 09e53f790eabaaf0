"""Loaders and schema: the released IPM2021 file reproduces every design count of spec 6; bad input is refused
with an InputError naming the file, line and column; arbitrary CSV text never crashes a loader."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from repro_core.errors import InputError
from truth_crowd.describe import design_counts
from truth_crowd.io import (
    CrowdData,
    expert_level,
    load_csv,
    load_ipm2021,
    load_parquet,
    load_sigir2020,
    load_table,
    read_csv_records,
)
from truth_crowd.schema import ITEMS, to_crowdkit, to_long, to_reliability_matrix, validate_long


@pytest.fixture(scope="module")
def ipm_path(shared_data: Path) -> Path:
    path = shared_data / "truth-crowd" / "IPM2021" / "multidimensional.csv"
    if not path.is_file():
        pytest.skip(f"IPM2021 file not found at {path}")
    return path


@pytest.fixture(scope="module")
def ipm(ipm_path: Path) -> CrowdData:
    return load_ipm2021(ipm_path)


def test_ipm2021_design_counts(ipm: CrowdData) -> None:
    counts = design_counts(ipm)
    assert (counts["rows"], counts["source_columns"]) == (2200, 93)
    assert counts["workers"] == 200 and counts["items_per_hit"] == 11
    assert counts["statements"] == 180 and counts["statements_by_dataset"] == {"politifact": 120, "abc": 60}
    assert (counts["judgments_real"], counts["judgments_gold"]) == (1800, 400)
    assert counts["canonical_rows"] == 1799
    assert counts["judgments_per_statement"] == {9: 3, 10: 174, 11: 3}
    assert counts["canonical_judgments_per_statement"] == {9: 4, 10: 173, 11: 3}
    assert counts["values_per_judgment"] == 9 and counts["values_real"] == 16200
    assert counts["hit_composition_abc"] == {"2 Labor + 1 Liberal": 101, "1 Labor + 2 Liberal": 99}
    assert (counts["abc_block_first"], counts["abc_block_last"]) == (60, 140)


def test_ipm2021_tables_and_known_problems(ipm: CrowdData) -> None:
    j = ipm.judgments
    assert set(ITEMS) <= set(j.columns) and all(str(j[i].dtype) == "Int8" for i in ITEMS)
    assert j["position"].between(0, 10).all() and (j.groupby("worker_id")["position"].nunique() == 11).all()
    # unit_114's row: a gold text shown under a real doc_name -> dataset gold, dropped by the canonical filter.
    row = j[(j["worker_id"] == "unit_114") & (j["statement_id"] == "DEM_BARELYTRUE_doc7")]
    assert len(row) == 1 and row["dataset"].iloc[0] == "gold" and not row["is_gold"].iloc[0]
    assert j["shown_level_mismatch"].sum() == 10
    assert set(j.loc[j["shown_level_mismatch"], "statement_id"]) == {"DEM_BARELYTRUE_doc7"}
    assert any("unit_114" in d for d in ipm.decisions) and any("doc_ground_truth_value" in d for d in ipm.decisions)
    # Expert labels come from doc_name, never from doc_ground_truth_value.
    s = ipm.statements
    pf, abc = s[s["dataset"] == "politifact"], s[s["dataset"] == "abc"]
    assert pf["gt_value"].value_counts().to_dict() == {v: 20 for v in range(6)}
    assert abc["gt_value"].value_counts().to_dict() == {v: 20 for v in range(3)}
    assert s.loc["DEM_LIE_doc1", "gt_label"] == "pants-on-fire" and s.loc["DEM_LIE_doc1", "gt_norm"] == -2.0
    assert s.loc["Labor_In_Between_doc3", "gt_norm"] == 0.0
    w = ipm.workers
    assert len(w) == 200 and w["crt_score"].between(0, 3).all() and (w["n_judgments"] == 11).all()
    long = ipm.real().long()
    assert len(long) == 1799 * 9 and set(long["item"]) == set(ITEMS)


def test_drop_broken_removes_exactly_dem_barelytrue_doc7(ipm_path: Path) -> None:
    data = load_ipm2021(ipm_path, drop_broken=True)
    assert len(data.judgments) == 2200 - 10
    assert "DEM_BARELYTRUE_doc7" not in set(data.judgments["statement_id"])
    assert len(data.real().judgments) == 1799 - 9


def test_reduced_16_column_release_loads(ipm_path: Path, tmp_path: Path) -> None:
    """The upstream HEAD copy keeps 16 columns and the 1,800 non-gold-name rows (unit_114 included)."""
    full = pd.read_csv(ipm_path)
    columns = [
        "unit_id",
        "doc_index",
        "doc_name",
        "doc_statement",
        "doc_ground_truth_abc_label",
        "doc_ground_truth_politifact_label",
        "doc_source",
    ] + [c for c in full.columns if c.endswith("_value") and c.startswith("doc_") and "ground" not in c]
    reduced = full.loc[~full["doc_name"].isin(["HIGH", "LOW"]), columns]
    assert reduced.shape == (1800, 16)
    path = tmp_path / "head.csv"
    reduced.to_csv(path, index=False)
    data = load_ipm2021(path)
    assert len(data.real().judgments) == 1799 and data.judgments["time_elapsed_s"].isna().all()


def test_sigir2020_statements(shared_data: Path) -> None:
    directory = shared_data / "truth-crowd" / "SIGIR2020"
    if not directory.is_dir():
        pytest.skip(f"SIGIR2020 folder not found at {directory}")
    table = load_sigir2020(directory)
    assert len(table) == 180 and table["dataset"].value_counts().to_dict() == {"politifact": 120, "abc": 60}
    assert table["gt_value"].notna().all() and table["gt_norm"].between(-2, 2).all()


def test_expert_level_tokens() -> None:
    assert expert_level("DEM_BARELYTRUE_doc7") == ("politifact", 2, 6, "DEM")
    assert expert_level("REP_LIE_doc10") == ("politifact", 0, 6, "REP")
    assert expert_level("Liberal_Positive_doc3") == ("abc", 2, 3, "Liberal")
    assert expert_level("HIGH") is None


_HEADER = "unit_id,doc_index,doc_name,doc_source," + ",".join(
    f"doc_{stem}_value"
    for stem in (
        "overall-truthfulness",
        "confidence",
        "correctness",
        "neutrality",
        "comprehensibility",
        "precision",
        "completeness",
        "speaker's-trustworthiness",
        "informativeness",
    )
)


def _ipm_text(rows: list[str]) -> io.StringIO:
    buffer = io.StringIO(_HEADER + "\n" + "\n".join(rows) + "\n")
    buffer.name = "mini.csv"
    return buffer


@pytest.mark.parametrize(
    ("row", "line", "field"),
    [
        ("u1,0,DEM_LIE_doc1,politifact,3,0,0,0,0,0,0,0,0", 3, "doc_overall-truthfulness_value"),
        ("u1,0,DEM_LIE_doc1,politifact,x,0,0,0,0,0,0,0,0", 3, "doc_overall-truthfulness_value"),
        ("u1,0,DEM_LIE_doc1,politifact,0.5,0,0,0,0,0,0,0,0", 3, "doc_overall-truthfulness_value"),
        ("u1,0,DEM_LIE_doc1,somewhere,0,0,0,0,0,0,0,0,0", 3, "doc_source"),
        ("u1,0,DEM_WRONG_doc1,politifact,0,0,0,0,0,0,0,0,0", 3, "doc_name"),
        ("u1,-1,DEM_LIE_doc2,politifact,0,0,0,0,0,0,0,0,0", 3, "doc_index"),
        ("u0,1,DEM_LIE_doc1,politifact,0,0,0,0,0,0,0,0,0", 3, "statement_id"),
        (",1,DEM_LIE_doc2,politifact,0,0,0,0,0,0,0,0,0", 3, "unit_id"),
    ],
)
def test_ipm_loader_names_line_and_field(row: str, line: int, field: str) -> None:
    good = "u0,0,DEM_LIE_doc1,politifact,0,0,0,0,0,0,0,0,0"
    with pytest.raises(InputError) as info:
        load_ipm2021(_ipm_text([good, row]))
    assert info.value.path == "mini.csv" and info.value.line == line and info.value.field == field


def test_missing_columns_and_ragged_rows() -> None:
    with pytest.raises(InputError, match="missing column") as info:
        load_ipm2021(io.StringIO("unit_id,doc_name\nu1,x\n"))
    assert info.value.field == "doc_index"
    with pytest.raises(InputError, match="fields") as info:
        read_csv_records(io.StringIO("a,b\n1,2\n1,2,3\n"))
    assert info.value.line == 3
    with pytest.raises(InputError, match="duplicate column"):
        read_csv_records(io.StringIO("a,a\n1,2\n"))
    # A quoted field spanning lines keeps the line numbers right.
    frame = read_csv_records(io.StringIO('a,b\n"x\ny",1\nz,2\n'))
    assert frame["_line"].tolist() == [2, 4]


def test_generic_loader_long_and_wide() -> None:
    long = io.StringIO("w,s,i,v,t\nA,s1,ot,2,3.5\nB,s1,ot,-1,4\nA,s2,ot,0,1\nA,s1,conf,1,3.5\n")
    data = load_csv(
        long, columns={"worker_id": "w", "statement_id": "s", "item": "i", "value": "v", "time_elapsed_s": "t"}
    )
    assert data.items == ("ot", "conf") and len(data.judgments) == 3
    assert data.judgments.set_index(["worker_id", "statement_id"]).loc[("B", "s1"), "conf"] is pd.NA
    wide = io.StringIO("worker_id,statement_id,ot,conf\nA,s1,2,1\nB,s1,-1,\n")
    data = load_csv(wide, layout="wide")
    assert data.items == ("ot", "conf") and str(data.judgments["ot"].dtype) == "Int8"
    with pytest.raises(InputError, match="duplicate") as info:
        load_csv(io.StringIO("worker_id,statement_id,item,value\nA,s1,ot,1\nA,s1,ot,2\n"))
    assert info.value.line == 3 and info.value.field == "item"
    with pytest.raises(InputError, match="not in the file"):
        load_csv(io.StringIO("a\n1\n"), columns={"worker_id": "nope"})


def test_conversions_between_layouts() -> None:
    wide = pd.DataFrame(
        {"worker_id": ["a", "b", "a"], "statement_id": ["s", "s", "t"], "ot": pd.array([1, 2, None], dtype="Int8")}
    )
    long = to_long(wide, ["ot"])
    assert len(long) == 2 and list(long.columns[:4]) == ["worker_id", "statement_id", "item", "value"]
    validate_long(long)
    answers = to_crowdkit(wide, "ot")
    assert list(answers.columns) == ["worker", "task", "label"] and answers["label"].tolist() == [1, 2]
    matrix = to_reliability_matrix(wide, "ot")
    assert matrix.shape == (2, 1) and np.isfinite(matrix.to_numpy()).all()


_CSV_TEXT = st.text(alphabet=st.sampled_from(list('ab,"\n\r -.0123x_\x00é')), max_size=120)
_CSV_ROWS = st.lists(
    st.lists(st.sampled_from(["", "1", "-2", "2.5", "x", "w1", "s1", "ot", '"q"', "1e9"]), min_size=4, max_size=4),
    max_size=6,
)


@settings(max_examples=150)
@given(text=_CSV_TEXT, rows=_CSV_ROWS, header=st.booleans())
def test_loaders_never_crash_on_arbitrary_csv(text: str, rows: list[list[str]], header: bool) -> None:
    body = ("worker_id,statement_id,item,value\n" if header else "") + "\n".join(",".join(r) for r in rows) + text
    for load in (lambda s: load_csv(s), lambda s: load_csv(s, layout="wide"), load_ipm2021):
        try:
            data = load(io.StringIO(body))
        except InputError as exc:
            assert str(exc)
        else:
            assert isinstance(data, CrowdData)


def test_parquet_loader_with_column_mapping(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow", reason="pyarrow is the optional [parquet] extra")
    mapping = {"worker_id": "W", "statement_id": "T", "item": "I", "value": "V"}
    long = pd.DataFrame(
        {"W": ["w1", "w1", "w2", "w2"], "T": [1, 1, 1, 2], "I": ["ot", "cf", "ot", "ot"], "V": [1, -2, 2, 0]}
    )
    long.to_parquet(tmp_path / "long.parquet")
    data = load_table(tmp_path / "long.parquet", columns=mapping)
    csv_twin = tmp_path / "long.csv"
    long.to_csv(csv_twin, index=False)
    twin = load_table(csv_twin, columns=mapping)
    assert data.judgments.equals(twin.judgments) and data.items == ("ot", "cf")
    assert data.judgments["statement_id"].tolist() == ["1", "1", "2"]  # numeric ids become strings
    wide = pd.DataFrame({"worker_id": ["a", "b"], "statement_id": ["s", "s"], "ot": [1.0, np.nan], "cf": ["1", "2"]})
    wide.to_parquet(tmp_path / "wide.parquet")
    assert load_parquet(tmp_path / "wide.parquet", layout="wide").judgments["ot"].isna().tolist() == [False, True]
    # Bad input names the file, the 1-based row and the column.
    long.assign(V=[1, -2, 7, 0]).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(InputError, match="not on the") as info:
        load_parquet(tmp_path / "bad.parquet", columns=mapping)
    assert (info.value.line, info.value.field) == (3, "value") and "bad.parquet" in str(info.value)
    wide.assign(cf=["1", "zz"]).to_parquet(tmp_path / "text.parquet")
    with pytest.raises(InputError, match="non-numeric") as info:
        load_parquet(tmp_path / "text.parquet", layout="wide")
    assert (info.value.line, info.value.field) == (2, "cf")
    pd.DataFrame({"worker_id": ["a"], "statement_id": ["s"], "ot": [[1, 2]]}).to_parquet(tmp_path / "nested.parquet")
    with pytest.raises(InputError, match="non-scalar"):
        load_parquet(tmp_path / "nested.parquet", layout="wide")
    (tmp_path / "junk.parquet").write_text("worker_id,statement_id\n")
    with pytest.raises(InputError, match="Parquet"):
        load_parquet(tmp_path / "junk.parquet")
    with pytest.raises(InputError, match="missing required column"):
        load_parquet(tmp_path / "long.parquet")


def test_parquet_without_pyarrow_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from repro_core.errors import MissingExtraError

    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(MissingExtraError, match=r"truth-crowd\[parquet\]"):
        load_parquet(tmp_path / "any.parquet")
