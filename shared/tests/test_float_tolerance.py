"""`repro_core.testing.float_tolerance`: a tolerance derived from the dtype and the number of terms (issue #14)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from repro_core.testing import float_tolerance


def test_scales_with_epsilon_terms_and_size() -> None:
    eps32 = float(np.finfo(np.float32).eps)
    assert float_tolerance(torch.float32, 1) == eps32
    assert float_tolerance("float32", 100) == float_tolerance(np.float32, 100) == 100 * eps32
    assert float_tolerance(torch.float64, 10, scale=4.0) == 40 * float(np.finfo(np.float64).eps)
    assert float_tolerance(torch.bfloat16, 1) == 2.0**-7 and float_tolerance(torch.float16, 1) == 2.0**-10
    for bad in (torch.int64, "int32", object):
        with pytest.raises(ValueError, match="dtype"):
            float_tolerance(bad, 1)
    for n_terms in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="n_terms"):
            float_tolerance(torch.float32, n_terms)  # type: ignore[arg-type]
    for scale in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="scale"):
            float_tolerance(torch.float32, 1, scale=scale)


@settings(max_examples=50)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 4096))
def test_bounds_the_rounding_of_float32_inner_products(seed: int, n: int) -> None:
    """The worst-case bound holds for any draw: float32 <x, y> against float64, scaled by sum |x_i y_i|."""
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    exact = float(np.dot(x.astype(np.float64), y.astype(np.float64)))
    ours = float(torch.dot(torch.from_numpy(x), torch.from_numpy(y)))
    magnitude = float(np.abs(x.astype(np.float64) * y).sum())
    assert abs(ours - exact) <= float_tolerance(torch.float32, n, scale=magnitude)
