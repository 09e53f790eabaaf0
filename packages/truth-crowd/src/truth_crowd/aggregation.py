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
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from scipy import sparse

__all__ = [
    "TIE_BREAKS",
    "DawidSkene",
    "EncodedAnswers",
    "GoldMajorityVote",
    "check_labels",
    "check_unique_pairs",
    "drop_duplicate_answers",
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


def check_unique_pairs(answers: pd.DataFrame) -> None:
    """Refuse a `worker, task` pair that occurs twice: every model here assumes one answer per worker and task.

    A repeated pair would count one worker twice (double weight in votes and means, a duplicated likelihood term in
    the EM models), so it is an error, not a silent number. `drop_duplicate_answers` applies a keep rule explicitly.
    """
    if "worker" not in answers.columns or "task" not in answers.columns:
        return
    repeated = answers.duplicated(subset=["worker", "task"], keep="first").to_numpy()
    if repeated.any():
        first = answers.loc[repeated, ["worker", "task"]].iloc[0]
        worker, task = (x.item() if isinstance(x, np.generic) else x for x in (first["worker"], first["task"]))
        raise ValueError(
            f"answers repeat {int(repeated.sum())} (worker, task) pair(s), e.g. worker {worker!r} on task "
            f"{task!r}; each worker may answer a task once: keep one answer per pair with "
            "truth_crowd.aggregation.drop_duplicate_answers(answers, keep='first'|'last') first"
        )


def drop_duplicate_answers(answers: pd.DataFrame, *, keep: Literal["first", "last"] = "first") -> pd.DataFrame:
    """Keep one answer per (worker, task): the first or the last in table order (the explicit duplicate policy)."""
    if keep not in ("first", "last"):
        raise ValueError(f"keep must be 'first' or 'last', got {keep!r}")
    missing = [c for c in ("worker", "task") if c not in answers.columns]
    if missing:
        raise ValueError(f"answers need columns worker and task; missing {missing}")
    return answers[~answers.duplicated(subset=["worker", "task"], keep=keep)]


def _label_kind(value: object) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, (int, float, np.number)):
        return "number"
    return type(value).__name__


def check_labels(labels: Sequence[object]) -> None:
    """Refuse labels of mixed kinds (e.g. the number 2 beside the string "2"): they cannot be ordered, and treating
    `2` and `"2"` as two labels would split one answer into two classes without a word."""
    kinds: dict[str, object] = {}
    for value in labels:
        kinds.setdefault(_label_kind(value), value)
    if len(kinds) > 1:
        examples = ", ".join(f"{value!r} ({kind})" for kind, value in kinds.items())
        raise ValueError(
            f"labels mix kinds: {examples}; use one kind, e.g. answers.assign(label=answers['label'].astype(str)) "
            "for categories, or pd.to_numeric for numbers"
        )


def encode_answers(answers: pd.DataFrame) -> EncodedAnswers:
    """Check a `worker, task, label` frame and code it; tasks and workers keep first-appearance order.

    Labels are sorted (numbers numerically) so that "lowest"/"highest" mean what they say. Refused with a
    `ValueError`: missing columns or values, an empty frame, a repeated (worker, task) pair (`check_unique_pairs`)
    and labels of mixed kinds (`check_labels`).
    """
    missing = [c for c in ("worker", "task", "label") if c not in answers.columns]
    if missing:
        raise ValueError(f"answers need columns worker, task, label; missing {missing}")
    if answers.empty:
        raise ValueError("answers is empty")
    if answers[["worker", "task", "label"]].isna().any().any():
        raise ValueError("answers contain missing worker, task or label values; drop them first")
    check_unique_pairs(answers)
    worker, workers = pd.factorize(answers["worker"], sort=False)
    task, tasks = pd.factorize(answers["task"], sort=False)
    raw_label, seen = pd.factorize(answers["label"], sort=False)
    check_labels(seen.tolist())
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
    check_unique_pairs(answers)  # with a worker column: a repeated pair would count twice in the mean
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
    answers. Stops when the log-likelihood gain per answer falls below `tol` or after `n_iter` iterations; `tol=0`
    never stops early (exactly `n_iter` iterations, e.g. to time a fixed number of steps).

    Gold (crowd-kit's `fit(data, true_labels, initial_error)`): `true_labels` (Series indexed by task) pins the
    posterior of those tasks to their known label at the start and after every E-step, so gold tasks teach the
    workers' confusion matrices; `initial_error` (crowd-kit layout: rows (worker, observed label), columns true
    label; counts, or probabilities with `initial_error_strategy="assign"`) enters the first M-step only:
    `"addition"` adds it to the expected counts (a prior from past work), `"assign"` replaces them (every worker
    must be present).

    Fitted attributes: `probas_` (tasks x labels), `labels_` (argmax; ties to the lowest label), `priors_`,
    `errors_` (crowd-kit layout: rows (worker, observed label), columns true label), `confusion_`
    (`[n_workers, n_labels, n_labels]`, true x observed), `skills_` (prior-weighted accuracy per worker),
    `loglikelihoods_`, `n_iter_`.
    """

    n_iter: int = 100
    tol: float = 1e-5
    initial_error_strategy: Literal["assign", "addition"] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.n_iter, bool) or not isinstance(self.n_iter, int) or self.n_iter < 1:
            raise ValueError(f"n_iter must be an integer >= 1, got {self.n_iter!r}")
        if not self.tol >= 0:
            raise ValueError(f"tol must be >= 0, got {self.tol!r}")
        if self.initial_error_strategy not in (None, "assign", "addition"):
            raise ValueError(
                f"initial_error_strategy must be None, 'assign' or 'addition', got {self.initial_error_strategy!r}"
            )

    def fit(
        self,
        answers: pd.DataFrame,
        true_labels: pd.Series | None = None,
        initial_error: pd.DataFrame | None = None,
    ) -> DawidSkene:
        """Fit on a `worker, task, label` frame, optionally with gold labels and prior error counts."""
        coded = encode_answers(answers)
        n_workers, n_tasks, n_labels = len(coded.workers), len(coded.tasks), len(coded.labels)
        n = coded.n_answers
        ones = np.ones(n)
        # [n_tasks, n_answers] indicator: sums per-answer quantities into tasks.
        task_of = sparse.csr_matrix((ones, (coded.task, np.arange(n))), shape=(n_tasks, n))
        # [n_workers * n_labels, n_tasks]: how often worker w gave label l on task t.
        slot = coded.worker * n_labels + coded.label
        worker_label = sparse.csr_matrix((ones, (slot, coded.task)), shape=(n_workers * n_labels, n_tasks))
        gold_rows, gold_codes = _gold_codes(coded, true_labels)
        prior_mass = self._prior_mass(coded, initial_error)

        counts = coded.counts()
        probas = counts / counts.sum(axis=1, keepdims=True)
        probas[gold_rows] = np.eye(n_labels)[gold_codes]
        history: list[float] = []
        for iteration in range(self.n_iter):
            priors = probas.mean(axis=0)
            # confusion[w, k, l] = sum over tasks of probas[t, k] * [w gave l on t], normalised over l.
            mass = np.asarray(worker_label @ probas).reshape(n_workers, n_labels, n_labels).transpose(0, 2, 1)
            if iteration == 0 and prior_mass is not None:
                mass = prior_mass if self.initial_error_strategy == "assign" else mass + prior_mass
            mass = np.maximum(mass, _EPS)
            confusion = mass / mass.sum(axis=2, keepdims=True)
            log_conf = np.log(confusion)
            # per answer: log P(observed label | true k) for each k -> [n_answers, n_labels]
            per_answer = log_conf[coded.worker, :, coded.label]
            log_joint = np.log(np.maximum(priors, _EPS))[None, :] + np.asarray(task_of @ per_answer)
            top = log_joint.max(axis=1, keepdims=True)
            log_norm = top + np.log(np.exp(log_joint - top).sum(axis=1, keepdims=True))
            probas = np.exp(log_joint - log_norm)
            probas[gold_rows] = np.eye(n_labels)[gold_codes]
            history.append(float(log_norm.sum()) / n)
            if self.tol > 0 and iteration > 0 and history[-1] - history[-2] < self.tol:
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

    def _prior_mass(self, coded: EncodedAnswers, initial_error: pd.DataFrame | None) -> np.ndarray | None:
        """`initial_error` (rows (worker, observed), columns true) as `[n_workers, true, observed]`, or None."""
        if initial_error is None:
            if self.initial_error_strategy is not None:
                raise ValueError("initial_error_strategy is set but no initial_error was given")
            return None
        if self.initial_error_strategy is None:
            raise ValueError("initial_error needs initial_error_strategy='assign' or 'addition'")
        if not isinstance(initial_error.index, pd.MultiIndex) or initial_error.index.nlevels != 2:
            raise ValueError("initial_error must be indexed by (worker, observed label), crowd-kit's errors_ layout")
        unknown = set(initial_error.columns) - set(coded.labels)
        if unknown:
            raise ValueError(f"initial_error has true-label columns not among the answers' labels: {sorted(unknown)}")
        values = initial_error.to_numpy(dtype=float)
        if not np.isfinite(values).all() or (values < 0).any():
            raise ValueError("initial_error must hold finite non-negative counts or probabilities")
        full = pd.MultiIndex.from_product([coded.workers, coded.labels])
        table = initial_error.reindex(index=full, columns=coded.labels)
        if self.initial_error_strategy == "assign":
            absent = coded.workers[~coded.workers.isin(initial_error.index.get_level_values(0))]
            if len(absent):
                raise ValueError(
                    f"initial_error_strategy='assign' needs every worker's matrix; missing {list(absent[:5])}"
                )
        n_workers, n_labels = len(coded.workers), len(coded.labels)
        observed_true = table.fillna(0.0).to_numpy().reshape(n_workers, n_labels, n_labels)
        return observed_true.transpose(0, 2, 1)  # [worker, true, observed]

    def fit_predict(
        self, answers: pd.DataFrame, true_labels: pd.Series | None = None, initial_error: pd.DataFrame | None = None
    ) -> pd.Series:
        """Fit and return the most probable label per task."""
        return self.fit(answers, true_labels, initial_error).labels_

    def fit_predict_proba(
        self, answers: pd.DataFrame, true_labels: pd.Series | None = None, initial_error: pd.DataFrame | None = None
    ) -> pd.DataFrame:
        """Fit and return the posterior over labels per task (tasks x labels)."""
        return self.fit(answers, true_labels, initial_error).probas_


def _gold_codes(coded: EncodedAnswers, true_labels: pd.Series | None) -> tuple[np.ndarray, np.ndarray]:
    """`(task rows, label codes)` of the gold tasks that occur in the answers (others are ignored, as crowd-kit)."""
    if true_labels is None:
        return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp)
    if not isinstance(true_labels, pd.Series):
        raise ValueError("true_labels must be a pandas Series indexed by task")
    gold = true_labels.dropna()
    if not gold.index.is_unique:
        raise ValueError("true_labels has a task more than once")
    rows = coded.tasks.get_indexer(gold.index)
    gold = gold[rows >= 0]
    rows = rows[rows >= 0]
    codes = coded.labels.get_indexer(gold.to_numpy())
    if (codes < 0).any():
        raise ValueError(
            f"true_labels holds label(s) no worker gave: {sorted(set(gold[codes < 0].tolist()), key=str)[:5]}"
        )
    return rows.astype(np.intp), codes.astype(np.intp)


OnMissingSkill = Literal["error", "ignore"] | float


@dataclass
class GoldMajorityVote:
    """Majority vote weighted by each worker's accuracy on gold tasks (crowd-kit's `GoldMajorityVote`).

    `fit(answers, true_labels)` sets `skills_`: the share of each worker's answers on gold tasks (`true_labels`, a
    Series indexed by task) that equal the gold label. `predict(answers)` is the weighted vote, `probas_` the weighted
    vote shares. A worker without gold answers has no skill: `on_missing_skill="error"` (crowd-kit's default) refuses,
    `"ignore"` drops her answers, a number uses it as her skill. A task whose voters all have skill 0 falls back to
    plain votes; ties go by `tie_break` (`lowest`, crowd-kit's choice among sorted labels, or `highest`).
    """

    on_missing_skill: OnMissingSkill = "error"
    tie_break: Literal["lowest", "highest"] = "lowest"

    def __post_init__(self) -> None:
        if isinstance(self.on_missing_skill, str):
            if self.on_missing_skill not in ("error", "ignore"):
                raise ValueError(
                    f"on_missing_skill must be 'error', 'ignore' or a number, got {self.on_missing_skill!r}"
                )
        elif not 0 <= float(self.on_missing_skill) <= 1:
            raise ValueError(f"a default skill must be in [0, 1], got {self.on_missing_skill!r}")
        if self.tie_break not in ("lowest", "highest"):
            raise ValueError(f"tie_break must be 'lowest' or 'highest', got {self.tie_break!r}")

    def fit(self, answers: pd.DataFrame, true_labels: pd.Series) -> GoldMajorityVote:
        """Worker skills from the gold tasks among `answers`."""
        coded = encode_answers(answers)
        rows, codes = _gold_codes(coded, true_labels)
        if rows.size == 0:
            raise ValueError("no answer is on a gold task: true_labels share no task with the answers")
        gold = np.full(len(coded.tasks), -1, dtype=np.intp)
        gold[rows] = codes
        on_gold = gold[coded.task] >= 0
        right = (gold[coded.task] == coded.label) & on_gold
        n_gold = np.bincount(coded.worker, weights=on_gold, minlength=len(coded.workers))
        n_right = np.bincount(coded.worker, weights=right, minlength=len(coded.workers))
        known = n_gold > 0
        self.skills_ = pd.Series(n_right[known] / n_gold[known], index=coded.workers[known], name="skill")
        return self

    def predict_proba(self, answers: pd.DataFrame) -> pd.DataFrame:
        """Weighted vote shares per task (tasks x labels) with the fitted skills."""
        if not hasattr(self, "skills_"):
            raise ValueError("GoldMajorityVote is not fitted: call fit(answers, true_labels) first")
        coded = encode_answers(answers)
        skill = self.skills_.reindex(coded.workers).to_numpy(dtype=float)
        keep = np.ones(coded.n_answers, dtype=bool)
        if np.isnan(skill).any():
            missing = coded.workers[np.isnan(skill)]
            if self.on_missing_skill == "error":
                raise ValueError(
                    f"{len(missing)} worker(s) have no gold answers, e.g. {list(missing[:3])}: pass "
                    "on_missing_skill='ignore' or a default skill"
                )
            if self.on_missing_skill == "ignore":
                keep = ~np.isnan(skill)[coded.worker]
                uncovered = np.bincount(coded.task[keep], minlength=len(coded.tasks)) == 0
                if uncovered.any():
                    raise ValueError(
                        f"{int(uncovered.sum())} task(s) have only workers without gold answers, e.g. "
                        f"{list(coded.tasks[uncovered][:3])}"
                    )
            else:
                skill = np.where(np.isnan(skill), float(self.on_missing_skill), skill)
        n_tasks, n_labels = len(coded.tasks), len(coded.labels)
        flat = coded.task[keep] * n_labels + coded.label[keep]
        weighted = np.bincount(flat, weights=skill[coded.worker[keep]], minlength=n_tasks * n_labels)
        weighted = weighted.reshape(n_tasks, n_labels)
        plain = np.bincount(flat, minlength=n_tasks * n_labels).reshape(n_tasks, n_labels).astype(float)
        total = weighted.sum(axis=1, keepdims=True)
        shares = np.where(total > 0, weighted, plain)
        shares = shares / shares.sum(axis=1, keepdims=True)
        self.probas_ = pd.DataFrame(shares, index=coded.tasks, columns=coded.labels)
        return self.probas_

    def predict(self, answers: pd.DataFrame) -> pd.Series:
        """Most supported label per task with the fitted skills."""
        shares = self.predict_proba(answers).to_numpy()
        top = shares == shares.max(axis=1, keepdims=True)
        choice = top.argmax(axis=1) if self.tie_break == "lowest" else shares.shape[1] - 1 - top[:, ::-1].argmax(axis=1)
        self.labels_ = pd.Series(self.probas_.columns.to_numpy()[choice], index=self.probas_.index, name="agg_label")
        return self.labels_

    def fit_predict(self, answers: pd.DataFrame, true_labels: pd.Series) -> pd.Series:
        """Fit on the gold tasks and label every task."""
        return self.fit(answers, true_labels).predict(answers)

    def fit_predict_proba(self, answers: pd.DataFrame, true_labels: pd.Series) -> pd.DataFrame:
        """Fit on the gold tasks and return the weighted vote shares."""
        return self.fit(answers, true_labels).predict_proba(answers)
