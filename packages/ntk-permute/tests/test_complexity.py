"""Ensemble sizes M(k, δ) as exact integers (spec 2.8, 6.2, 8.6-8.7)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ntk_permute.complexity import (
    MAX_K,
    all_inputs_failure,
    bit_failure,
    ensemble_size,
    ensemble_size_all,
    ensemble_size_crude,
    ensemble_size_single,
    single_input_failure,
    worst_ratio,
)

# Spec 6.2: k -> single worst input (m = 2) δ = 0.1 / 0.01 for NTK-GP, NNGP-GP; all inputs (m-stratified) likewise.
TABLE = {
    4: ((169, 420), (21, 51), (363, 626), (45, 76)),
    6: ((233, 486), (34, 70), (532, 795), (77, 114)),
    8: ((284, 549), (46, 88), (670, 944), (108, 152)),
    10: ((333, 614), (58, 107), (801, 1092), (139, 189)),
    16: ((479, 821), (95, 163), (1197, 1550), (238, 308)),
    20: ((579, 966), (121, 202), (1469, 1868), (307, 391)),
    32: ((894, 1423), (204, 325), (2330, 2873), (532, 655)),
    64: ((1814, 2732), (449, 676), (4866, 5805), (1204, 1436)),
}


def test_acceptance_integers() -> None:
    assert ensemble_size(8, 0.01, bound="all", kind="ntk") == 944
    assert ensemble_size(8, 0.01, bound="all", kind="nngp") == 152
    assert ensemble_size(8, 0.1, bound="single", m=2, kind="ntk") == 284
    assert ensemble_size(8, 0.1, bound="single", m=2, kind="nngp") == 46


@pytest.mark.parametrize("k", list(TABLE))
def test_spec_table(k: int) -> None:
    single_ntk, single_nngp, all_ntk, all_nngp = TABLE[k]
    for kind, single, every in (("ntk", single_ntk, all_ntk), ("nngp", single_nngp, all_nngp)):
        for i, delta in enumerate((0.1, 0.01)):
            assert ensemble_size_single(k, delta, m=2, kind=kind) == single[i]  # type: ignore[arg-type]
            assert ensemble_size_single(k, delta, kind=kind) == single[i]  # the worst input is m = 2
            assert ensemble_size_all(k, delta, kind=kind) == every[i]  # type: ignore[arg-type]


@pytest.mark.parametrize(("k", "expected"), [(256, 26_658), (1024, 126_936)])
def test_large_k_union_bound(k: int, expected: int) -> None:
    # Spec 2.8 table (NTK-GP, δ = 0.01); M/(k ln k) in [17, 19] there.
    size = ensemble_size_all(k, 0.01)
    assert size == expected
    assert 17 <= size / (k * math.log(k)) <= 19


@settings(max_examples=25)
@given(k=st.integers(2, 40), delta=st.floats(1e-6, 0.5), kind=st.sampled_from(["ntk", "nngp"]))
def test_sizes_are_minimal_and_ordered(k: int, delta: float, kind: str) -> None:
    single = ensemble_size_single(k, delta, m=2, kind=kind)  # type: ignore[arg-type]
    assert single_input_failure(k, 2, single, kind=kind) <= delta  # type: ignore[arg-type]
    if single > 1:
        assert single_input_failure(k, 2, single - 1, kind=kind) > delta  # type: ignore[arg-type]
    every = ensemble_size_all(k, delta, kind=kind)  # type: ignore[arg-type]
    assert all_inputs_failure(k, every, kind=kind) <= delta  # type: ignore[arg-type]
    if every > 1:
        assert all_inputs_failure(k, every - 1, kind=kind) > delta  # type: ignore[arg-type]
    assert single <= every <= ensemble_size_crude(k, delta, kind=kind)  # type: ignore[arg-type]
    assert ensemble_size_all(k, delta / 10, kind=kind) >= every  # type: ignore[arg-type]


def test_bit_failure_and_ratios() -> None:
    bits = bit_failure(8, 284)
    assert bits.m.tolist() == list(range(2, 9)) and math.isnan(bits.off[-1])
    # The m = 2 off-bits dominate: 6 of them fail with probability ~0.0174 each at M = 284.
    assert bits.off[0] == pytest.approx(0.0174, abs=5e-4)
    assert np.all(bits.on < 1e-30)
    assert single_input_failure(8, 1, 1) == 0.0
    for k, kind, ratio in (
        (8, "ntk", 63.7),
        (10, "ntk", 67.2),
        (30, "ntk", 117.5),
        (256, "ntk", 748.6),
        (8, "nngp", 10.2),
        (30, "nngp", 26.5),
    ):
        value, level, bit = worst_ratio(k, kind=kind)  # type: ignore[arg-type]
        assert (level, bit) == (2, "off") and value == pytest.approx(ratio, abs=0.05)


def test_crude_bound_is_quadratic() -> None:
    sizes = {k: ensemble_size_crude(k, 0.01) for k in (64, 128, 256, 512)}
    ratios = [sizes[k] / k**2 for k in sizes]
    assert all(0.5 * ratios[-1] < r < 2 * ratios[-1] for r in ratios)  # ~ c k²
    assert sizes[512] > 10 * ensemble_size_all(512, 0.01)


def test_trivial_and_bad_arguments() -> None:
    assert ensemble_size(1, 0.1) == 1 and ensemble_size(1, 0.1, bound="single") == 1
    assert ensemble_size(5, 0.1, bound="single", m=1) == 1
    with pytest.raises(ValueError, match="delta"):
        ensemble_size(8, 1.5)
    with pytest.raises(ValueError, match="bound"):
        ensemble_size(8, 0.1, bound="tight")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="m"):
        ensemble_size(8, 0.1, bound="all", m=2)
    with pytest.raises(ValueError, match="n_members"):
        bit_failure(8, 0)
    with pytest.raises(ValueError, match="k"):
        ensemble_size(0, 0.1)


def test_union_bound_at_the_limit() -> None:
    # README / spec 2.8: 2,308,841,026 (M/(k^1.5 ln k) = 0.155) at k = 2^20; the search drops negligible terms.
    assert ensemble_size_all(MAX_K, 0.01) == 2_308_841_026


@pytest.mark.parametrize(("k", "b_std"), [(12, 0.0), (30, 0.0), (30, 1.0), (100, 0.5)])
@pytest.mark.parametrize("kind", ["ntk", "nngp"])
def test_worst_input_search_is_the_max_over_levels(k: int, b_std: float, kind: str) -> None:
    # m=None searches all levels at once, dropping the settled ones; it must equal the per-level maximum.
    for delta in (0.3, 1e-3):
        per_level = [ensemble_size_single(k, delta, m=m, kind=kind, b_std=b_std) for m in range(2, k + 1)]  # type: ignore[arg-type]
        assert ensemble_size_single(k, delta, kind=kind, b_std=b_std) == max(per_level)  # type: ignore[arg-type]


def test_k_beyond_the_limit_is_refused_up_front() -> None:
    # Was: k = 10^12 died of numpy's ArrayMemoryError, k = 10^8 ran for minutes.
    for bound in ("crude", "all"):
        with pytest.raises(ValueError, match=r"k 1048577: above the limit 1048576"):
            ensemble_size(MAX_K + 1, 0.01, bound=bound)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="limit"):
        ensemble_size(10**12, 0.01, bound="crude")
    with pytest.raises(ValueError, match="limit"):
        worst_ratio(10**8)
    # A single input at a given level is O(1) in k, but the statistics of every level are computed (and checked).
    assert ensemble_size(MAX_K, 0.01, bound="crude") == 4_273_576_128_855


def test_zero_weight_std_is_refused() -> None:
    # Was: "no ensemble size up to 1e15" after a long search (every kernel is 0 at sigma_w = 0).
    with pytest.raises(ValueError, match="w_std"):
        ensemble_size(8, 0.1, w_std=0.0)
