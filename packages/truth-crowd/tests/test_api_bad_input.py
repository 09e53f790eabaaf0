"""Aggregator API input checks (issue #12 point 4): repeated (worker, task) pairs and labels of mixed kinds are
refused with a clear `ValueError` by every aggregator and by `to_reliability_matrix`, never counted twice or left to
a `TypeError` from sorting; `drop_duplicate_answers` is the explicit keep rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from truth_crowd.aggregation import (
    DawidSkene,
    drop_duplicate_answers,
    majority_vote,
    mean_aggregate,
    median_aggregate,
)
from truth_crowd.inference import GLAD, MACE, OneCoinDawidSkene, Wawa, ZeroBasedSkill
from truth_crowd.schema import to_reliability_matrix

ROWS = [("a", "t1", 1), ("b", "t1", 1), ("c", "t1", 0), ("a", "t2", 0), ("b", "t2", 0), ("c", "t2", 1)]
FITTERS = {
    "mv": lambda answers: majority_vote(answers),
    "ds": lambda answers: DawidSkene().fit_predict(answers),
    "onecoin": lambda answers: OneCoinDawidSkene().fit_predict(answers),
    "glad": lambda answers: GLAD().fit_predict(answers),
    "mace": lambda answers: MACE().fit_predict(answers),
    "wawa": lambda answers: Wawa().fit_predict(answers),
    "zbs": lambda answers: ZeroBasedSkill().fit_predict(answers),
    "mean": mean_aggregate,
    "median": median_aggregate,
    "reliability_matrix": to_reliability_matrix,
}


def _answers(rows: list[tuple[str, str, object]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["worker", "task", "label"])


@pytest.mark.parametrize("name", list(FITTERS))
def test_repeated_worker_task_pair_is_refused(name: str) -> None:
    answers = _answers([*ROWS, ("c", "t1", 1)])  # worker c answers t1 twice
    with pytest.raises(ValueError, match=r"\(worker, task\) pair.*worker 'c' on task 't1'"):
        FITTERS[name](answers)


@pytest.mark.parametrize("name", [n for n in FITTERS if n not in ("mean", "median", "reliability_matrix")])
def test_mixed_label_kinds_are_refused(name: str) -> None:
    answers = _answers([*ROWS[:-1], ("c", "t2", "1")])  # the string "1" beside the numbers 0 and 1
    with pytest.raises(ValueError, match="labels mix kinds"):
        FITTERS[name](answers)


def test_reliability_matrix_refuses_string_labels_clearly() -> None:
    with pytest.raises(ValueError, match="labels must be numbers"):
        to_reliability_matrix(_answers([("a", "t1", "yes"), ("b", "t1", "no")]))


def test_drop_duplicate_answers_is_the_explicit_policy() -> None:
    answers = _answers([*ROWS, ("c", "t1", 1)])
    first = drop_duplicate_answers(answers)
    last = drop_duplicate_answers(answers, keep="last")
    assert mean_aggregate(first).to_dict() == pytest.approx({"t1": 2 / 3, "t2": 1 / 3})
    assert mean_aggregate(last).to_dict() == pytest.approx({"t1": 1.0, "t2": 1 / 3})
    with pytest.raises(ValueError, match="keep"):
        drop_duplicate_answers(answers, keep="both")  # type: ignore[arg-type]


def test_reliability_matrix_equals_pivot() -> None:
    rng = np.random.default_rng(0)
    pairs = rng.choice(40 * 60, size=900, replace=False)
    answers = pd.DataFrame(
        {"worker": [f"w{p // 60}" for p in pairs], "task": pairs % 60, "label": rng.integers(-2, 3, 900)}
    )
    expected = answers.pivot(index="worker", columns="task", values="label").astype(float)
    pd.testing.assert_frame_equal(to_reliability_matrix(answers), expected, check_names=True)
