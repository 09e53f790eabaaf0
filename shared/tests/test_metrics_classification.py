"""Classification (accuracy, exact match, per-position accuracy) and regression (MAE, R²) metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from repro_core.metrics import accuracy, exact_match, mae, per_position_accuracy, r2

sk_metrics = pytest.importorskip("sklearn.metrics")


# --- classification -----------------------------------------------------------------------------------------------


def test_accuracy_labels_and_logits() -> None:
    targets = np.array([0, 2, 1, 1])
    labels = np.array([0, 1, 1, 0])
    assert accuracy(labels, targets) == 0.5
    logits = np.eye(3)[labels] * 5.0 - 1.0
    assert accuracy(logits, targets) == 0.5
    np.testing.assert_array_equal(accuracy(logits, targets, reduce="none"), [1.0, 0.0, 1.0, 0.0])
    assert accuracy(labels, targets) == sk_metrics.accuracy_score(targets, labels)
    assert isinstance(accuracy(labels, targets), float)


def test_accuracy_on_sequences_with_mask_and_ignore_index() -> None:
    targets = np.array([[1, 2, -100], [3, -100, -100]])
    preds = np.array([[1, 0, 5], [3, 7, 7]])
    # Counted positions: (0,0) ok, (0,1) wrong, (1,0) ok.
    assert accuracy(preds, targets, ignore_index=-100) == pytest.approx(2 / 3)
    mask = targets != -100
    assert accuracy(preds, targets, mask=mask) == pytest.approx(2 / 3)
    per_item = accuracy(preds, targets, mask=mask, reduce="none")
    assert per_item.shape == (2, 3) and np.isnan(per_item[0, 2])
    assert math.isnan(accuracy(preds, targets, mask=np.zeros_like(mask)))


def test_exact_match_and_per_position_accuracy() -> None:
    targets = np.array([[1, 2, 3], [1, 2, 3], [4, 5, -1], [-1, -1, -1]])
    preds = np.array([[1, 2, 3], [1, 0, 3], [4, 5, 9], [0, 0, 0]])
    per_row = exact_match(preds, targets, ignore_index=-1, reduce="none")
    # Row 2 is right where it counts; row 3 has nothing to count -> NaN, left out of the mean.
    np.testing.assert_array_equal(per_row[:3], [1.0, 0.0, 1.0])
    assert np.isnan(per_row[3])
    assert exact_match(preds, targets, ignore_index=-1) == pytest.approx(2 / 3)
    assert exact_match(preds, targets) == pytest.approx(1 / 4)
    np.testing.assert_allclose(per_position_accuracy(preds, targets, ignore_index=-1), [1.0, 2 / 3, 1.0])
    np.testing.assert_allclose(per_position_accuracy(preds, targets), [0.75, 0.5, 0.5])
    column_masked = np.ones_like(targets, dtype=bool)
    column_masked[:, 1] = False
    assert np.isnan(per_position_accuracy(preds, targets, mask=column_masked)[1])
    logits = np.eye(10)[preds[:2]]  # [2, 3, 10] scores -> argmax gives preds[:2]
    assert exact_match(logits, targets[:2]) == pytest.approx(1 / 2)


@settings(max_examples=200)
@given(data=st.data())
def test_classification_properties(data: st.DataObject) -> None:
    n, length, n_classes = data.draw(st.integers(1, 6)), data.draw(st.integers(1, 5)), data.draw(st.integers(1, 4))
    targets = data.draw(hnp.arrays(np.int64, (n, length), elements=st.integers(0, n_classes - 1)))
    logits = data.draw(hnp.arrays(np.float64, (n, length, n_classes), elements=st.integers(-3, 3).map(float)))
    labels = logits.argmax(axis=-1)
    correct = labels == targets
    assert accuracy(logits, targets) == pytest.approx(correct.mean())
    assert exact_match(logits, targets) == pytest.approx(correct.all(axis=1).mean())
    np.testing.assert_allclose(per_position_accuracy(logits, targets), correct.mean(axis=0))
    # Token accuracy is the mean of per-position accuracies weighted equally (all positions count here).
    assert accuracy(labels, targets) == pytest.approx(per_position_accuracy(labels, targets).mean())
    assert exact_match(labels, targets) <= accuracy(labels, targets) + 1e-12


def test_classification_torch_inputs_equal_numpy() -> None:
    torch = pytest.importorskip("torch")
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 4, 6, generator=gen, requires_grad=True)
    targets = torch.randint(0, 6, (5, 4), generator=gen)
    np_logits, np_targets = logits.detach().numpy(), targets.numpy()
    assert accuracy(logits, targets) == accuracy(np_logits, np_targets)
    assert exact_match(logits, targets) == exact_match(np_logits, np_targets)
    np.testing.assert_array_equal(per_position_accuracy(logits, targets), per_position_accuracy(np_logits, np_targets))
    expected_token_acc = (logits.argmax(-1) == targets).double().mean().item()
    assert accuracy(logits, targets) == pytest.approx(expected_token_acc)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: accuracy(np.zeros((3, 2, 4)), np.zeros(3, dtype=int)), "predictions must have the shape of targets"),
        (lambda: accuracy(np.array([[np.nan, 1.0]]), [0]), "predictions contains NaN"),
        (lambda: accuracy([0, 1], [0.5, 1.0]), "integer labels"),
        (lambda: accuracy([0, 1], [0, 1], mask=[1, 1]), "mask must be boolean"),
        (lambda: accuracy([0, 1], [0, 1], mask=[True]), "mask must have the shape"),
        (lambda: exact_match([0, 1], [0, 1], reduce="max"), "reduce must be"),
        (lambda: per_position_accuracy([0, 1], [0, 1]), "targets must be 2-D"),
    ],
)
def test_classification_validation_errors(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]


# --- regression ---------------------------------------------------------------------------------------------------

VALUES = st.one_of(st.integers(-3, 3).map(float), st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False))


@st.composite
def regression_pairs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(2, 12))
    shape = (n,) if draw(st.booleans()) else (n, draw(st.integers(1, 4)))
    targets = draw(hnp.arrays(np.float64, shape, elements=VALUES))
    if draw(st.booleans()):
        predictions = targets + draw(hnp.arrays(np.float64, shape, elements=st.integers(-1, 1).map(float)))
    else:
        predictions = draw(hnp.arrays(np.float64, shape, elements=VALUES))
    return predictions, targets


@settings(max_examples=200)
@given(pair=regression_pairs())
def test_mae_and_r2_equal_sklearn(pair: tuple[np.ndarray, np.ndarray]) -> None:
    predictions, targets = pair
    for multioutput in ("uniform_average", "raw_values"):
        got_mae = mae(predictions, targets, multioutput=multioutput)
        want_mae = sk_metrics.mean_absolute_error(targets, predictions, multioutput=multioutput)
        np.testing.assert_allclose(got_mae, want_mae, rtol=1e-9, atol=1e-9)
        got_r2 = r2(predictions, targets, multioutput=multioutput)
        want_r2 = sk_metrics.r2_score(targets, predictions, multioutput=multioutput)
        np.testing.assert_allclose(got_r2, want_r2, rtol=1e-9, atol=1e-9)
    assert isinstance(r2(predictions, targets), float) and isinstance(mae(predictions, targets), float)


def test_r2_constant_targets_and_force_finite() -> None:
    targets = np.array([2.0, 2.0, 2.0])
    assert r2(targets, targets) == 1.0
    assert r2(targets + np.array([0.0, 1.0, 0.0]), targets) == 0.0
    assert r2(targets + np.array([0.0, 1.0, 0.0]), targets, force_finite=False) == -math.inf
    assert math.isnan(r2(targets, targets, force_finite=False))
    assert r2([1.0, 2.0, 3.0], [1.0, 2.0, 4.0]) == pytest.approx(1 - 1 / (14 / 3))


def test_regression_torch_inputs_equal_numpy() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    targets, predictions = rng.normal(size=(20, 3)), rng.normal(size=(20, 3))
    assert r2(torch.from_numpy(predictions), torch.from_numpy(targets)) == r2(predictions, targets)
    assert mae(torch.from_numpy(predictions), torch.from_numpy(targets)) == mae(predictions, targets)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: mae([1.0, 2.0], [1.0, 2.0, 3.0]), "same shape"),
        (lambda: r2([1.0], [2.0]), "at least 2 samples"),
        (lambda: mae([np.nan, 1.0], [1.0, 2.0]), "predictions contains NaN"),
        (lambda: r2([1.0, 2.0], [np.inf, 1.0]), "targets contains infinite"),
        (lambda: mae(np.ones((2, 2, 2)), np.ones((2, 2, 2))), r"\[n\] or \[n, n_outputs\]"),
        (lambda: r2([1.0, 2.0], [1.0, 2.0], multioutput="variance_weighted"), "multioutput must be"),
    ],
)
def test_regression_validation_errors(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]
