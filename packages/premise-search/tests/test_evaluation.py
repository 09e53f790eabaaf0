"""Upstream metric definitions (spec unit cases, property test against repro_core) and benchmark loaders."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from premise_search.corpus import Declaration
from premise_search.evaluation import (
    PremiseGroup,
    benchmark_targets,
    covered_at_k,
    docstring_pool,
    load_mathlib_mpr,
    load_mathlib_qr,
    load_prop_ids,
    mpr_metrics,
    ndcg_at_k,
    qr_metrics,
    recall_at_k_single,
    recall_group_at_k,
    short_name,
)


def test_single_relevant_unit_cases() -> None:
    assert ndcg_at_k(["a", "b", "c"], "c", 10) == 0.5
    assert ndcg_at_k(["c", "a"], "c", 10) == 1.0
    assert ndcg_at_k(["a", "b"], "c", 10) == 0.0
    eleven = [f"x{i}" for i in range(10)] + ["c"]
    assert ndcg_at_k(eleven, "c", 10) == 0.0
    assert [recall_at_k_single(r, "c", 10) for r in (["a", "b", "c"], ["c"], eleven)] == [1.0, 1.0, 0.0]


def test_premise_group_unit_cases() -> None:
    groups = [
        PremiseGroup("original", ("A", "B")),
        PremiseGroup("original", ("C",)),
        PremiseGroup("alternative", ("D",)),
    ]
    assert recall_group_at_k(["B", "X", "D"], groups, 3) == pytest.approx(2 / 3)
    assert covered_at_k(["B", "X", "D"], groups, 3) == 1.0
    assert recall_group_at_k(["B", "C"], groups, 3) == pytest.approx(2 / 3)
    assert covered_at_k(["B", "C"], groups, 3) == 1.0
    assert recall_group_at_k(["X"], groups, 3) == 0.0 and covered_at_k(["X"], groups, 3) == 0.0
    assert short_name("Mathlib.Foo::Foo.bar::17") == "Foo.bar" and short_name("Foo.bar") == "Foo.bar"
    assert recall_group_at_k(["M::B::3", "M::C"], groups, 1) == pytest.approx(1 / 3)


@settings(max_examples=30)
@given(st.integers(0, 2**32 - 1))
def test_batch_metrics_equal_upstream_formulas(seed: int) -> None:
    rng = np.random.default_rng(seed)
    names = [f"d{i}" for i in range(40)]
    rankings, targets = [], []
    for _ in range(1000 // 30 + 1):
        rankings.append(list(rng.choice(names, size=int(rng.integers(0, 30)), replace=True)))
        targets.append(str(rng.choice(names)))
    metrics = qr_metrics(rankings, targets, ks=(1, 5, 10))
    for k in (1, 5, 10):
        expected_ndcg = [ndcg_at_k(r, t, k) for r, t in zip(rankings, targets, strict=True)]
        expected_rec = [recall_at_k_single(r, t, k) for r, t in zip(rankings, targets, strict=True)]
        np.testing.assert_allclose(metrics[f"nDCG@{k}"], expected_ndcg, atol=1e-12)
        np.testing.assert_array_equal(metrics[f"Recall@{k}"], expected_rec)


def test_mpr_metrics_are_percentages() -> None:
    groups = (PremiseGroup("original", ("A",)), PremiseGroup("original", ("B",)))
    from premise_search.evaluation import MPRQuery

    query = MPRQuery("q", 1, "main", "nl", "formal", groups)
    scores = mpr_metrics([["A", "x", "B"]], [query], ks=(1, 5))
    assert scores == {"Recall@1(group)": 50.0, "Covered@1": 0.0, "Recall@5(group)": 100.0, "Covered@5": 100.0}
    assert math.isclose(1 / math.log2(3 + 1), ndcg_at_k(["a", "b", "x", "c"], "x", 5))


def test_shipped_benchmark_counts() -> None:
    qr = load_mathlib_qr()
    assert len(qr) == 946 and sum(q.fair for q in qr) == 810
    assert len({q.full_name for q in qr}) == 200
    mpr = load_mathlib_mpr()
    groups = [g for p in mpr for g in p.groups]
    assert len(mpr) == 69 and len(groups) == 204
    assert sum(g.kind == "original" for g in groups) == 171 and sum(g.kind == "alternative" for g in groups) == 33
    assert len({d for g in groups for d in g.docs}) == 341
    prop = load_prop_ids()
    assert len(prop) == 50 and set(prop) <= {p.qid for p in mpr}


def test_loaders_read_the_project_files(shared_data: Path) -> None:
    bench = shared_data / "premise-search" / "lsv2-benchmark"
    if not bench.is_dir():
        pytest.skip(f"{bench} not found")
    assert load_mathlib_qr(bench / "MathlibQR.json") == load_mathlib_qr()
    assert load_mathlib_mpr(bench / "MathlibMPR.json") == load_mathlib_mpr()


def test_bad_benchmark_file(tmp_path: Path) -> None:
    path = tmp_path / "MathlibQR.json"
    path.write_text('[{"id": "X"}]', encoding="utf-8")
    with pytest.raises(ValueError, match="full_name"):
        load_mathlib_qr(path)
    path.write_text("{oops", encoding="utf-8")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_mathlib_mpr(path)


def test_docstring_pool_keeps_plain_first_paragraphs_of_non_targets() -> None:
    target = sorted(benchmark_targets())[0]
    doc = "The sum of two even numbers is even.\n\nSee also the odd case."
    corpus = [
        Declaration(name="Nat.even_add_even", kind="theorem", docstring=doc),
        Declaration(name=target, kind="theorem", docstring=doc),  # a benchmark target: never a query
        Declaration(name="Nat.odd_x", kind="theorem", docstring="Uses `Nat.Odd` in the statement of it."),
        Declaration(name="Nat.short", kind="theorem", docstring="Too short."),
        Declaration(name="Nat._private", kind="theorem", docstring=doc),
        Declaration(name="Nat.inst", kind="instance", docstring=doc),
    ]
    assert docstring_pool(corpus) == [(0, "The sum of two even numbers is even.")]
    assert docstring_pool(corpus, strip_code=True) == [
        (0, "The sum of two even numbers is even."),
        (2, "Uses Nat.Odd in the statement of it."),  # backticks removed, kept for the adapter's training
    ]
    assert {r.full_name for r in load_mathlib_qr()} <= benchmark_targets()
