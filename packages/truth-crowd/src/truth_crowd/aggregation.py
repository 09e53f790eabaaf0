"""Aggregation of several workers' answers into one value per task (statement).

Inputs follow crowd-kit: a DataFrame with columns `worker, task, label` (`schema.to_crowdkit` builds it from our
tables). Numeric aggregates (`mean`, the paper's default, and `median`) return a Series indexed by task;
`majority_vote` has an explicit tie rule; `DawidSkene` is the confusion-matrix EM model with crowd-kit's API
(`fit`, `fit_predict`, `fit_predict_proba`, fitted `labels_`, `probas_`, `priors_`, `errors_`, `skills_`).

Everything is vectorised: answers are integer-coded once, and the EM steps are sparse matrix products between the
answers and the task posteriors — no Python loop over answers, tasks or workers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from scipy import sparse

__all__ = [
    "TIE_BREAKS",
    "DawidSkene",
    "EncodedAnswers",
    "encode_answers",
    "majority_vote",
    "mean_aggregate",
    "median_aggregate",
]

logger = logging.getLogger(__name__)

TieBreak = Literal["lowest", "highest", "median", "first_seen", "random"]
#: Tie rules of `majority_vote`.
TIE_BREAKS: tuple[str, ...] = ("lowest", "highest", "median", "first_seen", "random")
_EPS = 1e-10


@dataclass(frozen=True)
class EncodedAnswers:
    """Answers as integer codes: `worker: [n]`, `task: [n]`, `label: [n]` index `workers`, `tasks`, `labels`."""

    worker: np.ndarray
    task: np.ndarray
    label: np.ndarray
    workers: pd.Index
    tasks: pd.Index
    labels: pd.Index
    first_seen: np.ndarray = field(repr=False)  # [n_labels]: rank of each label's first appearance in the data

    @property
    def n_answers(self) -> int:
        return int(self.worker.size)

    def counts(self) -> np.ndarray:
        """Votes per task and label, `[n_tasks, n_labels]`."""
        counts = np.zeros((len(self.tasks), len(self.labels)))
        np.add.at(counts, (self.task, self.label), 1.0)
        return counts


def encode_answers(answers: pd.DataFrame) -> EncodedAnswers:
    """Check a `worker, task, label` frame and code it; tasks and workers keep first-appearance order.

    Labels are sorted (numbers numerically) so that "lowest"/"highest" mean what they say.
    """
    missing = [c for c in ("worker", "task", "label") if c not in answers.columns]
    if missing:
        raise ValueError(f"answers need columns worker, task, label; missing {missing}")
    if answers.empty:
        raise ValueError("answers is empty")
    if answers[["worker", "task", "label"]].isna().any().any():
        raise ValueError("answers contain missing worker, task or label values; drop them first")
    worker, workers = pd.factorize(answers["worker"], sort=False)
    task, tasks = pd.factorize(answers["task"], sort=False)
    raw_label, seen = pd.factorize(answers["label"], sort=False)
    labels = pd.Index(sorted(seen.tolist()))
    position = labels.get_indexer(seen)
    label = position[raw_label]
    first_seen = np.empty(len(labels), dtype=np.int64)
    first_seen[position] = np.arange(len(seen))
    return EncodedAnswers(
        worker=worker.astype(np.int64),
        task=task.astype(np.int64),
        label=label.astype(np.int64),
        workers=pd.Index(workers),
        tasks=pd.Index(tasks),
        labels=labels,
        first_seen=first_seen,
    )


def _numeric_labels(answers: pd.DataFrame) -> pd.Series:
    if "label" not in answers.columns or "task" not in answers.columns:
        raise ValueError("answers need columns task and label")
    values = pd.to_numeric(answers["label"], errors="coerce")
    if values.isna().any():
        raise ValueError("numeric aggregation needs numeric labels without missing values")
    return values.astype(float)


def mean_aggregate(answers: pd.DataFrame) -> pd.Series:
    """Arithmetic mean of the labels per task (the paper's aggregation). Index: task (sorted)."""
    return _numeric_labels(answers).groupby(answers["task"].to_numpy()).mean().rename("mean")


def median_aggregate(
    answers: pd.DataFrame, *, even: Literal["interpolate", "lower", "upper"] = "interpolate"
) -> pd.Series:
    """Median of the labels per task; `even` picks the midpoint, the lower or the upper middle value for even n."""
    values = _numeric_labels(answers)
    grouped = values.groupby(answers["task"].to_numpy())
    if even == "interpolate":
        return grouped.median().rename("median")
    if even not in ("lower", "upper"):
        raise ValueError(f"even must be 'interpolate', 'lower' or 'upper', got {even!r}")
    method = "lower" if even == "lower" else "higher"
    return grouped.quantile(0.5, interpolation=method).rename("median")


def majority_vote(answers: pd.DataFrame, *, tie_break: TieBreak = "lowest", seed: int = 0) -> pd.Series:
    """Most frequent label per task, with an explicit rule for ties.

    `tie_break`: `lowest`/`highest` label, `median` (lower median of the tied labels), `first_seen` (the tied label
    that appears first in the whole answer table: crowd-kit's `MajorityVote` behaviour), or `random` (seeded).
    Index: task, in order of first appearance.
    """
    if tie_break not in TIE_BREAKS:
        raise ValueError(f"tie_break must be one of {TIE_BREAKS}, got {tie_break!r}")
    coded = encode_answers(answers)
    counts = coded.counts()
    tied = counts == counts.max(axis=1, keepdims=True)  # [n_tasks, n_labels]
    n_labels = tied.shape[1]
    if tie_break == "lowest":
        choice = tied.argmax(axis=1)
    elif tie_break == "highest":
        choice = n_labels - 1 - tied[:, ::-1].argmax(axis=1)
    elif tie_break == "first_seen":
        rank = np.where(tied, coded.first_seen[None, :], np.iinfo(np.int64).max)
        choice = rank.argmin(axis=1)
    elif tie_break == "median":
        n_tied = tied.sum(axis=1)
        target = (n_tied - 1) // 2  # lower median among the tied labels
        cumulative = np.cumsum(tied, axis=1) - 1
        choice = (tied & (cumulative == target[:, None])).argmax(axis=1)
    else:
        rng = np.random.default_rng(seed)
        keys = np.where(tied, rng.random(tied.shape), -1.0)
        choice = keys.argmax(axis=1)
    return pd.Series(coded.labels.to_numpy()[choice], index=coded.tasks, name="agg_label")


@dataclass
class DawidSkene:
    """Dawid and Skene's (1979) model: each worker has a confusion matrix; EM over the tasks' true labels.

    Initialised from majority-vote posteriors (vote shares), as crowd-kit does. M-step: priors are the mean
    posterior; a worker's confusion row for true label k is the posterior mass of k over the tasks she labelled l,
    floored at 1e-10 and normalised. E-step: log posterior = log prior + sum of log confusion entries of a task's
    answers. Stops when the log-likelihood gain per answer falls below `tol` or after `n_iter` iterations.

    Fitted attributes: `probas_` (tasks x labels), `labels_` (argmax; ties to the lowest label), `priors_`,
    `errors_` (crowd-kit layout: rows (worker, observed label), columns true label), `confusion_`
    (`[n_workers, n_labels, n_labels]`, true x observed), `skills_` (prior-weighted accuracy per worker),
    `loglikelihoods_`, `n_iter_`.
    """

    n_iter: int = 100
    tol: float = 1e-5

    def __post_init__(self) -> None:
        if isinstance(self.n_iter, bool) or not isinstance(self.n_iter, int) or self.n_iter < 1:
            raise ValueError(f"n_iter must be an integer >= 1, got {self.n_iter!r}")
        if not self.tol >= 0:
            raise ValueError(f"tol must be >= 0, got {self.tol!r}")

    def fit(self, answers: pd.DataFrame) -> DawidSkene:
        """Fit on a `worker, task, label` frame."""
        coded = encode_answers(answers)
        n_workers, n_tasks, n_labels = len(coded.workers), len(coded.tasks), len(coded.labels)
        n = coded.n_answers
        ones = np.ones(n)
        # [n_tasks, n_answers] indicator: sums per-answer quantities into tasks.
        task_of = sparse.csr_matrix((ones, (coded.task, np.arange(n))), shape=(n_tasks, n))
        # [n_workers * n_labels, n_tasks]: how often worker w gave label l on task t.
        slot = coded.worker * n_labels + coded.label
        worker_label = sparse.csr_matrix((ones, (slot, coded.task)), shape=(n_workers * n_labels, n_tasks))

        counts = coded.counts()
        probas = counts / counts.sum(axis=1, keepdims=True)
        history: list[float] = []
        for iteration in range(self.n_iter):
            priors = probas.mean(axis=0)
            # confusion[w, k, l] = sum over tasks of probas[t, k] * [w gave l on t], normalised over l.
            mass = np.asarray(worker_label @ probas).reshape(n_workers, n_labels, n_labels).transpose(0, 2, 1)
            mass = np.maximum(mass, _EPS)
            confusion = mass / mass.sum(axis=2, keepdims=True)
            log_conf = np.log(confusion)
            # per answer: log P(observed label | true k) for each k -> [n_answers, n_labels]
            per_answer = log_conf[coded.worker, :, coded.label]
            log_joint = np.log(np.maximum(priors, _EPS))[None, :] + np.asarray(task_of @ per_answer)
            top = log_joint.max(axis=1, keepdims=True)
            log_norm = top + np.log(np.exp(log_joint - top).sum(axis=1, keepdims=True))
            probas = np.exp(log_joint - log_norm)
            history.append(float(log_norm.sum()) / n)
            if iteration > 0 and history[-1] - history[-2] < self.tol:
                break
        self.n_iter_ = len(history)
        self.loglikelihoods_ = history
        self.confusion_ = confusion
        self.priors_ = pd.Series(priors, index=coded.labels, name="prior")
        self.probas_ = pd.DataFrame(probas, index=coded.tasks, columns=coded.labels)
        self.labels_ = pd.Series(coded.labels.to_numpy()[probas.argmax(axis=1)], index=coded.tasks, name="agg_label")
        index = pd.MultiIndex.from_product([coded.workers, coded.labels], names=["worker", "label"])
        self.errors_ = pd.DataFrame(
            confusion.transpose(0, 2, 1).reshape(n_workers * n_labels, n_labels), index=index, columns=coded.labels
        )
        diag = np.einsum("wkk->wk", confusion)
        self.skills_ = pd.Series(diag @ priors, index=coded.workers, name="skill")
        logger.debug("Dawid-Skene: %d iterations, log-likelihood per answer %.6f", self.n_iter_, history[-1])
        return self

    def fit_predict(self, answers: pd.DataFrame) -> pd.Series:
        """Fit and return the most probable label per task."""
        return self.fit(answers).labels_

    def fit_predict_proba(self, answers: pd.DataFrame) -> pd.DataFrame:
        """Fit and return the posterior over labels per task (tasks x labels)."""
        return self.fit(answers).probas_
