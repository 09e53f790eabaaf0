"""Bootstrap confidence intervals: determinism, coverage sanity, paired statistics, validation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from repro_core.metrics import BootstrapCI, bootstrap_ci, ndcg, r2


def test_deterministic_for_a_seed() -> None:
    values = np.random.default_rng(0).normal(size=300)
    first = bootstrap_ci(values, seed=7)
    assert bootstrap_ci(values, seed=7) == first
    assert bootstrap_ci(values, seed=np.random.default_rng(7)) == first
    assert bootstrap_ci(values, seed=8) != first
    assert isinstance(first, BootstrapCI) and isinstance(first.low, float)
    assert first.estimate == pytest.approx(values.mean())
    assert (first.confidence, first.n_resamples, first.method) == (0.95, 1000, "percentile")
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.low = 0.0  # type: ignore[misc]
    assert set(first.to_dict()) == {"estimate", "low", "high", "confidence", "n_resamples", "method", "standard_error"}


def test_contains_true_mean_of_large_normal_sample() -> None:
    values = np.random.default_rng(1).normal(loc=3.0, scale=2.0, size=20_000)
    ci = bootstrap_ci(values, seed=0)
    assert ci.low < 3.0 < ci.high
    # Width close to the normal-theory 2 * 1.96 * sigma / sqrt(n).
    assert ci.high - ci.low == pytest.approx(2 * 1.96 * 2.0 / np.sqrt(20_000), rel=0.15)
    assert ci.standard_error == pytest.approx(2.0 / np.sqrt(20_000), rel=0.15)


def test_coverage_over_repeated_samples() -> None:
    rng = np.random.default_rng(2)
    hits = 0
    trials = 200
    for trial in range(trials):
        sample = rng.exponential(scale=1.0, size=80)  # true mean 1, skewed
        ci = bootstrap_ci(sample, n_resamples=400, confidence=0.9, seed=trial)
        hits += ci.low <= 1.0 <= ci.high
    # Nominal 90%; the percentile bootstrap under-covers a little for skewed small samples.
    assert 0.8 <= hits / trials <= 0.97


def test_basic_method_reflects_percentile_bounds() -> None:
    values = np.random.default_rng(3).gamma(2.0, size=150)
    pct = bootstrap_ci(values, seed=4)
    basic = bootstrap_ci(values, seed=4, method="basic")
    assert basic.low == pytest.approx(2 * pct.estimate - pct.high)
    assert basic.high == pytest.approx(2 * pct.estimate - pct.low)
    assert basic.standard_error == pct.standard_error


def test_custom_statistics_loop_vectorized_and_default_agree() -> None:
    values = np.random.default_rng(5).normal(size=64)
    default = bootstrap_ci(values, seed=3, n_resamples=300)
    looped = bootstrap_ci(values, np.mean, seed=3, n_resamples=300)
    vectorized = bootstrap_ci(values, lambda v: v.mean(axis=1), seed=3, n_resamples=300, vectorized=True)
    for other in (looped, vectorized):
        assert other.estimate == pytest.approx(default.estimate)
        assert other.low == pytest.approx(default.low) and other.high == pytest.approx(default.high)


def test_paired_inputs_resampled_together() -> None:
    rng = np.random.default_rng(6)
    targets = rng.normal(size=100)
    predictions = targets + 0.5 * rng.normal(size=100)
    ci = bootstrap_ci((predictions, targets), r2, n_resamples=300, seed=0)
    assert ci.estimate == pytest.approx(r2(predictions, targets))
    assert ci.low < ci.estimate < ci.high
    # Identical pairs: every resample is perfect, so the interval collapses to 1.
    same = bootstrap_ci((targets, targets), r2, n_resamples=50, seed=0)
    assert same.low == same.high == same.estimate == 1.0


def test_per_query_metric_values_and_torch_input() -> None:
    rng = np.random.default_rng(7)
    per_query = ndcg(rng.normal(size=(50, 10)), rng.integers(0, 3, size=(50, 10)), k=5, reduce="none")
    ci = bootstrap_ci(per_query, seed=1)
    assert ci.low <= ci.estimate <= ci.high
    torch = pytest.importorskip("torch")
    assert bootstrap_ci(torch.from_numpy(per_query), seed=1) == ci


@settings(max_examples=200)
@given(
    values=hnp.arrays(np.float64, st.integers(1, 30), elements=st.floats(-100, 100, allow_nan=False)),
    seed=st.integers(0, 2**32 - 1),
    confidence=st.floats(0.5, 0.99),
)
def test_mean_interval_properties(values: np.ndarray, seed: int, confidence: float) -> None:
    ci = bootstrap_ci(values, n_resamples=100, confidence=confidence, seed=seed)
    lo, hi = values.min(), values.max()
    tol = 1e-9 * max(1.0, abs(lo), abs(hi))
    assert lo - tol <= ci.low <= ci.high <= hi + tol
    assert lo - tol <= ci.estimate <= hi + tol
    assert bootstrap_ci(values, n_resamples=100, confidence=confidence, seed=seed) == ci
    wider = bootstrap_ci(values, n_resamples=100, confidence=min(0.999, confidence + 0.005), seed=seed)
    assert wider.low <= ci.low + tol and wider.high >= ci.high - tol


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: bootstrap_ci([1.0, np.nan]), "data contains NaN"),
        (lambda: bootstrap_ci([]), "no items"),
        (lambda: bootstrap_ci(np.float64(1.0)), "leading item axis"),
        (lambda: bootstrap_ci(([1.0, 2.0], [1.0]), lambda a, b: 0.0), "paired inputs must match"),
        (lambda: bootstrap_ci([1.0, 2.0], confidence=1.0), "confidence must lie"),
        (lambda: bootstrap_ci([1.0, 2.0], n_resamples=1), "n_resamples"),
        (lambda: bootstrap_ci([1.0, 2.0], method="bca"), "method must be"),
        (lambda: bootstrap_ci([1.0, 2.0], seed=None), "seed must be"),
        (lambda: bootstrap_ci(np.ones((3, 2))), "default statistic"),
        (lambda: bootstrap_ci([1.0, 2.0], lambda v: np.nan), "NaN on the original data"),
        (lambda: bootstrap_ci([1.0, 2.0], lambda v: np.nan if v[0] == v[1] else 0.0, seed=0), "NaN on"),
        (lambda: bootstrap_ci([1.0, 2.0], lambda v: np.zeros(2)), "one number"),
        (lambda: bootstrap_ci([1.0, 2.0], lambda v: np.mean(v), vectorized=True), "vectorized statistic"),
    ],
)
def test_validation_errors(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]
