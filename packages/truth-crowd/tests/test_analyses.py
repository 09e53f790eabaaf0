"""The paper's analyses on the simulator (known structure) and, when present, on the released data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from truth_crowd.analyses import (
    abc_block,
    correlation_matrix,
    dimension_correlations,
    dimension_factors,
    dimension_pca,
    evidence_sources,
    external_agreement,
    learning_curve,
)
from truth_crowd.schema import DIMENSIONS, ITEMS
from truth_crowd.simulate import simulate_crowd


@pytest.fixture(scope="module")
def sim():
    return simulate_crowd(seed=0)


def test_external_agreement_on_simulator(sim) -> None:
    result = external_agreement(sim.data.real())
    levels = result.levels
    assert set(levels["dataset"]) == {"politifact", "abc"} and levels["n"].sum() == 180
    # The simulator's OT rises with the expert level: means increase and correlations are strong.
    for _, part in levels.groupby("dataset"):
        assert part.sort_values("level")["mean"].is_monotonic_increasing
    assert (result.correlations["r"] > 0.7).all() and set(result.correlations["method"]) == {
        "spearman",
        "kendall",
        "pearson",
    }
    adj = result.adjacent
    assert len(adj) == 5 + 2 and (adj["p_bonferroni"] >= adj["p"]).all()
    assert np.allclose(adj["p_bonferroni"], np.minimum(adj["p"] * adj["dataset"].map({"politifact": 5, "abc": 2}), 1))
    assert (result.kruskal["p"] < 1e-6).all() and (result.auc["auc"] > 0.9).all()
    merged = external_agreement(sim.data.real(), merge="012|345", aggregator="median")
    assert sorted(merged.levels.query("dataset == 'politifact'")["level"]) == [0, 1]
    with pytest.raises(ValueError, match="merge"):
        external_agreement(sim.data.real(), merge="0|1")


def test_dimension_correlations_and_pca(sim) -> None:
    j = sim.data.real().judgments
    table = dimension_correlations(j, level="judgment", method="spearman")
    assert len(table) == len(ITEMS) * (len(ITEMS) - 1) // 2 and table["r"].between(-1, 1).all()
    matrix = correlation_matrix(dimension_correlations(j, DIMENSIONS, level="statement"))
    assert np.allclose(matrix, matrix.T) and np.allclose(np.diag(matrix), 1.0)
    # The simulator plants an equicorrelation of 0.5 among latent dimension means: positive off-diagonals.
    assert (matrix.to_numpy()[np.triu_indices(len(DIMENSIONS), 1)] > 0).mean() > 0.8
    components, loadings = dimension_pca(j)
    assert components["eigenvalue"].sum() == pytest.approx(len(DIMENSIONS))
    assert components["cumulative"].iloc[-1] == pytest.approx(1.0) and loadings.shape == (7, 7)
    assert components["eigenvalue"].iloc[0] > 1.5  # a shared factor exists by construction


def test_factor_analysis_recovers_a_planted_two_factor_structure() -> None:
    rng = np.random.default_rng(0)
    n = 1500
    factors = rng.standard_normal((n, 2))
    true_loadings = np.array([[0.8, 0], [0.75, 0], [0.7, 0], [0, 0.8], [0, 0.75], [0, 0.7]])
    x = factors @ true_loadings.T + 0.5 * rng.standard_normal((n, 6))
    frame = pd.DataFrame(x, columns=list("abcdef")).assign(statement_id=np.arange(n).astype(str))
    for method in ("ml", "pa"):
        summary, loadings = dimension_factors(frame, list("abcdef"), level="judgment", method=method)
        table = loadings[["F1", "F2"]].to_numpy()
        # Varimax gives simple structure: each variable loads on one factor only, the two blocks on different ones.
        main = np.abs(table).argmax(axis=1)
        assert len(set(main[:3])) == 1 and len(set(main[3:])) == 1 and main[0] != main[3]
        # Standardised truth: 0.8 / sqrt(0.8^2 + 0.5^2) = 0.848 ... 0.7 / sqrt(0.7^2 + 0.25) = 0.814.
        expected = true_loadings.max(axis=1) / np.sqrt(true_loadings.max(axis=1) ** 2 + 0.25)
        assert np.allclose(np.abs(table).max(axis=1), expected, atol=0.05)
        assert np.abs(table).min(axis=1).max() < 0.08 and (table.max(axis=0) > 0).all()
        assert np.allclose(loadings["communality"] + loadings["uniqueness"], 1.0, atol=0.02)
        assert summary["ss_loadings"].is_monotonic_decreasing and (summary["rotation"] == "varimax").all()
    with pytest.raises(ValueError, match="n_factors"):
        dimension_factors(frame, list("abcdef"), level="judgment", n_factors=6)


def test_learning_curve_on_simulator(sim) -> None:
    result = learning_curve(sim.data)
    assert set(result.per_position["block"]) == {"first", "last", "all"}
    allrows = result.per_position.query("block == 'all'")
    assert allrows["position"].tolist() == list(range(11))
    # Times fall with position by construction: negative trend and negative MixedLM slope.
    trend = result.trends.query("block == 'all' and outcome == 'time'")["rho"].iloc[0]
    slope = result.mixed.set_index("term").loc["position"]
    assert trend < -0.2 and slope["coef"] < 0 and slope["p"] < 1e-6
    blocks = abc_block(sim.data.judgments)
    assert set(blocks) == {"first", "last"}


def test_analyses_run_on_real_data(shared_data) -> None:
    from truth_crowd.io import load_ipm2021

    data = load_ipm2021(shared_data / "truth-crowd" / "IPM2021" / "multidimensional.csv")
    real = data.real()
    ext = external_agreement(real)
    assert ext.levels.groupby("dataset")["n"].sum().to_dict() == {"abc": 60, "politifact": 120}
    assert (ext.correlations["r"] > 0).all()
    assert len(dimension_correlations(real.judgments, level="statement")) == 36
    components, _ = dimension_pca(real.judgments)
    assert components["eigenvalue"].sum() == pytest.approx(7)
    factors, loadings = dimension_factors(real.judgments)
    assert loadings.shape == (7, 4) and factors["explained"].between(0, 1).all()
    sources = evidence_sources(real.judgments)
    assert sources["n"].sum() == 1799 and not sources["blocked"].any()  # every canonical row has a URL
    curve = learning_curve(data)
    assert curve.per_position.query("block == 'all'")["n"].sum() == 2200
    assert abc_block(data.judgments).value_counts().to_dict() == {"last": 140, "first": 60}
    assert isinstance(curve.mixed, pd.DataFrame) and "position" in set(curve.mixed["term"])


def test_evidence_sources_domain_table() -> None:
    judgments = pd.DataFrame(
        {
            "worker_id": ["w1", "w1", "w2", "w3", "w3", "w4"],
            "statement_id": ["s1", "s2", "s1", "s1", "s3", "s2"],
            "evidence_url": [
                "https://www.Example.com/a?x=1",
                "http://example.com:8080/b",
                "https://user@www.politifact.com/factchecks/1",
                "en.wikipedia.org/wiki/X",
                None,
                "https://www.dailykos.com/stories/No-PolitiFact-Is-Right",
            ],
        }
    )
    table = evidence_sources(judgments).set_index("domain")
    assert list(table.index) == ["example.com", "dailykos.com", "en.wikipedia.org", "politifact.com"]
    assert table.loc["example.com", ["n", "n_workers", "n_statements"]].tolist() == [2, 1, 2]
    assert table["share"].sum() == pytest.approx(1.0) and table["n"].sum() == 5
    assert table["blocked"].to_dict() == {
        "example.com": False,
        "dailykos.com": False,  # a path that mentions PolitiFact is not its domain
        "en.wikipedia.org": False,
        "politifact.com": True,
    }
    assert evidence_sources(judgments.assign(evidence_url=None)).empty
    with pytest.raises(ValueError, match="evidence_url"):
        evidence_sources(judgments.drop(columns="evidence_url"))
