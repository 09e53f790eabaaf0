"""The crowd-kit toolbox of issue #12 on the command line: `aggregate --method mmsr|kos|gold-mv|gold-ds` with their
options, `aggregate --worker-metrics` and `agreement --icc`, each checked against the library call it wraps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from repro_core.testing import run_cli
from truth_crowd.aggregation import DawidSkene, GoldMajorityVote
from truth_crowd.cli import main
from truth_crowd.icc import icc_from_answers
from truth_crowd.inference import KOS, MACE, MMSR
from truth_crowd.schema import to_crowdkit
from truth_crowd.simulate import simulate_crowd
from truth_crowd.worker_metrics import accuracy_on_aggregates, consistency, uncertainty


@pytest.fixture(scope="module")
def simulated() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The judgments of `--simulate` (seed 0): all rows, and the real statements' rows (the canonical filter)."""
    data = simulate_crowd(seed=0).data
    return data.judgments, data.real().judgments


def _aggregates(argv: list[str]) -> tuple[dict, pd.Series]:
    code, out, err = run_cli(main, [*argv, "--json"])
    assert code == 0, err
    payload = json.loads(out)
    values = pd.Series({r["statement_id"]: r["value"] for r in payload["aggregates"]}, dtype=float)
    return payload, values


def _same(values: pd.Series, expected: pd.Series) -> None:
    expected = expected.astype(float)
    assert set(values.index) == set(expected.index.astype(str))
    np.testing.assert_array_equal(values.loc[expected.index.astype(str)].to_numpy(), expected.to_numpy())


def _write_gold(path: Path, rows: dict[str, object]) -> Path:
    path.write_text("statement_id,label\n" + "".join(f"{k},{v}\n" for k, v in rows.items()))
    return path


def test_aggregate_mmsr_votes_and_mace_methods(simulated: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    answers = to_crowdkit(simulated[1], "overall_truthfulness")
    for vote in ("argmax", "normalised"):
        payload, values = _aggregates(["aggregate", "--simulate", "--method", "mmsr", "--mmsr-vote", vote])
        assert payload["method"] == "mmsr" and payload["n_statements"] == 180
        _same(values, MMSR(vote=vote, seed=0).fit_predict(answers))
    _, values = _aggregates(["aggregate", "--simulate", "--method", "mace", "--mace-method", "em"])
    _same(values, MACE(method="em").fit_predict(answers))
    assert not values.equals(_aggregates(["aggregate", "--simulate", "--method", "mace"])[1])  # vb differs


def test_aggregate_kos_on_binary_labels_and_refused_otherwise(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, 12)
    lines = ["worker_id,statement_id,item,value"]
    for worker in range(7):
        right = rng.random(12) < 0.8
        lines += [f"w{worker},s{t},ot,{truth[t] if right[t] else 1 - truth[t]}" for t in range(12)]
    path = tmp_path / "binary.csv"
    path.write_text("\n".join(lines) + "\n")
    argv = ["aggregate", "--data", str(path), "--format", "long", "--item", "ot", "--method", "kos"]
    _, values = _aggregates([*argv, "--seed", "5"])
    table = pd.read_csv(path)
    answers = pd.DataFrame({"worker": table["worker_id"], "task": table["statement_id"], "label": table["value"]})
    _same(values, KOS(seed=5).fit_predict(answers))
    assert (values.loc[[f"s{t}" for t in range(12)]].to_numpy() == truth).mean() >= 0.9

    code, out, err = run_cli(main, ["aggregate", "--simulate", "--method", "kos"])
    assert code == 2 and out == "" and "KOS is for binary labels" in err and len(err.strip().splitlines()) == 1


def test_aggregate_gold_majority_vote_and_gold_dawid_skene(
    tmp_path: Path, simulated: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    """The simulated run's gold statements HIGH and LOW (dropped by the canonical filter) teach the worker skills."""
    everything, real = simulated
    gold_file = _write_gold(tmp_path / "gold.csv", {"HIGH": 2, "LOW": -2})
    gold = pd.Series({"HIGH": 2, "LOW": -2})
    with_gold = pd.concat([real, everything[everything["statement_id"].isin(gold.index)]], ignore_index=True)
    answers = to_crowdkit(with_gold, "overall_truthfulness")
    real_ids = pd.Index(real["statement_id"].unique())

    argv = ["aggregate", "--simulate", "--gold", str(gold_file)]
    payload, values = _aggregates([*argv, "--method", "gold-mv", "--tie-break", "highest"])
    assert payload["n_statements"] == 180 and "HIGH" not in values.index
    expected = GoldMajorityVote(tie_break="highest").fit_predict(answers, gold)
    _same(values, expected[expected.index.isin(real_ids)])

    payload, values = _aggregates([*argv, "--method", "gold-ds"])
    expected = DawidSkene().fit_predict(answers, true_labels=gold)
    _same(values, expected[expected.index.isin(real_ids)])
    assert not values.equals(_aggregates(["aggregate", "--simulate", "--method", "ds"])[1])  # gold changes DS

    # Real statements as gold: only the workers who judged them have skills, so the others need --missing-skill.
    some = _write_gold(tmp_path / "some.csv", {real_ids[0]: 2})
    code, out, err = run_cli(main, ["aggregate", "--simulate", "--gold", str(some), "--method", "gold-mv"])
    assert code == 2 and out == "" and "answered no gold statement" in err and "--missing-skill" in err
    _, values = _aggregates(
        ["aggregate", "--simulate", "--gold", str(some), "--method", "gold-mv", "--missing-skill", "0.5"]
    )
    expected = GoldMajorityVote(on_missing_skill=0.5).fit_predict(
        to_crowdkit(real, "overall_truthfulness"), pd.Series({real_ids[0]: 2})
    )
    _same(values, expected)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--method", "gold-mv"], "needs --gold FILE"),
        (["--method", "mv", "--gold", "{gold}"], "--gold: applies to"),
        (["--method", "gold-ds", "--gold", "{unknown}"], "not in the data"),
        (["--method", "gold-ds", "--gold", "{bad_label}"], "label(s) no worker gave"),
        (["--method", "gold-mv", "--gold", "{no_label}"], "lacks label"),
        (["--method", "gold-mv", "--gold", "{twice}"], "more than once"),
        (["--method", "gold-mv", "--gold", "{gold}", "--tie-break", "random"], "lowest or highest"),
        (["--method", "ds", "--missing-skill", "0.5"], "--missing-skill: applies to"),
        (["--method", "mean", "--worker-metrics"], "--worker-metrics: needs a label method"),
    ],
)
def test_aggregate_gold_and_metrics_options_refuse_bad_combinations(
    tmp_path: Path, argv: list[str], message: str
) -> None:
    files = {
        "gold": _write_gold(tmp_path / "gold.csv", {"HIGH": 2, "LOW": -2}),
        "unknown": _write_gold(tmp_path / "unknown.csv", {"HIGH": 2, "nowhere": 1}),
        "bad_label": _write_gold(tmp_path / "bad_label.csv", {"HIGH": 7}),
        "twice": tmp_path / "twice.csv",
        "no_label": tmp_path / "no_label.csv",
    }
    files["twice"].write_text("statement_id,label\nHIGH,2\nHIGH,1\n")
    files["no_label"].write_text("statement_id,value\nHIGH,2\n")
    argv = [a.format(**{k: str(v) for k, v in files.items()}) for a in argv]
    code, out, err = run_cli(main, ["aggregate", "--simulate", *argv])
    assert code == 2 and out == "", err
    assert len(err.strip().splitlines()) == 1 and message in err, err


def test_aggregate_worker_metrics(simulated: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    answers = to_crowdkit(simulated[1], "overall_truthfulness")
    payload, _ = _aggregates(["aggregate", "--simulate", "--method", "ds", "--worker-metrics"])
    labels = DawidSkene().fit_predict(answers)
    skills = accuracy_on_aggregates(answers, labels, by="worker")
    metrics = payload["metrics"]
    assert metrics["accuracy_on_aggregates"] == pytest.approx(accuracy_on_aggregates(answers, labels))
    assert metrics["consistency"] == pytest.approx(consistency(answers, skills, labels))
    assert metrics["uncertainty"] == pytest.approx(uncertainty(answers))
    workers = pd.DataFrame(payload["workers"]).set_index("worker_id")
    assert len(workers) == answers["worker"].nunique()
    np.testing.assert_allclose(workers.loc[skills.index.astype(str), "accuracy"], skills.to_numpy())
    assert workers["n_answers"].sum() == len(answers)
    code, out, err = run_cli(main, ["aggregate", "--simulate", "--method", "mv", "--worker-metrics"])
    assert code == 0 and "worker metrics: accuracy on the aggregates" in out, err


def test_agreement_icc(tmp_path: Path, simulated: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    real = simulated[1]
    argv = ["agreement", "--simulate", "--items", "overall_truthfulness", "--levels", "interval", "--icc"]
    code, out, err = run_cli(main, [*argv, "--json"])
    assert code == 0, err
    rows = {r["group"]: r for r in json.loads(out)["icc"]}
    assert set(rows) == {"politifact", "abc", "ALL"}
    for group, part in [("politifact", real[real["dataset"] == "politifact"]), ("ALL", real)]:
        expected = icc_from_answers(to_crowdkit(part, "overall_truthfulness"))
        assert rows[group]["icc_1_1"] == pytest.approx(expected.values["ICC(1,1)"], abs=1e-12)
        assert rows[group]["icc_1_k"] == pytest.approx(expected.values["ICC(1,k)"], abs=1e-12)
        assert rows[group]["n_statements"] == expected.n_targets and rows[group]["k"] == expected.k
    assert 0 < rows["ALL"]["icc_1_1"] < rows["ALL"]["icc_1_k"] < 1
    code, out, err = run_cli(main, argv)
    assert code == 0 and "ICC(1,1)" in out, err

    nominal = tmp_path / "nominal.csv"
    nominal.write_text("worker_id,statement_id,item,value\nw1,s1,ot,A\nw2,s1,ot,B\nw1,s2,ot,A\nw2,s2,ot,A\n")
    argv = ["agreement", "--data", str(nominal), "--format", "long", "--scale", "cat:A,B", "--icc"]
    code, out, err = run_cli(main, argv)
    assert code == 2 and out == "" and "--icc: needs numeric values" in err


def test_aggregate_gold_labels_on_a_nominal_scale(tmp_path: Path) -> None:
    """On a nominal scale the gold file names categories; they become the answers' category codes."""
    nominal = tmp_path / "nominal.csv"
    nominal.write_text("worker_id,statement_id,item,value\nw1,s1,ot,A\nw2,s1,ot,B\nw1,s2,ot,A\nw2,s2,ot,A\n")
    gold = _write_gold(tmp_path / "gold.csv", {"s1": "B"})
    argv = ["aggregate", "--data", str(nominal), "--format", "long", "--scale", "cat:A,B", "--item", "ot"]
    _, values = _aggregates([*argv, "--method", "gold-ds", "--gold", str(gold)])
    assert values.to_dict() == {"s1": 1.0, "s2": 0.0}
    _write_gold(tmp_path / "gold.csv", {"s1": "C"})
    code, out, err = run_cli(main, [*argv, "--method", "gold-ds", "--gold", str(gold)])
    assert code == 2 and out == "" and "--gold: label(s) not on the cat:A,B scale" in err, err
