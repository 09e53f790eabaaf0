"""Issue #12: the SIGIR 2020 crowd files in one call and one command (points 1), general scales (2), loader bad
input and DataFrames (4), statement-text keying, crowd vs experts and Randolph's kappa (7)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from repro_core.errors import InputError
from repro_core.testing import run_cli
from truth_crowd.agreement import krippendorff_alpha
from truth_crowd.analyses import crowd_expert_agreement
from truth_crowd.cli import main
from truth_crowd.io import load_csv, load_ipm2021, load_sigir2020_crowd, load_table
from truth_crowd.qc import GoldCheck
from truth_crowd.schema import LIKERT5, Scale, normalise_magnitudes

_PF = ("LIE", "FALSE", "BARELYTRUE", "HALFTRUE", "MOSTLYTRUE", "TRUE")
_PF_LABEL = ("pants-fire", "false", "barely-true", "half-true", "mostly-true", "true")
_ABC = ("Negative", "In_Between", "Positive")


def _statements() -> list[tuple[str, str, str, str, int, int]]:
    """(name_unique, source, statement_id, label, level, k) of 12 PolitiFact and 6 ABC statements."""
    rows = [
        (f"{p}_{lv}_doc1", "Politifact", f"{100 + 6 * j + k}.json", _PF_LABEL[k], k, 6)
        for j, p in enumerate(("DEM", "REP"))
        for k, lv in enumerate(_PF)
    ]
    rows += [
        (f"{p}_{lv}_doc1", "ABC", str(5000 + 3 * j + k), lv, k, 3)
        for j, p in enumerate(("Labor", "Liberal"))
        for k, lv in enumerate(_ABC)
    ]
    return rows


def write_sigir(
    path: Path, prefix: str, *, n_units: int = 6, high: int = 100, seed: int = 0, repeat_unit: bool = False
) -> Path:
    """A small crowd file in the layout of SIGIR2020 `S6.csv` with prefix `S3`/`S100`: every unit judges the 18
    statements and both gold ones (HIGH at the top of the scale, LOW at the bottom); answers follow the expert
    level plus noise. `repeat_unit`: unit_0 takes a second HIT at the end of the file."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = ["unit_id", f"{prefix}_document_position", f"{prefix}_amount_try"]
    header += [f"{prefix}_{c}" for c in ("age", "degree", "money", "consideration", "political_views")]
    header += [f"{prefix}_{c}" for c in ("southern_border", "climate", "cognitive_1", "cognitive_2", "cognitive_3")]
    header += ["statement_id", "name_unique", "statement", "speaker", "job", "context", "year", "party", "source"]
    header += [f"{prefix}_time_elapsed", f"{prefix}_truth_level", f"{prefix}_binger_query", f"{prefix}_binger_url"]
    header += ["politifact_label", "abc_label"]
    statements = _statements()
    units = [f"unit_{u}" for u in range(n_units)] + (["unit_0"] if repeat_unit else [])
    lines = [",".join(header)]
    for u, unit in enumerate(units):
        background = ["26-35", "College", "10000", "Democrat", "Liberal", "Agree", "Agree", "3.0", str(9 - u % 2), "4"]
        hit = [("", "gold_question", "HIGH", "", high, 2), ("", "gold_question", "LOW", "", 0, 2)]
        hit += [(n, s, sid, lab, round(lv / (k - 1) * high), k) for n, s, sid, lab, lv, k in statements]
        for position, (name, source, sid, label, truth, _) in enumerate(hit):
            noise = 0.0 if source == "gold_question" else rng.normal(0, high / 4)  # gold answered right
            answer = int(np.clip(np.rint(truth + noise), 0, high))
            pf = label if source == "Politifact" else ""
            abc = label if source == "ABC" else ""
            row = [unit, str(position), "10", *background, sid, name, f"text of {name or sid}", "someone", "", ""]
            row += [
                "2014",
                "DEM",
                source,
                f"{30 + position:.1f}",
                str(answer),
                "q",
                f"https://example.org/{u}",
                pf,
                abc,
            ]
            lines.append(",".join(row))
    path.write_text("\n".join(lines) + "\n")
    return path


def write_metadata(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    pf = ["statement_id,statement,speaker,year,party,label"]
    abc = ["statement_id,statement,speaker,year,party,label,article_url,verdict"]
    for name, source, sid, label, _, _ in _statements():
        if source == "Politifact":
            pf.append(f"{sid},text of {name},someone,2014,DEM,{label.replace('pants-fire', 'pants-on-fire')}")
        else:
            abc.append(f"{sid},text of {name},someone,2014,Labor,{label.replace('_', '-')},https://abc.net.au,ok")
    (folder / "Politifact.csv").write_text("\n".join(pf) + "\n")
    (folder / "ABC.csv").write_text("\n".join(abc) + "\n")
    return folder


# --- point 1: SIGIR 2020 crowd files ----------------------------------------------------------------------------


@pytest.mark.parametrize(("prefix", "high"), [("S3", 2), ("S100", 100)])
def test_sigir_fixture_loads_in_one_call(tmp_path: Path, prefix: str, high: int) -> None:
    write_metadata(tmp_path / "SIGIR2020")
    path = write_sigir(tmp_path / "SIGIR2020" / "crowd" / f"{prefix}.csv", prefix, high=high)
    data = load_sigir2020_crowd(path)
    assert (data.scale.low, data.scale.high) == (0, high) and data.items == ("overall_truthfulness",)
    j = data.judgments
    assert len(j) == 6 * 20 and j["is_gold"].sum() == 12 and set(j.loc[j["is_gold"], "statement_id"]) == {"HIGH", "LOW"}
    real = data.real()
    assert len(real.judgments) == 6 * 18 and set(real.statements["dataset"]) == {"politifact", "abc"}
    assert real.statements.loc["REP_TRUE_doc1", "gt_value"] == 5 and real.statements["metadata_agrees"].all()
    assert real.statements.loc["REP_TRUE_doc1", "gt_norm"] == high  # the expert level on the crowd's range
    assert real.statements.loc["REP_TRUE_doc1", "source_id"] == "111.json"
    assert data.workers.loc["unit_1", "crt_score"] == 2 and data.workers.loc["unit_0", "crt_score"] == 3
    assert (j["try_number"] == 1).all() and j["evidence_url"].notna().all()
    gold = GoldCheck()(data)  # gold rows keep their QC meaning: LOW < HIGH per worker
    assert gold.passed.all()
    same = load_table(path, layout="sigir2020")
    pd.testing.assert_frame_equal(same.judgments, data.judgments)


def test_sigir_duplicate_unit_policies(tmp_path: Path) -> None:
    path = write_sigir(tmp_path / "S3.csv", "S3", high=2, repeat_unit=True)
    first = load_sigir2020_crowd(path, metadata=False)
    assert first.judgments["worker_id"].nunique() == 6 and len(first.judgments) == 6 * 20
    assert any("kept each one's first HIT" in d and "unit_0" in d for d in first.decisions)
    separate = load_sigir2020_crowd(path, metadata=False, duplicate_units="separate")
    assert "unit_0#2" in set(separate.judgments["worker_id"]) and len(separate.judgments) == 7 * 20
    with pytest.raises(InputError, match="two HITs") as info:
        load_sigir2020_crowd(path, metadata=False, duplicate_units="refuse")
    assert (info.value.line, info.value.field) == (6 * 20 + 2, "unit_id")
    code, out, err = run_cli(
        main, ["validate", "--data", str(path), "--format", "sigir2020", "--duplicate-units", "refuse"]
    )
    assert code == 2 and out == "" and "two HITs" in err and len(err.splitlines()) == 1, err


def test_sigir_real_s6(shared_data: Path) -> None:
    data = load_sigir2020_crowd(shared_data / "truth-crowd" / "SIGIR2020" / "crowd" / "S6.csv")
    assert data.scale.domain == (0, 1, 2, 3, 4, 5)
    assert data.judgments["worker_id"].nunique() == 199 and len(data.judgments) == 2189
    real = data.real()
    assert len(real.judgments) == 1791 and len(real.statements) == 180
    assert real.statements["metadata_agrees"].sum() == 180
    assert (real.statements["dataset"] == "politifact").sum() == 120


def test_sigir_commands_accept_the_files(tmp_path: Path) -> None:
    path = str(write_sigir(tmp_path / "S100.csv", "S100", n_units=5))
    base = ["--data", path, "--format", "sigir2020"]
    code, out, err = run_cli(main, ["agreement", *base, "--kappa", "--randolph", "--json"])
    assert code == 0, err
    payload = json.loads(out)
    assert "0..100" in payload["scale"] and {r["level"] for r in payload["alpha"]} == {"interval", "ordinal", "nominal"}
    code, out, err = run_cli(main, ["aggregate", *base, "--method", "mean", "--json"])
    assert code == 0 and json.loads(out)["n_statements"] == 18, err
    code, out, err = run_cli(main, ["analyze", *base, "--analyses", "external", "--json"])
    assert code == 0 and "external_correlations" in json.loads(out)["tables"], err
    code, out, err = run_cli(main, ["report", *base, "--out", str(tmp_path / "report"), "--phi-samples", "20", "-q"])
    assert code == 0, err
    text = (tmp_path / "report" / "report.md").read_text()
    assert "0..100" in text and "no dimension items" in text


# --- point 2: general scales -------------------------------------------------------------------------------------


def test_scale_constructors_and_parse() -> None:
    hundred = Scale.range(0, 100)
    assert len(hundred.values) == 101 and hundred.labels == () and hundred.dtype == "Int8"
    assert Scale.range(0, 200).dtype == "Int16" and Scale.range(-40000, 40000, 1000).dtype == "Int32"
    assert Scale.range(0, 1, 0.25).values == (0.0, 0.25, 0.5, 0.75, 1.0) and Scale.range(0, 1, 0.25).dtype == "Float64"
    assert Scale.parse("likert5") is LIKERT5 and Scale.parse("0:100").domain == hundred.domain
    continuous = Scale.parse("0:1:continuous")
    assert continuous.domain is None and list(continuous.contains(np.array([0.3, 1.2, np.nan]))) == [True, False, False]
    magnitude = Scale.parse("magnitude")
    assert list(magnitude.contains(np.array([1e9, 0.5, 0.0, -1.0]))) == [True, True, False, False]
    categories = Scale.parse("cat:true,false,unsure")
    assert categories.nominal and categories.domain == (0, 1, 2) and categories.level == "nominal"
    for bad in ("0:", "cat:a", "1:0", "nonsense", "0:inf"):
        with pytest.raises(ValueError):
            Scale.parse(bad)
    code, out, err = run_cli(main, ["validate", "--simulate", "--scale", "1:0"])
    assert code == 2 and out == "" and "--scale" in err and len(err.splitlines()) == 1, err


def test_any_integer_or_real_scale_loads(tmp_path: Path) -> None:
    """A 0..200 scale could not load (values were stored as Int8); real values and magnitudes load too."""
    path = tmp_path / "wide.csv"
    path.write_text("worker_id,statement_id,ot\nw1,s1,200\nw2,s1,150\nw1,s2,0\nw2,s2,10\nw1,s3,120\nw2,s3,100\n")
    data = load_csv(path, layout="wide", scale=Scale.range(0, 200))
    assert str(data.judgments["ot"].dtype) == "Int16" and data.judgments["ot"].max() == 200
    with pytest.raises(InputError, match="not on the 0:100 scale"):
        load_csv(path, layout="wide", scale=Scale.range(0, 100))
    code, out, err = run_cli(main, ["agreement", "--data", str(path), "--format", "wide", "--scale", "0:200", "--json"])
    assert code == 0, err
    matrix = np.array([[200, 0, 120], [150, 10, 100]], dtype=float)
    alpha = {r["level"]: r["alpha"] for r in json.loads(out)["alpha"] if r["group"] == "ALL"}
    assert alpha["interval"] == pytest.approx(krippendorff_alpha(matrix, level="interval"), abs=1e-12)
    real = tmp_path / "real.csv"
    real.write_text("worker_id,statement_id,item,value\nw1,s1,x,0.25\nw2,s1,x,0.5\nw1,s2,x,0.75\nw2,s2,x,1.0\n")
    loaded = load_csv(real, scale=Scale.range(0, 1, step=None))
    assert loaded.judgments["x"].tolist() == [0.25, 0.75, 0.5, 1.0]


def test_magnitude_estimation_normalised_per_worker(tmp_path: Path) -> None:
    path = tmp_path / "me.csv"
    # w2 answers ten times w1 on every statement: after geometric-mean normalisation they agree exactly.
    path.write_text("worker_id,statement_id,item,value\nw1,s1,x,2\nw2,s1,x,20\nw1,s2,x,8\nw2,s2,x,80\n")
    data = load_csv(path, scale=Scale.magnitude())
    normalised = normalise_magnitudes(data.judgments, ["x"])
    assert normalised["x"].astype(float).tolist() == pytest.approx([0.5, 2.0, 0.5, 2.0])
    bad = tmp_path / "bad.csv"
    bad.write_text("worker_id,statement_id,item,value\nw1,s1,x,0\nw2,s1,x,20\n")
    with pytest.raises(InputError, match="magnitude"):
        load_csv(bad, scale=Scale.magnitude())
    code, out, err = run_cli(
        main, ["agreement", "--data", str(path), "--format", "long", "--scale", "magnitude", "--json"]
    )
    assert code == 0 and {r["level"] for r in json.loads(out)["alpha"]} == {"interval", "ratio"}, err


def test_string_categories_give_nominal_alpha(tmp_path: Path) -> None:
    path = tmp_path / "cats.csv"
    path.write_text(
        "worker_id,statement_id,item,value\nw1,s1,v,true\nw2,s1,v,true\nw1,s2,v,false\nw2,s2,v, unsure\n"
        "w1,s3,v,false\nw2,s3,v,false\n"
    )
    scale = Scale.categories("true", "false", "unsure")
    data = load_csv(path, scale=scale)
    assert data.judgments.set_index(["worker_id", "statement_id"])["v"].to_dict()[("w2", "s2")] == 2
    code, out, err = run_cli(
        main, ["agreement", "--data", str(path), "--format", "long", "--scale", "cat:true,false,unsure", "--json"]
    )
    assert code == 0, err
    (row,) = [r for r in json.loads(out)["alpha"] if r["group"] == "ALL"]
    strings = np.array([["true", "false", "false"], ["true", "unsure", "false"]], dtype=object)
    assert row["level"] == "nominal" and row["alpha"] == pytest.approx(krippendorff_alpha(strings, level="nominal"))
    bad = tmp_path / "bad.csv"
    bad.write_text("worker_id,statement_id,item,value\nw1,s1,v,maybe\n")
    with pytest.raises(InputError, match="'maybe' is not on"):
        load_csv(bad, scale=scale)


# --- point 4: column-mapping collisions, DataFrames --------------------------------------------------------------


def test_column_mapping_collisions_are_input_errors(tmp_path: Path) -> None:
    """The issue's call crashed with AttributeError (the file already has a statement_id column)."""
    path = write_sigir(tmp_path / "S3.csv", "S3", high=2)
    mapping = {"worker_id": "unit_id", "statement_id": "name_unique"}
    with pytest.raises(InputError, match="collision") as info:
        load_csv(path, layout="wide", columns=mapping)
    assert (info.value.line, info.value.field) == (1, "statement_id")
    argv = ["validate", "--data", str(path), "--format", "wide", "--map", "worker_id=unit_id"]
    code, out, err = run_cli(main, [*argv, "--map", "statement_id=name_unique"])
    assert code == 2 and out == "" and "collision" in err and len(err.splitlines()) == 1, err
    with pytest.raises(InputError, match="both map to"):
        load_csv(path, layout="wide", columns={"worker_id": "unit_id", "statement_id": "unit_id"})


def test_loaders_accept_dataframes(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "worker_id": ["w1", "w2", "w1", "w2"],
            "statement_id": ["s1", "s1", "s2", "s2"],
            "item": "ot",
            "value": [2, 1, -2, -1],
        }
    )
    data = load_csv(frame)
    assert data.source == "<DataFrame>" and len(data.judgments) == 4
    assert load_table(frame).judgments.equals(data.judgments)
    with pytest.raises(InputError, match="not on the likert5") as info:
        load_csv(frame.assign(value=[2, 1, 7, -1]))
    assert info.value.line == 3  # the 1-based row of the DataFrame
    path = write_sigir(tmp_path / "S3.csv", "S3", high=2)
    from_frame = load_sigir2020_crowd(pd.read_csv(path, dtype=str, keep_default_na=False), metadata=False)
    from_file = load_sigir2020_crowd(path, metadata=False)
    pd.testing.assert_frame_equal(from_frame.judgments, from_file.judgments)


# --- point 7: statement-text keying, crowd vs experts, Randolph's kappa ------------------------------------------


def test_statement_text_keying(tmp_path: Path) -> None:
    import importlib.util

    # The small IPM writer of test_cli_bad_input.py (tests import with importlib: no package to import from).
    spec = importlib.util.spec_from_file_location("_ipm_writer", Path(__file__).with_name("test_cli_bad_input.py"))
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    path = module.write_ipm(tmp_path / "multidimensional.csv", n_workers=4)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame["doc_statement"] = frame["doc_name"].map(lambda n: f"Text, of {n}!")
    # unit_1's DEM_TRUE_doc1 HIT showed REP_TRUE_doc1's text (labels follow the statement shown).
    crossover = (frame["unit_id"] == "unit_1") & (frame["doc_name"] == "DEM_TRUE_doc1")
    frame.loc[crossover, "doc_statement"] = "text of rep_true_doc1"
    data = load_ipm2021(frame, key="statement")
    counts = data.real().judgments.groupby("statement_id").size()
    assert counts["DEM_TRUE_doc1"] == 3 and counts["REP_TRUE_doc1"] == 4  # the duplicate of unit_1 dropped
    assert any("saw the same text twice (unit_1)" in d for d in data.decisions)
    assert len(load_ipm2021(frame).real().judgments) == len(data.real().judgments) + 1


def test_statement_text_keying_on_real_data(shared_data: Path) -> None:
    data = load_ipm2021(shared_data / "truth-crowd" / "IPM2021" / "multidimensional.csv", key="statement").real()
    assert len(data.statements) == 179 and "DEM_BARELYTRUE_doc7" not in data.statements.index  # never shown
    assert len(data.judgments) == 1799 - 9  # 9 workers saw the same text twice


def test_crowd_expert_agreement_and_randolph(tmp_path: Path) -> None:
    path = write_sigir(tmp_path / "S3.csv", "S3", high=2, n_units=4)
    data = load_sigir2020_crowd(path, metadata=False).real()
    perfect = data.judgments.copy()
    perfect["overall_truthfulness"] = perfect["statement_id"].map(data.statements["gt_norm"]).round().astype("Int8")
    table = crowd_expert_agreement(type(data)(**{**data.__dict__, "judgments": perfect}))
    pf = table.set_index("dataset").loc["politifact"]
    # PolitiFact's 6 levels on a 3-point crowd scale: the mapped crowd can reach only levels 0, 2.5->2, 5.
    assert pf["n"] == 12 and 0 < pf["kappa_quadratic"] < 1
    abc = table.set_index("dataset").loc["abc"]
    assert abc["alpha_interval"] == pytest.approx(1.0) and abc["kappa_linear"] == pytest.approx(1.0)
    code, out, err = run_cli(main, ["agreement", "--data", str(path), "--format", "sigir2020", "--randolph", "--json"])
    assert code == 0, err
    row = next(r for r in json.loads(out)["randolph"] if r["group"] == "ALL")
    answers = data.judgments.pivot(index="statement_id", columns="worker_id", values="overall_truthfulness")
    counts = np.stack([(answers == v).sum(axis=1).to_numpy() for v in (0, 1, 2)], axis=1).astype(float)
    n = counts.sum(axis=1)[0]
    observed = ((counts**2).sum(axis=1) - n).mean() / (n * (n - 1))
    assert row["randolph_kappa"] == pytest.approx((observed - 1 / 3) / (1 - 1 / 3))


def test_default_domains_come_from_the_data_not_minus_two_to_two(tmp_path: Path) -> None:
    """`alpha_by_item` defaulted to the -2..2 domain (a 0..100 item raised); Phi's limits defaulted to -2..2."""
    from truth_crowd.agreement import alpha_by_item
    from truth_crowd.phi import phi_by_item

    data = load_sigir2020_crowd(write_sigir(tmp_path / "S100.csv", "S100", n_units=5), metadata=False).real()
    table = alpha_by_item(data.judgments, ["overall_truthfulness"], levels=("interval", "ordinal"))
    explicit = alpha_by_item(
        data.judgments, ["overall_truthfulness"], levels=("interval", "ordinal"), value_domain=data.scale.domain
    )
    assert np.allclose(table["alpha"], explicit["alpha"], rtol=0, atol=1e-12)
    phi = phi_by_item(data.judgments, ["overall_truthfulness"], method="mle", by=None)
    low, high = data.judgments["overall_truthfulness"].min(), data.judgments["overall_truthfulness"].max()
    fixed = phi_by_item(data.judgments, ["overall_truthfulness"], method="mle", by=None, limits=(low, high))
    assert phi["phi"].iloc[0] == pytest.approx(fixed["phi"].iloc[0])
