"""Krippendorff's alpha from every input the issue asks for (#12 points 5 and 6), against the `krippendorff`
package (GPL, test-only oracle) to 1e-9: a long `worker, task, label` table, a `value_counts` matrix, string
categories, custom distance functions, and matrices in either memory order, split into many blocks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from truth_crowd import agreement
from truth_crowd.agreement import LEVELS, answers_value_counts, krippendorff_alpha, value_counts_matrix

krippendorff = pytest.importorskip("krippendorff", reason="test oracle: pip install krippendorff (GPL, tests only)")


def _long(matrix: np.ndarray, rng: np.random.Generator, *, string_ids: bool) -> pd.DataFrame:
    raters, units = np.nonzero(~np.isnan(matrix))
    order = rng.permutation(raters.size)  # row order must not matter
    raters, units = raters[order], units[order]
    values = matrix[raters, units]
    return pd.DataFrame(
        {
            "worker": [f"w{r}" for r in raters] if string_ids else raters,
            "task": [f"s{u}" for u in units] if string_ids else units * 7 + 3,
            "label": values.astype(int) if np.array_equal(values, np.round(values)) else values,
        }
    )


def _matrices(rng: np.random.Generator) -> list[np.ndarray]:
    """Integer Likert data (dense and sparse), a 0..100 scale, and real values (the sort path)."""
    out = []
    for missing in (0.0, 0.4, 0.9):
        truth = rng.integers(-2, 3, 300)
        m = np.clip(truth[None, :] + rng.integers(-1, 2, (12, 300)), -2, 2).astype(float)
        m[rng.random(m.shape) < missing] = np.nan
        out.append(m)
    wide = np.clip(np.round(rng.normal(50, 20, (9, 200))), 0, 100)
    wide[rng.random(wide.shape) < 0.3] = np.nan
    real = np.round(rng.normal(3, 1, (7, 150)), 3)
    real[rng.random(real.shape) < 0.3] = np.nan
    return [*out, wide, real]


@pytest.mark.parametrize("level", LEVELS)
def test_long_table_and_blocked_matrix_equal_krippendorff(level: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(agreement, "_BLOCK_CELLS", 500)  # many row blocks, dense and sparse ones
    rng = np.random.default_rng(7)
    for matrix in _matrices(rng):
        expected = krippendorff.alpha(matrix, level_of_measurement=level)
        assert krippendorff_alpha(matrix, level=level) == pytest.approx(expected, abs=1e-9)
        fortran = np.asfortranarray(matrix)  # units-major memory order takes the other walk
        assert krippendorff_alpha(fortran, level=level) == pytest.approx(expected, abs=1e-9)
        for string_ids in (False, True):
            answers = _long(matrix, rng, string_ids=string_ids)
            assert krippendorff_alpha(answers=answers, level=level) == pytest.approx(expected, abs=1e-9)
        domain = np.unique(matrix[~np.isnan(matrix)])
        if domain.size <= 101:
            with_domain = krippendorff.alpha(matrix, level_of_measurement=level, value_domain=domain)
            assert krippendorff_alpha(matrix, level=level, value_domain=domain) == pytest.approx(with_domain, abs=1e-9)
            assert krippendorff_alpha(answers=answers, level=level, value_domain=domain) == pytest.approx(
                with_domain, abs=1e-9
            )


def test_long_table_of_to_long_columns_and_missing_values() -> None:
    answers = pd.DataFrame(
        {
            "worker_id": ["a", "b", "c", "a", "b", "c", "a", "b"],
            "statement_id": ["s1", "s1", "s1", "s2", "s2", "s2", "s3", "s3"],
            "value": [1.0, 1.0, 2.0, 0.0, 0.0, np.nan, 2.0, 2.0],
        }
    )
    counts, domain = answers_value_counts(answers, unit="statement_id", value="value", rater="worker_id")
    matrix = answers.pivot(index="worker_id", columns="statement_id", values="value").to_numpy()
    expected_counts, expected_domain = value_counts_matrix(matrix)
    np.testing.assert_array_equal(counts, expected_counts)
    np.testing.assert_array_equal(domain, expected_domain)


def test_long_table_refuses_a_repeated_pair() -> None:
    answers = pd.DataFrame({"worker": ["a", "b", "a"], "task": [1, 1, 1], "label": [1, 2, 2]})
    with pytest.raises(ValueError, match=r"worker 'a' on task 1"):
        krippendorff_alpha(answers=answers)
    # Without rater identity each row is one rating (the caller vouches for it).
    counts, _ = answers_value_counts(answers, rater=None)
    assert counts.sum() == 3


@pytest.mark.parametrize("level", LEVELS)
def test_value_counts_input_equals_krippendorff(level: str) -> None:
    rng = np.random.default_rng(3)
    counts = rng.integers(0, 4, size=(40, 5))
    domain = [1, 2, 3, 5, 8]
    expected = krippendorff.alpha(value_counts=counts, value_domain=domain, level_of_measurement=level)
    assert krippendorff_alpha(value_counts=counts, value_domain=domain, level=level) == pytest.approx(
        expected, abs=1e-9
    )
    default = krippendorff.alpha(value_counts=counts, level_of_measurement=level)  # domain 0..K-1
    assert krippendorff_alpha(value_counts=counts, level=level) == pytest.approx(default, abs=1e-9)


def test_value_counts_input_is_checked() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        krippendorff_alpha(np.ones((2, 2)), value_counts=np.ones((2, 2)))
    with pytest.raises(ValueError, match="whole numbers"):
        krippendorff_alpha(value_counts=[[1.5, 1.0], [1.0, 1.0]])
    with pytest.raises(ValueError, match="columns"):
        krippendorff_alpha(value_counts=[[1, 1], [1, 1]], value_domain=[1, 2, 3])


def _absolute(v1, v2, i1, i2, n_v, dtype=np.float64):  # type: ignore[no-untyped-def]
    """|c - k| (not squared): a custom metric in the krippendorff package's convention."""
    return np.abs(v1 - v2).astype(dtype)


def _rank_gap(v1, v2, i1, i2, n_v, dtype=np.float64):  # type: ignore[no-untyped-def]
    """Squared gap of domain positions: uses i1, i2 (positions) rather than the values."""
    return ((i1 - i2) ** 2).astype(dtype)


@pytest.mark.parametrize("metric", [_absolute, _rank_gap])
def test_custom_distance_equals_krippendorff(metric) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(11)
    for matrix in _matrices(rng)[:4]:
        domain = np.unique(matrix[~np.isnan(matrix)])
        expected = krippendorff.alpha(matrix, level_of_measurement=metric, value_domain=domain)
        assert krippendorff_alpha(matrix, level=metric, value_domain=domain) == pytest.approx(expected, abs=1e-9)
    interval = krippendorff_alpha(matrix, level="interval")
    squared = krippendorff_alpha(matrix, level=lambda v1, v2, **_: (v1 - v2) ** 2)
    assert squared == pytest.approx(interval, abs=1e-12)
    with pytest.raises(ValueError, match="shape"):
        krippendorff_alpha(matrix, level=lambda v1, v2, **_: np.zeros(3))


def test_string_categories_nominal_and_ordinal() -> None:
    rng = np.random.default_rng(5)
    names = np.array(["false", "mostly-false", "half-true", "true"])
    codes = np.clip(rng.integers(0, 4, 80)[None, :] + rng.integers(-1, 2, (6, 80)), 0, 3)
    labels = names[codes].astype(object)
    labels[rng.random(labels.shape) < 0.3] = None
    reference = np.where(labels == None, "nan", labels).astype(str)  # noqa: E711  (the package's missing marker)
    expected = krippendorff.alpha(reference, level_of_measurement="nominal")
    assert krippendorff_alpha(labels, level="nominal") == pytest.approx(expected, abs=1e-9)
    ordered = ["false", "mostly-false", "half-true", "true"]
    expected = krippendorff.alpha(reference, level_of_measurement="ordinal", value_domain=ordered)
    assert krippendorff_alpha(labels, level="ordinal", value_domain=ordered) == pytest.approx(expected, abs=1e-9)
    # The same through a long table of strings.
    raters, units = np.nonzero(labels != None)  # noqa: E711
    answers = pd.DataFrame({"worker": raters, "task": units, "label": labels[raters, units]})
    assert krippendorff_alpha(answers=answers, level="nominal") == pytest.approx(
        krippendorff.alpha(reference, level_of_measurement="nominal"), abs=1e-9
    )
    with pytest.raises(ValueError, match="needs numbers"):
        krippendorff_alpha(labels, level="interval")
    with pytest.raises(ValueError, match="misses"):
        krippendorff_alpha(labels, level="nominal", value_domain=["false", "true"])
