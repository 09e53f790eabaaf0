"""Worker and answer-set quality metrics with crowd-kit's definitions (`crowdkit.metrics`), vectorised.

- `accuracy_on_aggregates`: the share of answers equal to the task's aggregate label (overall, or per worker);
- `consistency`: how sure a one-coin model with the given worker skills is of the aggregate label, averaged over
  tasks: per task, P(label L) ∝ Π over its answers of (skill if the answer is L else (1 − skill)/(K − 1)), and the
  task's consistency is the normalised P of its aggregate label;
- `uncertainty`: the entropy of the summed per-answer label distributions (skill on the answer's label, the rest
  spread evenly), per task or per worker; with no skills every answer is one-hot, so it is the entropy of the votes.

All take crowd-kit's `worker, task, label` frame; the products are sums of logs (two `bincount`s per task), so there
is no underflow on tasks with many answers (crowd-kit multiplies probabilities and scores such a task 0).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from scipy import special

from truth_crowd.aggregation import EncodedAnswers, encode_answers, majority_vote

__all__ = ["accuracy_on_aggregates", "consistency", "uncertainty"]


def _aggregate_codes(coded: EncodedAnswers, aggregates: pd.Series) -> np.ndarray:
    """Label code of each task's aggregate, `[n_tasks]`; -1 where a task has none."""
    if not isinstance(aggregates, pd.Series):
        raise ValueError("aggregates must be a pandas Series indexed by task")
    per_task = aggregates.reindex(coded.tasks)
    codes = np.full(len(coded.tasks), -1, dtype=np.intp)
    known = per_task.notna().to_numpy()
    found = coded.labels.get_indexer(per_task[known].to_numpy())
    codes[np.flatnonzero(known)] = found  # a label no worker gave matches no answer (-1)
    return codes


def accuracy_on_aggregates(
    answers: pd.DataFrame, aggregates: pd.Series | None = None, *, by: Literal["worker"] | None = None
) -> float | pd.Series:
    """Share of answers that equal their task's aggregate (default: majority vote, lowest label on ties).

    Tasks without an aggregate are left out. `by="worker"` gives one share per worker (crowd-kit's
    `accuracy_on_aggregates(..., by="worker")`, which majority-vote skills are).
    """
    coded = encode_answers(answers)
    if aggregates is None:
        aggregates = majority_vote(answers)
    codes = _aggregate_codes(coded, aggregates)
    on = codes[coded.task] != -1
    on &= ~(aggregates.reindex(coded.tasks).isna().to_numpy()[coded.task])
    right = (codes[coded.task] == coded.label) & on
    if by is None:
        return float(right.sum() / max(on.sum(), 1))
    if by != "worker":
        raise ValueError(f"by must be None or 'worker', got {by!r}")
    n_workers = len(coded.workers)
    scored = np.bincount(coded.worker, weights=on, minlength=n_workers)
    hits = np.bincount(coded.worker, weights=right, minlength=n_workers)
    keep = scored > 0
    return pd.Series(hits[keep] / scored[keep], index=coded.workers[keep], name="accuracy")


def _skills(coded: EncodedAnswers, skills: pd.Series | None, default: float | None) -> np.ndarray:
    if skills is None:
        return np.full(len(coded.workers), 1.0 if default is None else default)
    values = skills.reindex(coded.workers).to_numpy(dtype=float)
    if np.isnan(values).any():
        missing = coded.workers[np.isnan(values)]
        raise ValueError(f"no skill for {len(missing)} worker(s), e.g. {list(missing[:3])}")
    if ((values < 0) | (values > 1)).any():
        raise ValueError("skills must be probabilities in [0, 1]")
    return values


def _log_label_likelihood(coded: EncodedAnswers, skill: np.ndarray) -> np.ndarray:
    """log Π over a task's answers of P(answer | true label L), `[n_tasks, n_labels]` (one-coin model).

    log P(L) = Σ_{answers = L} log s + Σ_{answers ≠ L} log((1 − s)/(K − 1)); the zero factors (skill 0 or 1) are
    counted apart from the finite logs, so a label is impossible exactly when one of its factors is 0.
    """
    n_tasks, n_labels = len(coded.tasks), len(coded.labels)
    s = skill[coded.worker]
    with np.errstate(divide="ignore"):
        log_right = np.log(s)
        log_wrong = np.log((1 - s) / max(n_labels - 1, 1))
    cell = coded.task * n_labels + coded.label

    def per_task(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        finite = np.isfinite(values)
        return (
            np.bincount(coded.task, weights=np.where(finite, values, 0.0), minlength=n_tasks),
            np.bincount(coded.task, weights=~finite, minlength=n_tasks),
        )

    def per_cell(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        finite = np.isfinite(values)
        shape = (n_tasks, n_labels)
        return (
            np.bincount(cell, weights=np.where(finite, values, 0.0), minlength=n_tasks * n_labels).reshape(shape),
            np.bincount(cell, weights=~finite, minlength=n_tasks * n_labels).reshape(shape),
        )

    wrong_all, wrong_all_zero = per_task(log_wrong)
    wrong_here, wrong_here_zero = per_cell(log_wrong)
    right_here, right_here_zero = per_cell(log_right)
    log_like = wrong_all[:, None] - wrong_here + right_here
    zeros = wrong_all_zero[:, None] - wrong_here_zero + right_here_zero
    return np.where(zeros > 0, -np.inf, log_like)


def consistency(
    answers: pd.DataFrame,
    skills: pd.Series | None = None,
    aggregates: pd.Series | None = None,
    *,
    by_task: bool = False,
) -> float | pd.Series:
    """crowd-kit's `consistency`: mean (or per-task, `by_task=True`) posterior of the aggregate label under a
    one-coin model with the workers' `skills` (default: majority vote and its skills, the accuracy of each worker
    on the majority labels, as crowd-kit's default aggregator). A task where every label is impossible scores 0."""
    coded = encode_answers(answers)
    if aggregates is None:
        aggregates = majority_vote(answers)
    if skills is None:
        skills = accuracy_on_aggregates(answers, aggregates, by="worker")
    log_like = _log_label_likelihood(coded, _skills(coded, skills, None))
    codes = _aggregate_codes(coded, aggregates)
    finite = np.isfinite(log_like).any(axis=1)
    log_norm = np.where(finite, special.logsumexp(np.where(finite[:, None], log_like, 0.0), axis=1), 0.0)
    chosen = np.where(codes >= 0, log_like[np.arange(len(codes)), np.maximum(codes, 0)], -np.inf)
    value = np.where(finite & (codes >= 0), np.exp(chosen - log_norm), 0.0)
    result = pd.Series(value, index=coded.tasks, name="consistency")
    return result if by_task else float(result.mean())


def uncertainty(
    answers: pd.DataFrame,
    skills: pd.Series | None = None,
    *,
    compute_by: Literal["task", "worker"] = "task",
    aggregate: bool = True,
) -> float | pd.Series:
    """crowd-kit's `uncertainty`: entropy (nats) of the summed per-answer label distributions per task (or per
    worker), each answer putting its worker's skill on its label and (1 − skill)/(K − 1) on each other label
    (skills default to 1: the entropy of the vote counts). Mean over tasks/workers unless `aggregate=False`."""
    if compute_by not in ("task", "worker"):
        raise ValueError(f"compute_by must be 'task' or 'worker', got {compute_by!r}")
    coded = encode_answers(answers)
    n_labels = len(coded.labels)
    s = _skills(coded, skills, None)[coded.worker]
    group, index = (coded.task, coded.tasks) if compute_by == "task" else (coded.worker, coded.workers)
    n_groups = len(index)
    spread = (1 - s) / max(n_labels - 1, 1)
    mass = np.repeat(np.bincount(group, weights=spread, minlength=n_groups)[:, None], n_labels, axis=1)
    mass += np.bincount(group * n_labels + coded.label, weights=s - spread, minlength=n_groups * n_labels).reshape(
        n_groups, n_labels
    )
    total = mass.sum(axis=1, keepdims=True)
    share = np.divide(mass, total, out=np.full_like(mass, 1.0 / n_labels), where=total > 0)
    entropy = -special.xlogy(share, share).sum(axis=1)
    result = pd.Series(entropy, index=index, name="uncertainty")
    return float(result.mean()) if aggregate else result
