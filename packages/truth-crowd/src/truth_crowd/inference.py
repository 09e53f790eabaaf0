"""Truth-inference models beyond Dawid-Skene: one-coin Dawid-Skene, GLAD, MACE, Wawa and zero-based skill.

Inputs follow crowd-kit (a `worker, task, label` DataFrame) and so do the fitted attributes (`labels_`, `probas_`,
`skills_`). Every model here makes a worker's answer depend on the true label only through "right" versus "wrong"
(plus, for MACE, which label a guessing worker picks), so the E-step needs two numbers per answer,
`log P(answer | true = answer's label)` and `log P(answer | true = another label)`; `_posterior` turns them into
task posteriors with two `bincount`s — no Python loop over answers, tasks or workers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, special

from truth_crowd.aggregation import EncodedAnswers, encode_answers

__all__ = ["GLAD", "MACE", "OneCoinDawidSkene", "Wawa", "ZeroBasedSkill"]

logger = logging.getLogger(__name__)
_EPS = 1e-10


def _check_iter(n_iter: object, tol: object) -> None:
    if isinstance(n_iter, bool) or not isinstance(n_iter, int) or n_iter < 1:
        raise ValueError(f"n_iter must be an integer >= 1, got {n_iter!r}")
    if not isinstance(tol, (int, float)) or not tol >= 0:
        raise ValueError(f"tol must be >= 0, got {tol!r}")


def _vote_shares(coded: EncodedAnswers, weights: np.ndarray | None = None) -> np.ndarray:
    """(Weighted) vote shares per task, `[n_tasks, n_labels]`; tasks whose weights are all 0 get plain votes."""
    n_tasks, n_labels = len(coded.tasks), len(coded.labels)
    flat = coded.task * n_labels + coded.label
    w = np.ones(coded.n_answers) if weights is None else weights
    counts = np.bincount(flat, weights=w, minlength=n_tasks * n_labels).reshape(n_tasks, n_labels)
    total = counts.sum(axis=1, keepdims=True)
    if np.any(total <= 0):
        plain = np.bincount(flat, minlength=n_tasks * n_labels).reshape(n_tasks, n_labels).astype(float)
        counts = np.where(total > 0, counts, plain)
        total = counts.sum(axis=1, keepdims=True)
    return counts / total


def _posterior(
    coded: EncodedAnswers, log_right: np.ndarray, log_wrong: np.ndarray, log_prior: np.ndarray
) -> tuple[np.ndarray, float]:
    """Task posteriors `[n_tasks, n_labels]` and the log-likelihood per answer.

    `log_right: [n]` is log P(answer | true label = the answer's label), `log_wrong: [n]` log P(answer | true label
    = any other label), `log_prior: [n_labels]`.
    """
    n_tasks, n_labels = len(coded.tasks), len(coded.labels)
    wrong = np.bincount(coded.task, weights=log_wrong, minlength=n_tasks)  # every answer counted as wrong
    bonus = np.bincount(
        coded.task * n_labels + coded.label, weights=log_right - log_wrong, minlength=n_tasks * n_labels
    ).reshape(n_tasks, n_labels)
    log_joint = log_prior[None, :] + wrong[:, None] + bonus
    log_norm = special.logsumexp(log_joint, axis=1, keepdims=True)
    return np.exp(log_joint - log_norm), float(log_norm.sum()) / coded.n_answers


class _Fitted:
    """Shared output conversion (crowd-kit attribute names)."""

    def _store(self, coded: EncodedAnswers, probas: np.ndarray, skills: np.ndarray) -> None:
        self.probas_ = pd.DataFrame(probas, index=coded.tasks, columns=coded.labels)
        self.labels_ = pd.Series(coded.labels.to_numpy()[probas.argmax(axis=1)], index=coded.tasks, name="agg_label")
        self.skills_ = pd.Series(skills, index=coded.workers, name="skill")

    def fit(self, answers: pd.DataFrame) -> _Fitted:  # pragma: no cover - overridden
        raise NotImplementedError

    def fit_predict(self, answers: pd.DataFrame) -> pd.Series:
        """Fit and return the most probable label per task (ties to the lowest label)."""
        return self.fit(answers).labels_

    def fit_predict_proba(self, answers: pd.DataFrame) -> pd.DataFrame:
        """Fit and return the posterior (or weighted vote share) over labels per task, tasks x labels."""
        return self.fit(answers).probas_


@dataclass
class OneCoinDawidSkene(_Fitted):
    """One-coin Dawid-Skene: worker w answers the true label with probability p_w, else uniformly another label.

    Model: P(l | k) = p_w if l = k, (1 - p_w)/(K - 1) otherwise; class priors π. EM from majority-vote shares;
    M-step p_w = mean posterior mass of the labels w gave, clipped to [1e-10, 1 - 1e-10]. The one-parameter
    restriction of Dawid & Skene (1979), as in crowd-kit's `OneCoinDawidSkene` (Zhang et al., NIPS 2014, use it for
    spectral initialisation). Fitted: `probas_`, `labels_`, `priors_`, `skills_` (p_w), `loglikelihoods_`, `n_iter_`.
    """

    n_iter: int = 100
    tol: float = 1e-5

    def __post_init__(self) -> None:
        _check_iter(self.n_iter, self.tol)

    def fit(self, answers: pd.DataFrame) -> OneCoinDawidSkene:
        """Fit on a `worker, task, label` frame."""
        coded = encode_answers(answers)
        n_labels = len(coded.labels)
        n_per_worker = np.bincount(coded.worker, minlength=len(coded.workers)).astype(float)
        probas = _vote_shares(coded)
        history: list[float] = []
        for iteration in range(self.n_iter):
            priors = np.maximum(probas.mean(axis=0), _EPS)
            hit = probas[coded.task, coded.label]  # [n] posterior that the answer is right
            skill = np.clip(
                np.bincount(coded.worker, weights=hit, minlength=len(coded.workers)) / n_per_worker, _EPS, 1 - _EPS
            )
            log_right = np.log(skill)[coded.worker]
            log_wrong = np.log((1 - skill) / max(n_labels - 1, 1))[coded.worker]
            probas, ll = _posterior(coded, log_right, log_wrong, np.log(priors))
            history.append(ll)
            if iteration > 0 and abs(history[-1] - history[-2]) < self.tol:
                break
        self.n_iter_, self.loglikelihoods_ = len(history), history
        self.priors_ = pd.Series(priors, index=coded.labels, name="prior")
        self._store(coded, probas, skill)
        return self


@dataclass
class GLAD(_Fitted):
    """GLAD (Whitehill et al., NIPS 2009): worker ability α_w and task easiness 1/β_t, β_t > 0.

    Model: P(answer right) = σ(α_w β_t), wrong answers uniform over the other K - 1 labels; priors α ~ N(α0, 1),
    log β ~ N(log β0, 1), class priors π. EM: the E-step is exact; the M-step maximises the expected complete
    log-likelihood over (α, log β) with L-BFGS and its analytic gradient (`m_steps` iterations per EM step,
    gradients summed per worker/task by `bincount`). Fitted: `probas_`, `labels_`, `priors_`, `alphas_` (= `skills_`),
    `betas_`, `loglikelihoods_`, `n_iter_`.
    """

    n_iter: int = 100
    tol: float = 1e-5
    m_steps: int = 25
    alpha_prior: float = 1.0
    beta_prior: float = 1.0

    def __post_init__(self) -> None:
        _check_iter(self.n_iter, self.tol)
        if isinstance(self.m_steps, bool) or not isinstance(self.m_steps, int) or self.m_steps < 1:
            raise ValueError(f"m_steps must be an integer >= 1, got {self.m_steps!r}")
        if not self.beta_prior > 0:
            raise ValueError(f"beta_prior must be > 0, got {self.beta_prior!r}")

    def fit(self, answers: pd.DataFrame) -> GLAD:
        """Fit on a `worker, task, label` frame."""
        coded = encode_answers(answers)
        n_workers, n_tasks, n_labels = len(coded.workers), len(coded.tasks), len(coded.labels)
        log_k1 = np.log(max(n_labels - 1, 1))
        w, t = coded.worker, coded.task
        alpha = np.full(n_workers, self.alpha_prior)
        log_beta = np.full(n_tasks, np.log(self.beta_prior))
        probas = _vote_shares(coded)
        history: list[float] = []
        for iteration in range(self.n_iter):
            priors = np.maximum(probas.mean(axis=0), _EPS)
            hit = probas[t, coded.label]

            def objective(params: np.ndarray, hit: np.ndarray = hit) -> tuple[float, np.ndarray]:
                a, lb = params[:n_workers], params[n_workers:]
                b = np.exp(lb)
                z = a[w] * b[t]
                q = hit * special.log_expit(z) + (1 - hit) * (special.log_expit(-z) - log_k1)
                value = q.sum() - 0.5 * ((a - self.alpha_prior) ** 2).sum()
                value -= 0.5 * ((lb - np.log(self.beta_prior)) ** 2).sum()
                d = hit - special.expit(z)  # dQ/dz per answer
                grad_a = np.bincount(w, weights=d * b[t], minlength=n_workers) - (a - self.alpha_prior)
                grad_lb = np.bincount(t, weights=d * z, minlength=n_tasks) - (lb - np.log(self.beta_prior))
                return -value, -np.concatenate([grad_a, grad_lb])

            result = optimize.minimize(
                objective,
                np.concatenate([alpha, log_beta]),
                jac=True,
                method="L-BFGS-B",
                options={"maxiter": self.m_steps},
            )
            alpha, log_beta = result.x[:n_workers], np.clip(result.x[n_workers:], -20, 20)
            z = alpha[w] * np.exp(log_beta)[t]
            probas, ll = _posterior(coded, special.log_expit(z), special.log_expit(-z) - log_k1, np.log(priors))
            history.append(ll)
            if iteration > 0 and abs(history[-1] - history[-2]) < self.tol:
                break
        self.n_iter_, self.loglikelihoods_ = len(history), history
        self.priors_ = pd.Series(priors, index=coded.labels, name="prior")
        self.alphas_ = pd.Series(alpha, index=coded.workers, name="alpha")
        self.betas_ = pd.Series(np.exp(log_beta), index=coded.tasks, name="beta")
        self._store(coded, probas, alpha)
        return self


@dataclass
class MACE(_Fitted):
    """MACE (Hovy et al., NAACL 2013): each worker is competent with probability θ_w, else guesses from ξ_w.

    Model: true labels uniform; P(l | k) = θ_w·[l = k] + (1 − θ_w)·ξ_w[l]. EM (the paper's EM variant, not its
    variational Bayes one), from majority-vote shares, with add-`smoothing` counts in the M-step (MACE's default
    0.01). Fitted: `probas_`, `labels_`, `skills_` (= `thetas_`, competence), `spam_labels_` (workers x labels, ξ),
    `loglikelihoods_`, `n_iter_`.
    """

    n_iter: int = 100
    tol: float = 1e-5
    smoothing: float = 0.01

    def __post_init__(self) -> None:
        _check_iter(self.n_iter, self.tol)
        if not self.smoothing >= 0:
            raise ValueError(f"smoothing must be >= 0, got {self.smoothing!r}")

    def fit(self, answers: pd.DataFrame) -> MACE:
        """Fit on a `worker, task, label` frame."""
        coded = encode_answers(answers)
        n_workers, n_labels = len(coded.workers), len(coded.labels)
        w, lab = coded.worker, coded.label
        n_per_worker = np.bincount(w, minlength=n_workers).astype(float)
        theta = np.full(n_workers, 0.5)
        xi = np.full((n_workers, n_labels), 1.0 / n_labels)
        probas = _vote_shares(coded)
        log_prior = np.full(n_labels, -np.log(n_labels))
        history: list[float] = []
        s = self.smoothing
        for iteration in range(self.n_iter):
            # Responsibility that an answer came from competence: truth = its label and not a guess.
            th, guess = theta[w], (1 - theta[w]) * xi[w, lab]
            right = probas[coded.task, lab] * th / np.maximum(th + guess, _EPS)
            spam = 1.0 - right
            theta = (np.bincount(w, weights=right, minlength=n_workers) + s) / (n_per_worker + 2 * s)
            mass = (
                np.bincount(w * n_labels + lab, weights=spam, minlength=n_workers * n_labels).reshape(
                    n_workers, n_labels
                )
                + s
            )
            xi = mass / mass.sum(axis=1, keepdims=True)
            theta = np.clip(theta, _EPS, 1 - _EPS)
            guess = (1 - theta[w]) * xi[w, lab]
            probas, ll = _posterior(coded, np.log(theta[w] + guess), np.log(np.maximum(guess, _EPS)), log_prior)
            history.append(ll)
            if iteration > 0 and abs(history[-1] - history[-2]) < self.tol:
                break
        self.n_iter_, self.loglikelihoods_ = len(history), history
        self.thetas_ = pd.Series(theta, index=coded.workers, name="theta")
        self.spam_labels_ = pd.DataFrame(xi, index=coded.workers, columns=coded.labels)
        self._store(coded, probas, theta)
        return self


@dataclass
class Wawa(_Fitted):
    """Wawa, "worker agreement with aggregate" (as in crowd-kit; Appen's practice): two-pass weighted vote.

    Model-free: (1) majority vote; (2) skill_w = share of w's answers equal to that vote; (3) vote again weighting
    each answer by its worker's skill. `probas_` are the weighted vote shares. Fitted: `labels_`, `probas_`,
    `skills_`.
    """

    def fit(self, answers: pd.DataFrame) -> Wawa:
        """Fit on a `worker, task, label` frame."""
        coded = encode_answers(answers)
        first = _vote_shares(coded).argmax(axis=1)
        skill = _agreement(coded, first)
        self._store(coded, _vote_shares(coded, skill[coded.worker]), skill)
        return self


def _agreement(coded: EncodedAnswers, labels: np.ndarray) -> np.ndarray:
    """Share of each worker's answers equal to the task's label `labels: [n_tasks]`, `[n_workers]`."""
    n_workers = len(coded.workers)
    same = (labels[coded.task] == coded.label).astype(float)
    return np.bincount(coded.worker, weights=same, minlength=n_workers) / np.bincount(coded.worker, minlength=n_workers)


@dataclass
class ZeroBasedSkill(_Fitted):
    """Zero-based skill (crowd-kit's ZBS): skills start at 0 and move towards agreement with a weighted vote.

    Model-free: repeat weighted majority vote (weights = skills; all-zero weights fall back to plain votes) and a
    step skill ← skill + lr·(agreement − skill), i.e. a gradient step on the squared error between skill and the
    worker's agreement with the aggregate; lr starts at `lr_init` and is multiplied by `lr_reduce_factor` every
    `lr_steps_to_reduce` iterations; stops when no label changes or after `n_iter`. Fitted: `labels_`, `probas_`,
    `skills_`, `n_iter_`.
    """

    n_iter: int = 100
    lr_init: float = 1.0
    lr_steps_to_reduce: int = 20
    lr_reduce_factor: float = 0.5

    def __post_init__(self) -> None:
        _check_iter(self.n_iter, 0.0)
        if not 0 < self.lr_init <= 1:
            raise ValueError(f"lr_init must be in (0, 1], got {self.lr_init!r}")
        if not 0 < self.lr_reduce_factor <= 1:
            raise ValueError(f"lr_reduce_factor must be in (0, 1], got {self.lr_reduce_factor!r}")
        if isinstance(self.lr_steps_to_reduce, bool) or self.lr_steps_to_reduce < 1:
            raise ValueError(f"lr_steps_to_reduce must be >= 1, got {self.lr_steps_to_reduce!r}")

    def fit(self, answers: pd.DataFrame) -> ZeroBasedSkill:
        """Fit on a `worker, task, label` frame."""
        coded = encode_answers(answers)
        skill = np.zeros(len(coded.workers))
        lr = self.lr_init
        labels = None
        for iteration in range(self.n_iter):
            probas = _vote_shares(coded, skill[coded.worker])
            new = probas.argmax(axis=1)
            if labels is not None and np.array_equal(new, labels):
                break
            labels = new
            skill = skill + lr * (_agreement(coded, labels) - skill)
            if (iteration + 1) % self.lr_steps_to_reduce == 0:
                lr *= self.lr_reduce_factor
        self.n_iter_ = iteration + 1
        self._store(coded, probas, skill)
        return self
