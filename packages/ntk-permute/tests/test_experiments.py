"""P_all(M) by Monte Carlo (spec 6.2), accuracy curves, Figure 1 and the scaling table (spec 2.8, 6.3, 7.3)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ntk_permute.cli import main
from ntk_permute.evaluation import accuracy_curve, first_reaching, level_inputs, random_level_inputs
from ntk_permute.experiments import figure1, plot_figure1, plot_scaling, scaling_table, theory_accuracy
from ntk_permute.montecarlo import joint_exact_probability
from ntk_permute.training import TrainConfig

# Spec 6.2 (20,000 draws, standard error <= 0.0035).
SPEC_P_ALL = {
    (6, "ntk"): {100: 0.004, 300: 0.455, 500: 0.874, 700: 0.978},
    (8, "nngp"): {50: 0.123, 75: 0.575, 100: 0.868, 150: 0.989},
}


@pytest.mark.parametrize(("k", "kind"), list(SPEC_P_ALL))
def test_joint_probability_matches_spec(k: int, kind: str) -> None:
    table = SPEC_P_ALL[(k, kind)]
    est = joint_exact_probability(
        k,
        list(table),
        kind=kind,
        draws=3000,  # type: ignore[arg-type]
        rng=np.random.default_rng(11),
    )
    for m, p, se in zip(est.members, est.probability, est.standard_error, strict=True):
        assert abs(p - table[int(m)]) < 4 * math.hypot(se, 0.0035) + 1e-3, (m, p, table[int(m)])
    assert np.all(np.diff(est.probability) >= 0)  # common random numbers: monotone in M


def test_joint_probability_bad_arguments() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="k"):
        joint_exact_probability(13, [10], rng=rng)
    with pytest.raises(ValueError, match="members"):
        joint_exact_probability(4, [0], rng=rng)


@settings(max_examples=25)
@given(st.integers(1, 6), st.integers(1, 5), st.integers(0, 2**31 - 1))
def test_accuracy_curve_equals_naive(members: int, tests: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    outputs = rng.normal(0.1, 0.5, size=(members, tests, 3))
    targets = rng.integers(0, 2, size=(tests, 3))
    curve = accuracy_curve(outputs, targets, eps=1e-6)
    naive = [
        np.mean(np.all((outputs[:m].mean(axis=0) > 1e-6) == (targets == 1), axis=1)) for m in range(1, members + 1)
    ]
    np.testing.assert_allclose(curve, naive)
    first = first_reaching(curve, 0.5)
    assert first is None or (curve[first - 1] >= 0.5 and np.all(curve[: first - 1] < 0.5))


def test_level_inputs() -> None:
    rows = level_inputs(6, 2)
    assert rows.shape == (15, 6) and np.all(rows.sum(axis=1) == 2) and len(np.unique(rows, axis=0)) == 15
    sample = random_level_inputs(5, 2, 1000, np.random.default_rng(0))
    assert sample.shape == (1000, 5) and len(np.unique(sample, axis=0)) == 10  # repeats, as in the official code


def test_figure1_small(tmp_path: Path) -> None:
    pytest.importorskip("jax")
    base = TrainConfig(parametrization="standard", width=128, member_chunk=64)
    result = figure1([4], base, num_tests=100, max_members=40, seed=0)
    (curve,) = result.curves
    assert curve.accuracy.shape == (40,) and curve.theory_first_m == {"nngp": 21, "ntk": 169}
    assert curve.official_first_m == 10 and curve.first_m is not None and curve.first_m <= 40
    assert curve.max_residual < 1e-5
    assert plot_figure1(result, tmp_path / "fig1.png").stat().st_size > 1000
    acc = theory_accuracy(10, [58], kind="nngp")
    assert acc[0] >= 0.9 > theory_accuracy(10, [57], kind="nngp")[0]


def test_scaling_table_and_plot(tmp_path: Path) -> None:
    rows = scaling_table([8, 256], delta=0.01, kind="ntk")
    assert (rows[0].all, rows[1].all) == (944, 26658)  # spec 6.2 and the 2.8 table
    assert rows[1].ratios()["all/(k ln k)"] == pytest.approx(18.8, abs=0.05)
    nngp = scaling_table([8], delta=0.01, kind="nngp")
    assert nngp[0].all == 152
    assert plot_scaling({"ntk": rows, "nngp": nngp}, tmp_path / "s.png").is_file()


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_cli_train_and_experiments(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pytest.importorskip("jax")
    config = tmp_path / "config.json"
    config.write_text(TrainConfig.tiny(k=4, n_members=8, width=16).to_json())
    out = _json(capsys, ["train", "--config", str(config), "--parametrization", "standard", "--json"])
    assert out["config"]["parametrization"] == "standard" and out["config"]["n_members"] == 8
    assert out["all_inputs"]["n_inputs"] == 15
    assert out["all_inputs"]["n_exact"] >= out["all_inputs"]["n_exact_strict"]
    assert out["m2"]["theory"]["nngp"]["mu_on"] == pytest.approx(0.5952180241, abs=1e-9)
    rows = _json(
        capsys,
        ["experiment", "p-all", "--k", "4", "--members", "100", "400", "--draws", "500", "--gp", "ntk", "--json"],
    )["rows"]
    assert [r["M"] for r in rows] == [100, 400] and rows[0]["p_all"] < rows[1]["p_all"]
    scaling = _json(capsys, ["experiment", "scaling", "--k", "8", "--out", str(tmp_path), "--json"])
    assert {r["all"] for r in scaling["rows"]} == {944, 152} and (tmp_path / "scaling.png").is_file()
    with pytest.raises(SystemExit) as usage:  # an out-of-range option is an argparse usage error
        main(["train", "--k", "4", "--width", "0"])
    assert usage.value.code == 2
    assert main(["experiment", "p-all", "--k", "20"]) == 2
    assert "error:" in capsys.readouterr().err
