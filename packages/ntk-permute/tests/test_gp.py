"""The infinite-width GP (spec 2.5), its (k, m) closed form (2.6), rounding and exhaustive recovery (2.7, 8.1-8.5)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ntk_permute.closed_form import m_form, sign_margin
from ntk_permute.exhaustive import (
    binary_chunks,
    exact_round,
    exhaustive_check,
    is_exact,
    recover_permutation,
    recover_permutation_gp,
)
from ntk_permute.gp import apply_permutation, gp_predict, permutation_matrix, random_permutation
from repro_core.seeding import numpy_rng

# Spec 6.1 (neural-tangents 0.6.5 = closed form): (k, kind, b_std) -> (x1 = (1,1,0..)/√2: on, off, var),
# (x2 = (1,1,1,0..)/√3: on, off, var), cov(x1, x2).
GOLDEN = {
    (4, "ntk", 0.0): (
        (0.5590552130, -0.0162168640, 0.0166311595),
        (0.4076287080, -0.0354734284, 0.0242153611),
        0.0123728887,
    ),
    (4, "nngp", 0.0): (
        (0.5952180241, -0.0459813565, 0.0162507925),
        (0.4204861376, -0.0832247976, 0.0239754508),
        0.0122098221,
    ),
    (8, "ntk", 0.0): (
        (0.5639386392, -0.0113334378, 0.0081849646),
        (0.4183109133, -0.0247912230, 0.0115797307),
        0.0059229104,
    ),
    (8, "nngp", 0.0): (
        (0.6133537778, -0.0278456028, 0.0079071909),
        (0.4533112768, -0.0503996584, 0.0112728879),
        0.0057099662,
    ),
    (4, "ntk", 0.5): (
        (0.5550503455, -0.0432694598, 0.0134241163),
        (0.3801548215, -0.0909428333, 0.0226611696),
        0.0119178876,
    ),
}

# Spec 6.1 full k = 8 tables (6 significant digits): m -> (mu_on, mu_off, variance).
TABLE_K8 = {
    "ntk": {
        2: (0.563939, -0.011333, 8.185e-3),
        3: (0.418311, -0.024791, 1.158e-2),
        4: (0.334610, -0.036457, 1.402e-2),
        5: (0.277600, -0.046842, 1.610e-2),
        6: (0.234982, -0.056279, 1.803e-2),
        7: (0.201186, -0.064984, 1.988e-2),
        8: (0.173276, None, 2.169e-2),
    },
    "nngp": {
        2: (0.613354, -0.027846, 7.907e-3),
        3: (0.453311, -0.050400, 1.127e-2),
        4: (0.356839, -0.069584, 1.371e-2),
        5: (0.288996, -0.086546, 1.580e-2),
        6: (0.237011, -0.101909, 1.773e-2),
        7: (0.194942, -0.116053, 1.958e-2),
        8: (0.159594, None, 2.139e-2),
    },
}


@pytest.mark.parametrize(("k", "kind", "b_std"), list(GOLDEN))
def test_golden_gp_values(k: int, kind: str, b_std: float) -> None:
    (on1, off1, var1), (on2, off2, var2), cov = GOLDEN[(k, kind, b_std)]
    x = np.zeros((2, k))
    x[0, :2], x[1, :3] = 1.0, 1.0
    pred = gp_predict(np.arange(k), x, kind=kind, b_std=b_std)  # type: ignore[arg-type]
    np.testing.assert_allclose(pred.mean[0, :2], on1, atol=1e-9)
    np.testing.assert_allclose(pred.mean[0, 2:], off1, atol=1e-9)
    np.testing.assert_allclose(pred.mean[1, :3], on2, atol=1e-9)
    np.testing.assert_allclose(pred.mean[1, 3:], off2, atol=1e-9)
    np.testing.assert_allclose(pred.variance, [var1, var2], atol=1e-9)
    assert pred.covariance is not None
    assert pred.covariance[0, 1] == pytest.approx(cov, abs=1e-9)
    # The closed form agrees too.
    form = m_form(k, [2, 3], kind=kind, b_std=b_std)  # type: ignore[arg-type]
    np.testing.assert_allclose(form.mu_on, [on1, on2], atol=1e-9)
    np.testing.assert_allclose(form.mu_off, [off1, off2], atol=1e-9)
    np.testing.assert_allclose(form.variance, [var1, var2], atol=1e-9)


@pytest.mark.parametrize("kind", ["ntk", "nngp"])
def test_k8_table(kind: str) -> None:
    form = m_form(8, kind=kind)  # type: ignore[arg-type]
    assert (form.mu_on[0], form.mu_off[0], form.variance[0]) == (1.0, 0.0, 0.0)  # m = 1: a training input
    for row in form.as_rows()[1:]:
        on, off, var = TABLE_K8[kind][row["m"]]
        assert row["mu_on"] == pytest.approx(on, abs=1e-6)
        assert (row["mu_off"] is None) if off is None else row["mu_off"] == pytest.approx(off, abs=1e-6)
        assert row["variance"] == pytest.approx(var, rel=1e-3)


def _all_inputs(k: int) -> np.ndarray:
    return np.concatenate([bits for _, bits in binary_chunks(k)]).astype(np.float64)


@pytest.mark.parametrize("k", [1, 2, 3, 5, 7, 10])
@pytest.mark.parametrize("kind", ["ntk", "nngp"])
@pytest.mark.parametrize(("b_std", "t"), [(0.0, None), (0.5, None), (0.0, 4.0), (1.0, 0.7)])
def test_m_form_equals_full_gp(k: int, kind: str, b_std: float, t: float | None) -> None:
    perm = random_permutation(k, numpy_rng(7, "m-form", k))
    x = _all_inputs(k)
    pred = gp_predict(perm, x, kind=kind, b_std=b_std, t=t, compute_cov=False)  # type: ignore[arg-type]
    form = m_form(k, kind=kind, b_std=b_std, t=t)  # type: ignore[arg-type]
    level = x.sum(axis=1).astype(int) - 1
    target = apply_permutation(perm, x)
    expected = np.where(target == 1, form.mu_on[level][:, None], np.nan_to_num(form.mu_off)[level][:, None])
    np.testing.assert_allclose(pred.mean, expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(pred.variance, form.variance[level], rtol=0, atol=1e-12)


def test_covariance_without_full_matrix_matches() -> None:
    x = _all_inputs(6)
    full = gp_predict([3, 1, 0, 5, 2, 4], x, kind="ntk", b_std=0.5)
    diag = gp_predict([3, 1, 0, 5, 2, 4], x, kind="ntk", b_std=0.5, compute_cov=False)
    assert diag.covariance is None and full.covariance is not None
    np.testing.assert_allclose(diag.variance, full.variance, atol=1e-14)
    assert np.linalg.eigvalsh(full.covariance).min() > -1e-12  # a covariance matrix


def test_finite_time_limits() -> None:
    k = 6
    perm = [2, 0, 1, 5, 3, 4]
    x = _all_inputs(k)
    start = gp_predict(perm, x, t=0.0)
    late = gp_predict(perm, x, t=1e6, learning_rate=1.0)
    end = gp_predict(perm, x)
    np.testing.assert_allclose(start.mean, 0.0, atol=1e-15)  # the prior mean
    np.testing.assert_allclose(start.variance, 1 / (2 * k), atol=1e-15)  # K(x, x) for unit-norm inputs
    np.testing.assert_allclose(late.mean, end.mean, atol=1e-12)
    np.testing.assert_allclose(late.variance, end.variance, atol=1e-12)
    # The mean moves monotonically towards the target on the training inputs.
    on_curve = [m_form(k, 1, t=t).mu_on[0] for t in (0.0, 10.0, 50.0, 200.0)]
    assert all(a < b for a, b in itertools.pairwise(on_curve)) and on_curve[-1] < 1.0


def test_sign_rule_margins() -> None:
    # μ_on(m) > 0 > μ_off(m) for every 2 <= m < k <= 1024 (spec 8.5), both GPs.
    for kind in ("ntk", "nngp"):
        assert min(sign_margin(k, kind=kind) for k in range(2, 1025)) > 0  # type: ignore[arg-type]
    # The worst ratio σ²/μ_off² is at m = 2; k = 30 values 117.5 (NTK) and 26.5 (NNGP).
    for kind, ratio in (("ntk", 117.5), ("nngp", 26.5)):
        form = m_form(30, range(2, 30), kind=kind)  # type: ignore[arg-type]
        ratios = form.variance / form.mu_off**2
        assert int(np.argmax(ratios)) == 0 and ratios[0] == pytest.approx(ratio, abs=0.05)


@settings(max_examples=30)
@given(k=st.integers(2, 400), w_std=st.floats(0.5, 2.0))
def test_means_are_scale_free(k: int, w_std: float) -> None:
    # s = σ_w⁴/(2k) cancels in the means; the variance scales with s.
    base, scaled = m_form(k), m_form(k, w_std=w_std)
    np.testing.assert_allclose(scaled.mu_on, base.mu_on, atol=1e-12)
    np.testing.assert_allclose(np.nan_to_num(scaled.mu_off), np.nan_to_num(base.mu_off), atol=1e-12)
    np.testing.assert_allclose(scaled.variance, base.variance * w_std**4, rtol=1e-9, atol=1e-15)


def _perms(k: int, n: int = 20) -> list[np.ndarray]:
    rng = numpy_rng(0, "exhaustive", k)
    return [random_permutation(k, rng) for _ in range(n)]


@pytest.mark.parametrize("kind", ["ntk", "nngp"])
def test_exhaustive_recovery_k1_to_16(kind: str) -> None:
    """Acceptance: with eps = 1e-10 the analytic mean rounds to P x for every nonzero x, k = 1..16, 20 permutations."""
    for k in range(1, 17):
        result = exhaustive_check(k, _perms(k), kind=kind)  # type: ignore[arg-type]
        assert result.n_inputs == 2**k - 1
        assert result.all_exact, (k, result)


@pytest.mark.parametrize("b_std", [0.5, 1.0])
@pytest.mark.parametrize("kind", ["ntk", "nngp"])
def test_exhaustive_recovery_with_bias(kind: str, b_std: float) -> None:
    for k in range(1, 17):
        result = exhaustive_check(k, _perms(k), kind=kind, b_std=b_std)  # type: ignore[arg-type]
        assert result.all_exact, (k, b_std, result)


@pytest.mark.parametrize("b_std", [0.0, 0.1, 0.5, 1.0, 2.0])
def test_exhaustive_recovery_unnormalised(b_std: float) -> None:
    for k in range(1, 11):
        for kind in ("ntk", "nngp"):
            result = exhaustive_check(
                k,
                _perms(k, 5),
                kind=kind,
                b_std=b_std,
                normalise=False,  # type: ignore[arg-type]
            )
            assert result.all_exact, (k, kind, b_std, result)


def test_strict_rule_fails_and_tolerance_fixes_it() -> None:
    """Regression test for the rounding pitfall (spec 2.7)."""
    # Analytic t = ∞: the training inputs' off-bits come out as ~±1e-17; the strict rule fails only there.
    strict_failures = 0
    for k in range(2, 13):
        perms = _perms(k, 3)
        strict = exhaustive_check(k, perms, eps=0.0)
        tolerant = exhaustive_check(k, perms, eps=1e-10)
        assert tolerant.all_exact
        assert np.all(strict.n_exact >= strict.n_inputs - k)  # only training inputs can fail
        assert np.all(strict.max_off < 1e-14)
        strict_failures += int((strict.n_inputs - strict.n_exact).sum())
    assert strict_failures > 0
    # Not fully converged training (finite t, residual ~1e-12, like trained networks): every training input's
    # off-bits are positive, so the strict rule fails at all k training inputs; eps = 1e-6 is exact everywhere.
    k = 8
    t = 240.0  # η = 1: off-bit residual e^{−(a − b) t}/k with a − b = s (2 − 1/π) ≈ 0.105: ~1.4e-12
    form = m_form(k, 1, t=t)
    assert 1e-14 < form.mu_off[0] < 1e-9
    strict = exhaustive_check(k, _perms(k, 2), eps=0.0, t=t)
    assert np.all(strict.n_exact == strict.n_inputs - k)
    assert exhaustive_check(k, _perms(k, 2), eps=1e-6, t=t).all_exact
    assert exhaustive_check(k, _perms(k, 2), eps=1e-6, t=t, mode="mform").all_exact
    # A synthetic ±1e-12 residual at an off-bit: strict rounding flips it, the tolerance does not.
    mean = np.array([[1.0 - 1e-12, 1e-12, -1e-12]])
    assert not is_exact(mean, np.array([[1, 0, 0]]), eps=0.0)[0]
    assert is_exact(mean, np.array([[1, 0, 0]]))[0]


def test_modes_and_chunking_agree() -> None:
    k = 10
    perms = _perms(k, 3)
    a = exhaustive_check(k, perms, mode="kernel", chunk_size=100)
    b = exhaustive_check(k, perms, mode="mform")
    np.testing.assert_array_equal(a.n_exact, b.n_exact)
    np.testing.assert_allclose(a.min_on, b.min_on, atol=1e-12)
    assert a.max_off.max() < 1e-14 and b.max_off.max() == 0.0


def test_exhaustive_k20_mform_bounded() -> None:
    done: list[int] = []
    result = exhaustive_check(20, _perms(20, 1), mode="mform", chunk_size=1 << 17, on_chunk=done.append)
    assert result.n_inputs == 2**20 - 1 and result.all_exact
    assert len(done) == 8 and done[-1] == 2**20 - 1


def test_rounding_and_recovery() -> None:
    np.testing.assert_array_equal(exact_round(np.array([0.5, 1e-11, 2e-10, -0.1])), [1, 0, 1, 0])
    perm = np.array([3, 0, 4, 1, 2])
    assert np.array_equal(recover_permutation(permutation_matrix(perm).T), perm)
    assert recover_permutation(np.ones((3, 3))) is None
    assert recover_permutation(np.array([[1.0, 0], [1.0, 0]])) is None
    for kind in ("ntk", "nngp"):
        for k in (1, 4, 9):
            perm = random_permutation(k, numpy_rng(3, "recover", k))
            assert np.array_equal(recover_permutation_gp(perm, kind=kind), perm)  # type: ignore[arg-type]


def test_permutation_conventions() -> None:
    perm = np.array([2, 0, 1])
    matrix = permutation_matrix(perm)
    x = np.array([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]])
    np.testing.assert_array_equal(apply_permutation(perm, x), x @ matrix.T)
    np.testing.assert_array_equal(matrix @ np.eye(3)[0], np.eye(3)[2])  # P e_0 = e_π(0)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="perm"):
        gp_predict([0, 0, 1], np.eye(3))
    with pytest.raises(ValueError, match="kind"):
        gp_predict([0, 1], np.eye(2), kind="gp")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="x_test"):
        gp_predict([0, 1], np.eye(3))
    with pytest.raises(ValueError, match="t"):
        gp_predict([0, 1], np.eye(2), t=-1.0)
    with pytest.raises(ValueError, match="m"):
        m_form(4, 5)
    with pytest.raises(ValueError, match="k"):
        exhaustive_check(0, [np.arange(1)])
    with pytest.raises(ValueError, match="mform"):
        exhaustive_check(3, [np.arange(3)], mode="mform", normalise=False)
    with pytest.raises(ValueError, match="eps"):
        exact_round(np.zeros(2), eps=math.nan)
