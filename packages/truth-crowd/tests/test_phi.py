"""Phi: recovers tau on Beta data, ~0 for uniform noise, grows as noise falls; bootstrap CI; real data."""

from __future__ import annotations

import numpy as np
import pytest

from truth_crowd.phi import phi_agreement, phi_by_item, phi_from_tau, rescale_for_phi
from truth_crowd.schema import ITEMS
from truth_crowd.simulate import simulate_crowd


def test_phi_from_tau_anchors() -> None:
    assert phi_from_tau(2.0) == pytest.approx(0.0)
    assert phi_from_tau(1e6) == pytest.approx(1.0)
    assert phi_from_tau(4.0) == pytest.approx(0.5)


def test_mle_recovers_tau_on_beta_data() -> None:
    rng = np.random.default_rng(0)
    tau, n_items, n_cols = 8.0, 400, 10
    mu = rng.uniform(0.2, 0.8, n_items)
    y = rng.beta(mu[:, None] * tau, (1 - mu[:, None]) * tau, size=(n_items, n_cols))
    # Invert the reference rescaling so that rescale_for_phi gives back y exactly.
    x = ((y * n_cols - 0.5) / (n_cols - 1)) * 4 - 2
    x = np.clip(x, -2, 2)
    assert np.allclose(rescale_for_phi(x, (-2, 2))[np.abs(x) < 2], y[np.abs(x) < 2])
    result = phi_agreement(x)
    assert result.tau == pytest.approx(tau, rel=0.2)


def test_phi_is_zero_for_noise_and_grows_with_agreement() -> None:
    rng = np.random.default_rng(1)
    truth = rng.integers(-2, 3, size=(150, 1))
    values = []
    for noise in (None, 1.0, 0.3):
        if noise is None:
            x = rng.integers(-2, 3, size=(150, 10)).astype(float)
        else:
            x = np.clip(np.rint(truth + rng.normal(0, noise, size=(150, 10))), -2, 2)
        values.append(phi_agreement(x).phi)
    assert abs(values[0]) < 0.15 and values[0] < values[1] < values[2], values


def test_bootstrap_interval_and_bad_input() -> None:
    rng = np.random.default_rng(2)
    x = np.clip(np.rint(rng.integers(-2, 3, size=(60, 1)) + rng.normal(0, 1, size=(60, 8))), -2, 2)
    x[0, 3:] = np.nan
    result = phi_agreement(x, n_resamples=30, seed=0)
    assert result.low <= result.phi <= result.high and result.n_ratings == 60 * 8 - 5
    with pytest.raises(ValueError, match="limits"):
        phi_agreement(x, limits=(2, -2))
    with pytest.raises(ValueError, match="outside"):
        phi_agreement(x * 3)


def test_phi_by_item_on_simulator() -> None:
    sim = simulate_crowd(seed=0)
    real = sim.data.real()
    table = phi_by_item(real.judgments, ITEMS[:2])
    assert set(table["group"]) == {"politifact", "abc", "ALL"} and len(table) == 6
    assert table["phi"].between(-1, 1).all()


def test_phi_on_real_data(shared_data) -> None:
    from truth_crowd.io import load_ipm2021

    data = load_ipm2021(shared_data / "truth-crowd" / "IPM2021" / "multidimensional.csv").real()
    table = phi_by_item(data.judgments, ["overall_truthfulness"])
    assert len(table) == 3 and set(table["n_items"]) == {60, 120, 180}
    assert table["phi"].between(-1, 1).all()


def test_profile_bootstrap_matches_a_full_refit() -> None:
    from scipy import special

    from truth_crowd.phi import _fit_tau, _grid_argmax, _item_profiles

    rng = np.random.default_rng(3)
    x = np.clip(np.rint(rng.integers(-2, 3, size=(80, 1)) + rng.normal(0, 1.2, size=(80, 10))), -2, 2)
    y_matrix = rescale_for_phi(x, (-2, 2))
    item = np.repeat(np.arange(80), 10)
    tau, optimum = _fit_tau(y_matrix.ravel(), item, 80)
    grid, profile = _item_profiles(y_matrix.ravel(), item, 80, np.log(tau), special.expit(optimum[1:]))
    for seed in range(3):
        index = np.random.default_rng(seed).integers(0, 80, 80)
        weights = np.bincount(index, minlength=80).astype(float)[None, :]
        via_profile = float(np.exp(_grid_argmax(grid, weights @ profile))[0])
        refit, _ = _fit_tau(y_matrix[index].ravel(), np.repeat(np.arange(80), 10), 80)
        assert via_profile == pytest.approx(refit, rel=2e-3)
