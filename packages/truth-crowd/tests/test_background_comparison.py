"""Worker background (demographics, CRT) against judgment error, and every aggregator against the truth."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from repro_core.testing import run_cli
from truth_crowd.aggregation import DawidSkene, majority_vote
from truth_crowd.analyses import external_agreement, worker_background
from truth_crowd.cli import main
from truth_crowd.comparison import AGGREGATORS, compare_aggregators, compare_with_experts
from truth_crowd.io import load_ipm2021
from truth_crowd.simulate import simulate_answers, simulate_crowd


@pytest.fixture(scope="module")
def sim():
    return simulate_crowd(seed=0)


@pytest.fixture(scope="module")
def real(shared_data):
    return load_ipm2021(shared_data / "truth-crowd" / "IPM2021" / "multidimensional.csv").real()


def _json(argv: list[str]) -> dict:
    code, out, err = run_cli(main, argv)
    assert code == 0, err
    return json.loads(out)


def test_background_finds_the_planted_crt_effect_and_no_age_effect(sim) -> None:
    result = worker_background(sim.data.real())
    tests = result.tests.set_index("factor")
    assert list(tests.index) == ["age_value", "political_views_value", "crt_score"]
    # The simulator ties CRT to the worker kind (better workers err less) and draws age independently.
    assert tests.loc["crt_score", "p_kruskal"] < 1e-3 and tests.loc["crt_score", "rho"] < -0.3
    assert tests.loc["age_value", "p_kruskal"] > 0.05 and abs(tests.loc["age_value", "rho"]) < 0.15
    assert (tests["p_bonferroni"] >= tests["p_kruskal"]).all()
    groups = result.groups
    assert (groups.groupby("factor")["n_workers"].sum() == len(result.quality)).all()
    assert set(groups.loc[groups["factor"] == "age_value", "label"]) == {"19-25", "26-35", "36-50", "50-80"}


def test_background_quality_is_the_workers_error(sim) -> None:
    data = sim.data.real()
    quality = worker_background(data, factors=["crt_score"]).quality.set_index("worker_id")
    worker = quality.index[0]
    rows = data.judgments[
        (data.judgments["worker_id"] == worker) & data.judgments["dataset"].isin(["politifact", "abc"])
    ]
    error = rows["overall_truthfulness"].astype(float) - rows["statement_id"].map(data.statements["gt_norm"])
    assert quality.loc[worker, "n"] == error.notna().sum()
    assert quality.loc[worker, "mae"] == pytest.approx(error.abs().mean())
    assert quality.loc[worker, "bias"] == pytest.approx(error.mean())
    # Worse workers (noisy, spammers) have a larger error than good ones.
    by_kind = quality.join(sim.workers["kind"])["mae"].groupby(sim.workers["kind"]).mean()
    assert by_kind["good"] < by_kind["noisy"] and by_kind["good"] < by_kind["uniform"]


def test_background_rejects_bad_arguments(sim) -> None:
    data = sim.data.real()
    with pytest.raises(ValueError, match="factors"):
        worker_background(data, factors=["shoe_size"])
    with pytest.raises(ValueError, match="metric"):
        worker_background(data, metric="rmse")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="min_group"):
        worker_background(data, min_group=0)


def test_background_on_real_data(real) -> None:
    result = worker_background(real)
    tests = result.tests.set_index("factor")
    assert len(result.quality) == 200 and len(tests) == 8
    # The 10 DEM_BARELYTRUE_doc7 crossover rows are left out: 190 workers keep 9 rows, 10 keep 8.
    assert result.quality["n"].value_counts().to_dict() == {9: 190, 8: 10}
    # Regression values recomputed from the data (higher CRT, lower error; the border-wall item splits most).
    assert tests.loc["crt_score", "rho"] == pytest.approx(-0.1861, abs=1e-3)
    assert tests.loc["southern_border_value", "p_kruskal"] < 1e-3
    assert not tests.loc["consideration_value", "ordered"] and np.isnan(tests.loc["consideration_value", "rho"])


def test_compare_aggregators_on_simulator() -> None:
    sim = simulate_answers(n_tasks=300, n_workers=40, n_labels=3, answers_per_task=5, seed=1)
    table = compare_aggregators(sim.answers, sim.truth, seed=1).set_index("method")
    assert list(table.index) == list(AGGREGATORS)
    assert table.loc[["mean", "median"], "accuracy"].isna().all()
    assert table["n_tasks"].eq(300).all()
    # Dawid-Skene beats random-tie majority vote on mixed reliabilities (as in test_inference), and the table's
    # numbers are the models' own.
    assert table.loc["ds", "accuracy"] > table.loc["mv", "accuracy"] + 0.02
    ds = DawidSkene().fit_predict(sim.answers).reindex(sim.truth.index)
    assert table.loc["ds", "accuracy"] == pytest.approx(float((ds == sim.truth).mean()))
    mv = majority_vote(sim.answers, tie_break="random", seed=1).reindex(sim.truth.index)
    assert table.loc["mv", "accuracy"] == pytest.approx(float((mv == sim.truth).mean()))
    for name in ("onecoin", "glad", "mace"):
        assert table.loc[name, "accuracy"] > table.loc["mv", "accuracy"]


def test_compare_aggregators_with_nominal_labels_and_bad_input() -> None:
    sim = simulate_answers(n_tasks=60, n_workers=12, n_labels=3, answers_per_task=3, seed=2)
    names = np.array(["no", "maybe", "yes"], dtype=object)
    answers = sim.answers.assign(label=names[sim.answers["label"].to_numpy()])
    truth = pd.Series(names[sim.truth.to_numpy()], index=sim.truth.index)
    table = compare_aggregators(answers, truth, methods=["mv", "ds"])
    assert list(table["method"]) == ["mv", "ds"] and table["mae"].isna().all() and table["accuracy"].notna().all()
    with pytest.raises(ValueError, match="numeric"):
        compare_aggregators(answers, truth, methods=["mean"])
    with pytest.raises(ValueError, match="unknown method"):
        compare_aggregators(sim.answers, sim.truth, methods=["svm"])
    with pytest.raises(ValueError, match="columns"):
        compare_aggregators(sim.answers.drop(columns="worker"), sim.truth)


def test_compare_with_experts_matches_external_agreement(sim) -> None:
    data = sim.data.real()
    table = compare_with_experts(data, methods=["mean", "mv", "ds"])
    assert set(table["dataset"]) == {"politifact", "abc", "all"} and table["accuracy"].isna().all()
    spearman = external_agreement(data).correlations.set_index(["dataset", "method"])["r"]
    for dataset in ("politifact", "abc"):
        row = table[(table["dataset"] == dataset) & (table["method"] == "mean")].iloc[0]
        assert row["spearman"] == pytest.approx(spearman[(dataset, "spearman")])


def test_compare_with_experts_on_real_data(real) -> None:
    table = compare_with_experts(real).set_index(["dataset", "method"])
    assert len(table) == 3 * len(AGGREGATORS)
    assert table.loc[("politifact", "mean"), "n_tasks"] == 120 and table.loc[("abc", "mean"), "n_tasks"] == 60
    assert table.loc[("politifact", "mean"), "spearman"] == pytest.approx(0.378, abs=1e-3)
    assert table.loc[("abc", "mean"), "spearman"] == pytest.approx(0.361, abs=1e-3)


def test_cli_compare_and_background() -> None:
    payload = _json(["aggregate", "--simulate", "--compare", "--json"])
    assert payload["method"] == "compare" and len(payload["comparison"]) == 3 * len(AGGREGATORS)
    payload = _json(["analyze", "--simulate", "--analyses", "background", "aggregators", "--json"])
    assert set(payload["tables"]) == {"background_tests", "background_groups", "aggregators"}
    crt = next(r for r in payload["tables"]["background_tests"] if r["factor"] == "crt_score")
    assert crt["rho"] < -0.3
