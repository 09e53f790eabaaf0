"""Phi: the Metropolis posterior recovers tau and its HPD covers the truth, is deterministic by seed; the MLE recovers
tau on Beta data; ~0 for uniform noise, grows as noise falls; bootstrap CI; real data."""

from __future__ import annotations

import numpy as np
import pytest

from truth_crowd.phi import (
    gelman_rubin,
    hpd_interval,
    phi_agreement,
    phi_by_item,
    phi_from_tau,
    phi_posterior,
    rescale_for_phi,
)
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
    result = phi_agreement(x, method="mle")
    assert result.tau == pytest.approx(tau, rel=0.2) and result.method == "mle"


def test_phi_is_zero_for_noise_and_grows_with_agreement() -> None:
    rng = np.random.default_rng(1)
    truth = rng.integers(-2, 3, size=(150, 1))
    values = []
    for noise in (None, 1.0, 0.3):
        if noise is None:
            x = rng.integers(-2, 3, size=(150, 10)).astype(float)
        else:
            x = np.clip(np.rint(truth + rng.normal(0, noise, size=(150, 10))), -2, 2)
        values.append(phi_agreement(x, method="mle").phi)
    assert abs(values[0]) < 0.15 and values[0] < values[1] < values[2], values


def test_bootstrap_interval_and_bad_input() -> None:
    rng = np.random.default_rng(2)
    x = np.clip(np.rint(rng.integers(-2, 3, size=(60, 1)) + rng.normal(0, 1, size=(60, 8))), -2, 2)
    x[0, 3:] = np.nan
    result = phi_agreement(x, method="mle", n_resamples=30, seed=0)
    assert result.low <= result.phi <= result.high and result.n_ratings == 60 * 8 - 5
    with pytest.raises(ValueError, match="limits"):
        phi_agreement(x, limits=(2, -2))
    with pytest.raises(ValueError, match="outside"):
        phi_agreement(x * 3, limits=(-2, 2))
    # Issue #12: the default limits are the lowest and highest rating present, not an assumed -2..2.
    assert phi_agreement(x * 3, method="mle").phi == pytest.approx(phi_agreement(x, method="mle").phi)
    with pytest.raises(ValueError, match="method"):
        phi_agreement(x, method="hmc")
    with pytest.raises(ValueError, match="n_resamples"):
        phi_agreement(x, n_resamples=10)
    with pytest.raises(ValueError, match="gold"):
        phi_agreement(x, gold=[0.0])


def test_phi_by_item_on_simulator() -> None:
    sim = simulate_crowd(seed=0)
    real = sim.data.real()
    table = phi_by_item(real.judgments, ITEMS[:2], n_samples=300, n_burn=300)
    assert set(table["group"]) == {"politifact", "abc", "ALL"} and len(table) == 6
    assert table["phi"].between(-1, 1).all() and (table["rhat"] < 1.1).all()
    mle = phi_by_item(real.judgments, ITEMS[:2], method="mle", n_resamples=20)
    assert (mle["method"] == "mle").all() and np.allclose(mle["phi"], table["phi_mle"])


def test_phi_on_real_data(shared_data) -> None:
    from truth_crowd.io import load_ipm2021

    data = load_ipm2021(shared_data / "truth-crowd" / "IPM2021" / "multidimensional.csv").real()
    table = phi_by_item(data.judgments, ["overall_truthfulness"], n_samples=300, n_burn=300)
    assert len(table) == 3 and set(table["n_items"]) == {60, 120, 180}
    assert table["phi"].between(-1, 1).all() and (table["method"] == "mcmc").all()
    assert ((table["low"] < table["phi"]) & (table["phi"] < table["high"])).all() and (table["rhat"] < 1.1).all()
    assert (table["phi"] < table["phi_mle"]).all()  # the posterior mean of tau sits below the joint MLE


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


def _beta_problems(taus: list[float], n_items: int, n_cols: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Exact draws of the model: (y [n_items * n_cols], item) per tau."""
    rng = np.random.default_rng(seed)
    out = []
    for tau in taus:
        mu = rng.uniform(0.15, 0.85, n_items)
        y = rng.beta(mu[:, None] * tau, (1 - mu[:, None]) * tau, size=(n_items, n_cols))
        out.append((np.clip(y, 1e-9, 1 - 1e-9).ravel(), np.repeat(np.arange(n_items), n_cols)))
    return out


def test_metropolis_posterior_recovers_tau_and_hpd_covers_truth() -> None:
    from truth_crowd.phi import _fit_tau, _Problem, _sample

    # 24 data sets drawn from the model itself, one batched sampler run: the 95% HPD of tau covers the truth in
    # 22 of them (>= 20 required; 22.8 expected) and the posterior mean sits close to it.
    taus = [3.0, 6.0, 12.0] * 8
    data = _beta_problems(taus, n_items=60, n_cols=20, seed=5)
    problems = [_Problem(y, item, 60, None) for y, item in data]
    starts = []
    for y, item in data:
        tau, opt = _fit_tau(y, item, 60)
        starts.append((tau, 1 / (1 + np.exp(-opt[1:]))))
    post = _sample(problems, starts, n_samples=500, n_burn=400, n_chains=2, seed=0)
    covered = [hpd_interval(post.tau[k])[0] <= t <= hpd_interval(post.tau[k])[1] for k, t in enumerate(taus)]
    assert sum(covered) >= 20, covered
    means = post.tau.mean(axis=(1, 2))
    assert np.all(np.abs(means / np.asarray(taus) - 1) < 0.12), means
    assert np.all(post.acceptance_tau > 0.2) and np.all(post.acceptance_tau < 0.7)
    assert max(gelman_rubin(post.tau[k]) for k in range(len(taus))) < 1.1


def test_metropolis_matches_the_exact_marginal_posterior() -> None:
    from scipy import special

    # Given tau the items are independent, so p(tau | y) ∝ prod_i ∫ L_i(mu, tau) dmu under the flat priors:
    # quadrature on a (tau, mu) grid gives the exact posterior mean of tau to compare the sampler with.
    y, item = _beta_problems([5.0], n_items=40, n_cols=12, seed=2)[0]
    n = np.bincount(item).astype(float)
    s1, s2 = np.bincount(item, np.log(y)), np.bincount(item, np.log1p(-y))
    tau = np.linspace(2.5, 10.0, 300)[:, None, None]  # [T, 1, 1]
    mu = ((np.arange(800) + 0.5) / 800)[None, :, None]  # [1, M, 1]
    a, b = mu * tau, (1 - mu) * tau
    loglik = (a - 1) * s1 + (b - 1) * s2 - n * special.betaln(a, b)  # [T, M, items]
    log_post = special.logsumexp(loglik, axis=1).sum(axis=1)  # [T] up to a constant
    weights = np.exp(log_post - log_post.max())
    exact_mean = float((tau.ravel() * weights).sum() / weights.sum())
    post = phi_posterior(y, item, 40, n_samples=2000, n_burn=500, n_chains=4, seed=3)
    assert post.tau.mean() == pytest.approx(exact_mean, rel=0.02)


def test_phi_mcmc_is_deterministic_by_seed_and_close_to_mle() -> None:
    rng = np.random.default_rng(4)
    x = np.clip(np.rint(rng.integers(-2, 3, size=(90, 1)) + rng.normal(0, 0.8, size=(90, 10))), -2, 2)
    a = phi_agreement(x, seed=7, n_samples=400, n_burn=400)
    b = phi_agreement(x, seed=7, n_samples=400, n_burn=400)
    c = phi_agreement(x, seed=8, n_samples=400, n_burn=400)
    assert a == b and a.method == "mcmc" and a.phi != c.phi
    assert abs(a.phi - c.phi) < 0.02 and a.low < a.phi < a.high and c.low < c.phi < c.high
    # Integrating the item means out pulls tau below the joint MLE (which overfits the 90 mu_i), but not by much.
    assert a.tau < a.tau_mle and a.tau == pytest.approx(a.tau_mle, rel=0.2)
    assert a.phi_mle == pytest.approx(phi_agreement(x, method="mle").phi)


def test_gold_prior_pulls_the_item_mean() -> None:
    # The reference's gold prior mu_i ~ Normal(g, 1) is weak on (0, 1): with 2 ratings per item it moves the
    # posterior mean of mu_i by ~0.01 towards g; averaged over 15 gold items the shift stands out of the MC noise.
    y, item = _beta_problems([4.0], n_items=30, n_cols=2, seed=1)[0]
    free = phi_posterior(y, item, 30, n_samples=1500, n_burn=300, seed=0)
    gold = np.full(30, np.nan)
    gold[:15] = 0.95
    pinned = phi_posterior(y, item, 30, gold=gold, n_samples=1500, n_burn=300, seed=0)
    shift = pinned.mu_mean - free.mu_mean
    assert shift[:15].mean() > 0.003 and abs(shift[15:].mean()) < 0.004, shift


def test_hpd_interval() -> None:
    samples = np.concatenate([np.zeros(5), np.linspace(10, 11, 95)])
    low, high = hpd_interval(samples, 0.9)  # 90 of the 95 evenly spaced points; the 5 zeros stay out
    assert low == 10.0 and high - low == pytest.approx(89 / 94)
    assert hpd_interval(np.arange(100.0), 0.5) == (0.0, 49.0)
    with pytest.raises(ValueError):
        hpd_interval(samples, 1.5)
