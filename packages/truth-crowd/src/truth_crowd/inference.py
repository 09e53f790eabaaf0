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
from typing import Literal

import numpy as np
import pandas as pd
from scipy import optimize, special

from truth_crowd.aggregation import EncodedAnswers, encode_answers

__all__ = ["GLAD", "KOS", "MACE", "MMSR", "OneCoinDawidSkene", "Wawa", "ZeroBasedSkill"]

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
    """GLAD (Whitehill et al., NIPS 2009): worker ability α_w and task easiness β_t = exp(β'_t) > 0.

    Model, as the paper and its reference code: P(answer right) = σ(α_w β_t), a wrong answer uniform over the other
    K − 1 labels; Gaussian priors α ~ N(α0, 1) and β' = log β ~ N(log β0, 1) with α0 = 1 and log β0 = 1 (the
    defaults `alpha_prior=1`, `beta_prior=e`), parameters started at the prior means; class priors fixed (uniform
    unless `labels_priors` gives them: the paper does not re-estimate P(Z)). EM: the E-step is exact; the M-step
    maximises the expected complete log posterior over (α, β') by conjugate gradients (`m_steps` iterations,
    gradient tolerance `m_step_tol`) with the analytic gradient, summed per worker/task by `bincount`. The run
    starts with an E-step and stops when the expected log posterior per (answer, label) gains less than `tol`; the
    labels are those of the last E-step. This is also crowd-kit 1.4.2's `GLAD` (same priors, start, optimiser and
    stopping rule). Fitted: `probas_`, `labels_`, `priors_`, `alphas_` (= `skills_`), `betas_` (β),
    `loglikelihoods_` (the stopping quantity), `n_iter_`.
    """

    n_iter: int = 100
    tol: float = 1e-5
    m_steps: int = 25
    alpha_prior: float = 1.0
    beta_prior: float = float(np.e)
    m_step_tol: float = 1e-2
    labels_priors: pd.Series | None = None

    def __post_init__(self) -> None:
        _check_iter(self.n_iter, self.tol)
        if isinstance(self.m_steps, bool) or not isinstance(self.m_steps, int) or self.m_steps < 1:
            raise ValueError(f"m_steps must be an integer >= 1, got {self.m_steps!r}")
        if not self.beta_prior > 0:
            raise ValueError(f"beta_prior must be > 0, got {self.beta_prior!r}")
        if not self.m_step_tol > 0:
            raise ValueError(f"m_step_tol must be > 0, got {self.m_step_tol!r}")

    def _log_priors(self, coded: EncodedAnswers) -> np.ndarray:
        n_labels = len(coded.labels)
        if self.labels_priors is None:
            return np.full(n_labels, -np.log(n_labels))
        given = pd.Series(self.labels_priors, dtype=float)
        priors = given.reindex(coded.labels).to_numpy()
        if np.isnan(priors).any() or (priors <= 0).any():
            raise ValueError("labels_priors must give a positive prior for every label in the answers")
        return np.log(priors / priors.sum())

    def fit(self, answers: pd.DataFrame) -> GLAD:
        """Fit on a `worker, task, label` frame."""
        coded = encode_answers(answers)
        n_workers, n_tasks, n_labels = len(coded.workers), len(coded.tasks), len(coded.labels)
        log_k1 = np.log(max(n_labels - 1, 1))
        w, t = coded.worker, coded.task
        log_prior = self._log_priors(coded)
        mu_a, mu_b = self.alpha_prior, np.log(self.beta_prior)
        alpha = np.full(n_workers, mu_a)
        log_beta = np.full(n_tasks, mu_b)
        n_rows = coded.n_answers * n_labels  # crowd-kit's normalisation: one row per (answer, candidate label)

        def e_step(alpha: np.ndarray, log_beta: np.ndarray) -> np.ndarray:
            z = alpha[w] * np.exp(log_beta)[t]
            return _posterior(coded, special.log_expit(z), special.log_expit(-z) - log_k1, log_prior)[0]

        def q_value(params: np.ndarray, hit: np.ndarray) -> tuple[float, np.ndarray]:
            a, lb = params[:n_workers], params[n_workers:]
            b = np.exp(lb)
            z = a[w] * b[t]
            q = hit * special.log_expit(z) + (1 - hit) * (special.log_expit(-z) - log_k1)
            value = q.sum() - 0.5 * ((a - mu_a) ** 2).sum() - 0.5 * ((lb - mu_b) ** 2).sum()
            value -= 0.5 * np.log(2 * np.pi) * (n_workers + n_tasks)
            d = hit - special.expit(z)  # dQ/dz per answer
            grad_a = np.bincount(w, weights=d * b[t], minlength=n_workers) - (a - mu_a)
            grad_lb = np.bincount(t, weights=d * z, minlength=n_tasks) - (lb - mu_b)
            return float(value), np.concatenate([grad_a, grad_lb])

        probas = e_step(alpha, log_beta)
        history: list[float] = []
        last = q_value(np.concatenate([alpha, log_beta]), probas[t, coded.label])[0]  # unnormalised, as crowd-kit
        for _ in range(self.n_iter):
            probas = e_step(alpha, log_beta)
            hit = probas[t, coded.label]  # posterior that each answer is right

            def objective(params: np.ndarray, hit: np.ndarray = hit) -> tuple[float, np.ndarray]:
                value, grad = q_value(params, hit)
                return -value, -grad

            result = optimize.minimize(
                objective,
                np.concatenate([alpha, log_beta]),
                jac=True,
                method="CG",
                tol=self.m_step_tol,
                options={"maxiter": self.m_steps},
            )
            alpha, log_beta = result.x[:n_workers], np.clip(result.x[n_workers:], -30, 30)
            current = q_value(np.concatenate([alpha, log_beta]), hit)[0] / n_rows
            history.append(current)
            if current - last < self.tol:
                break
            last = current
        self.n_iter_, self.loglikelihoods_ = len(history), history
        self.priors_ = pd.Series(np.exp(log_prior), index=coded.labels, name="prior")
        self.alphas_ = pd.Series(alpha, index=coded.workers, name="alpha")
        self.betas_ = pd.Series(np.exp(log_beta), index=coded.tasks, name="beta")
        self._store(coded, probas, alpha)
        return self


@dataclass
class MACE(_Fitted):
    """MACE (Hovy et al., NAACL 2013): each worker answers from knowledge with probability 1 − spam_w, else picks a
    label from her own strategy ξ_w.

    Model: true labels uniform; P(answer l | true k) = (1 − spam_w)·[l = k] + spam_w·ξ_w[l]. Training as the paper
    and the authors' MACE tool: `method="vb"` (default) is variational Bayes with Beta(`alpha`, `beta`) priors on
    spamming and symmetric Dirichlet(10) priors on the strategies (M-step: exp ψ(count + prior) / exp ψ(Σ)),
    `method="em"` is EM with add-`smoothing` counts (default 0.01/K, the tool's); `n_iter` (50) iterations (`tol`
    > 0 stops a run once the log marginal likelihood per answer moves less than `tol`) from each of `n_restarts` random
    starts (each an E-step from spam, knowing and strategy values drawn from U[1, 1 + 1.5·noise] and normalised),
    keeping the run with the largest log marginal likelihood; the labels come from a final E-step with those
    parameters. Every step is vectorised: the E-step is the two-`bincount` task posterior (log P(answer | true =
    its label) = log(1 − spam + spam ξ[l]), otherwise log(spam ξ[l])), and the expected counts are per-answer
    closed forms.

    Restart r draws its start with `scipy.stats.uniform(1, 1 + default_noise).rvs(random_state=seed + r)`, with
    the strategies' columns in order of first appearance, so restart 0 is crowd-kit's start for the same
    `random_state`. crowd-kit 1.4.2's `MACE` departs from this in two ways (see the README): it draws every restart
    from the same `random_state`, so its 10 restarts are one run repeated (set `n_restarts=1` to compare), and its
    M-step stores the strategy counts in sorted worker and label order but reads them by order of first
    appearance, so a worker's strategy becomes another worker's whenever the two orders differ.

    Fitted: `probas_`, `labels_`, `skills_` (= `thetas_`, 1 − spam: the probability of answering from knowledge),
    `spam_labels_` (workers x labels, ξ), `loglikelihoods_` (log marginal likelihood of the kept run per iteration),
    `n_iter_`.
    """

    n_iter: int = 50
    tol: float = 0.0
    smoothing: float | None = None
    n_restarts: int = 10
    method: Literal["vb", "em"] = "vb"
    alpha: float = 0.5
    beta: float = 0.5
    default_noise: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        _check_iter(self.n_iter, self.tol)
        _check_iter(self.n_restarts, 0.0)
        if self.smoothing is not None and not self.smoothing >= 0:
            raise ValueError(f"smoothing must be >= 0, got {self.smoothing!r}")
        if self.method not in ("vb", "em"):
            raise ValueError(f"method must be 'vb' or 'em', got {self.method!r}")
        if not (self.alpha > 0 and self.beta > 0):
            raise ValueError(f"alpha and beta must be > 0, got {self.alpha!r}, {self.beta!r}")
        if not self.default_noise >= 0:
            raise ValueError(f"default_noise must be >= 0, got {self.default_noise!r}")

    def fit(self, answers: pd.DataFrame) -> MACE:
        """Fit on a `worker, task, label` frame."""
        from scipy import stats

        coded = encode_answers(answers)
        n_workers, n_labels = len(coded.workers), len(coded.labels)
        w, lab = coded.worker, coded.label
        cell = w * n_labels + lab
        log_prior = np.full(n_labels, -np.log(n_labels))
        smoothing = 0.01 / n_labels if self.smoothing is None else self.smoothing
        first_seen_order = coded.first_seen  # the column of each sorted label in first-appearance order

        def e_step(spam: np.ndarray, strategy: np.ndarray) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
            guess = spam[w, 0] * strategy[w, lab]  # P(answer | true label != answer)
            know = spam[w, 1]
            probas, _ = _posterior(coded, np.log(guess + know), np.log(guess), log_prior)
            log_marginal = _log_marginal(coded, np.log(guess + know), np.log(guess), log_prior)
            right = probas[coded.task, lab]  # posterior that the true label is the answer
            from_knowledge = right * know / (guess + know)
            from_strategy = 1.0 - from_knowledge
            spam_counts = np.stack(
                [
                    np.bincount(w, weights=from_strategy, minlength=n_workers),
                    np.bincount(w, weights=from_knowledge, minlength=n_workers),
                ],
                axis=1,
            )
            strategy_counts = np.bincount(cell, weights=from_strategy, minlength=n_workers * n_labels)
            return probas, log_marginal, spam_counts, strategy_counts.reshape(n_workers, n_labels)

        def m_step(spam_counts: np.ndarray, strategy_counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            if self.method == "em":
                spam = (spam_counts + smoothing) / (spam_counts + smoothing).sum(axis=1, keepdims=True)
                strategy = (strategy_counts + smoothing) / (strategy_counts + smoothing).sum(axis=1, keepdims=True)
                return spam, strategy
            spam_post = spam_counts + np.array([self.alpha, self.beta])
            strategy_post = strategy_counts + 10.0
            spam = np.exp(special.digamma(spam_post) - special.digamma(spam_post.sum(axis=1, keepdims=True)))
            strategy = np.exp(
                special.digamma(strategy_post) - special.digamma(strategy_post.sum(axis=1, keepdims=True))
            )
            return spam, strategy

        best: tuple[float, np.ndarray, np.ndarray, list[float]] | None = None
        draw = stats.uniform(1, 1 + self.default_noise)
        for restart in range(self.n_restarts):
            spam = draw.rvs(size=(n_workers, 2), random_state=self.seed + restart)
            strategy = draw.rvs(size=(n_workers, n_labels), random_state=self.seed + restart)[:, first_seen_order]
            spam /= spam.sum(axis=1, keepdims=True)
            strategy /= strategy.sum(axis=1, keepdims=True)
            _, log_marginal, spam_counts, strategy_counts = e_step(spam, strategy)
            history = []
            for _ in range(self.n_iter):
                spam, strategy = m_step(spam_counts, strategy_counts)
                _, log_marginal, spam_counts, strategy_counts = e_step(spam, strategy)
                history.append(log_marginal)
                if self.tol > 0 and len(history) > 1 and abs(history[-1] - history[-2]) < self.tol * coded.n_answers:
                    break
            if best is None or log_marginal > best[0]:
                best = (log_marginal, spam, strategy, history)
        assert best is not None
        _, spam, strategy, history = best
        probas = e_step(spam, strategy)[0]
        self.n_iter_, self.loglikelihoods_ = len(history), history
        self.thetas_ = pd.Series(spam[:, 1], index=coded.workers, name="theta")
        self.spam_labels_ = pd.DataFrame(strategy, index=coded.workers, columns=coded.labels)
        self._store(coded, probas, spam[:, 1])
        return self


def _log_marginal(coded: EncodedAnswers, log_right: np.ndarray, log_wrong: np.ndarray, log_prior: np.ndarray) -> float:
    """Σ over tasks of log Σ_k P(k) Π P(answers | k), the quantity MACE keeps the best restart by."""
    n_tasks, n_labels = len(coded.tasks), len(coded.labels)
    wrong = np.bincount(coded.task, weights=log_wrong, minlength=n_tasks)
    bonus = np.bincount(
        coded.task * n_labels + coded.label, weights=log_right - log_wrong, minlength=n_tasks * n_labels
    ).reshape(n_tasks, n_labels)
    return float(special.logsumexp(log_prior[None, :] + wrong[:, None] + bonus, axis=1).sum())


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


@dataclass
class KOS(_Fitted):
    """KOS (Karger, Oh & Shah, NIPS 2011, "Iterative learning for reliable crowdsourcing systems"): belief-
    propagation-like message passing on the worker-task graph, binary labels only.

    Labels map to A = ±1 (the first label seen is +1, as crowd-kit). Worker-to-task messages y start as N(1, 1)
    draws; each iteration sends task-to-worker messages x_{t→w} = Σ_{w' ≠ w} A_{tw'} y_{w'→t} and worker-to-task
    messages y_{w→t} = Σ_{t' ≠ t} A_{t'w} x_{t'→w}; the estimate is sign(Σ_w A_{tw} y_{w→t}). The updates are linear,
    so the messages are rescaled by their largest magnitude each iteration (signs and ratios unchanged): crowd-kit
    lets them grow and stops when one passes 1e300, which gives the same labels. The start is
    `numpy.random.RandomState(seed).normal(1, 1, n_answers)` over the answers in table order, the draw crowd-kit
    makes for the same `random_state`, so the two are comparable run for run. A task whose sum is exactly 0 gets the
    first label. Fitted: `labels_`, `probas_` (one-hot), `skills_` (Σ_t A_{tw} x_{t→w}, scaled to max |·| = 1),
    `n_iter_`.
    """

    n_iter: int = 100
    seed: int = 0

    def __post_init__(self) -> None:
        _check_iter(self.n_iter, 0.0)

    def fit(self, answers: pd.DataFrame) -> KOS:
        """Fit on a `worker, task, label` frame with exactly two labels."""
        coded = encode_answers(answers)
        if len(coded.labels) != 2:
            raise ValueError(f"KOS is for binary labels only; got {len(coded.labels)} labels")
        n_workers, n_tasks = len(coded.workers), len(coded.tasks)
        first = int(np.argmin(coded.first_seen))  # the code of the label seen first
        sign = np.where(coded.label == first, 1.0, -1.0)  # A per answer
        y = np.random.RandomState(self.seed).normal(loc=1.0, scale=1.0, size=coded.n_answers)
        x = np.zeros_like(y)
        done = 0
        for _ in range(self.n_iter):
            done += 1
            ay = sign * y
            x = np.bincount(coded.task, weights=ay, minlength=n_tasks)[coded.task] - ay
            ax = sign * x
            y = np.bincount(coded.worker, weights=ax, minlength=n_workers)[coded.worker] - ax
            scale = np.abs(y).max()
            if not np.isfinite(scale) or scale == 0:
                break
            y /= scale
        self.n_iter_ = done
        total = np.bincount(coded.task, weights=sign * y, minlength=n_tasks)
        codes = np.where(total >= 0, first, 1 - first)
        probas = np.eye(2)[codes]
        skill = np.bincount(coded.worker, weights=sign * x, minlength=n_workers)
        top = np.abs(skill).max()
        self._store(coded, probas, skill / top if top > 0 else skill)
        return self


@dataclass
class MMSR(_Fitted):
    """M-MSR (Ma & Olshevsky, NeurIPS 2020, "Adversarial crowdsourcing through robust rank-one matrix completion"),
    following crowd-kit's `MMSR` step by step.

    1. Worker covariances: for workers i ≠ j sharing tasks, C_ij = K/(K − 1)·(share of common tasks where they
       agree) − 1/(K − 1); under the one-coin model E[C_ij] = s_i s_j with reliability s = (K p − 1)/(K − 1).
    2. Robust rank-one completion of |C| ≈ u vᵀ by M-MSR (modified mean-subsequence-reduced) iterations: each v_j
       (then each u_i) becomes the mean of the ratios |C_ij| / u_i over its observed entries after dropping the F
       largest of those above its current value and the F smallest below it (all of them when fewer than F), with
       F = ⌊min neighbours / 2⌋ − 1; a single remaining 0 counts as 1/√n_tasks. Stops when ‖u vᵀ − u' v'ᵀ‖_F < `tol`.
    3. |s| = u / √(‖u‖/‖v‖); signs from the sign pattern of C: positive pairs become paths of length two, negative
       pairs stay edges, and the eigenvector of the random-walk matrix for the eigenvalue nearest −1 2-colours the
       graph (oriented so most workers are positive); workers whose covariances sum to 0 get s = 0.
    4. s is clipped to [−1/(K − 1) + 1/√n_tasks, 1 − 1/√n_tasks], p = s (K − 1)/K + 1/K, and the skill is the
       log-odds log(p (K − 1)/(1 − p)); labels are the skill-weighted vote (ties to the lowest label).

    Where crowd-kit departs from the weighted vote it describes, two options give both behaviours:

    - `vote="argmax"` (default): the label with the largest Σ skill·[answer = label], the MAP label of the
      one-coin model with log-odds weights. `vote="normalised"` is crowd-kit 1.4.2's `MajorityVote(skills)`: it
      divides each task's scores by their sum and takes the argmax, so a task whose weighted votes sum to less
      than 0 (workers worse than chance, negative log-odds) gets its *least* supported label (scores (−1, −3) give
      shares (0.25, 0.75)).
    - `sign_pairs="observed"` (default): the sign graph has an edge for every pair of workers with common tasks.
      `sign_pairs="all"` is crowd-kit's: its covariance matrix holds −1/(K − 1) for pairs without common tasks and
      on the diagonal, and its sign step reads the whole matrix, so those pairs (and each worker with itself)
      count as negative edges.

    The iteration starts from `scipy.stats.uniform.rvs(random_state=seed)` draws, as crowd-kit. Fitted: `labels_`,
    `probas_` (weighted vote shares; skills can be negative, so shares are rescaled to be non-negative),
    `scores_` (the raw weighted votes), `skills_`, `reliabilities_` (s), `loss_history_`, `n_iter_`.
    """

    n_iter: int = 10000
    tol: float = 1e-10
    seed: int = 0
    sign_pairs: Literal["observed", "all"] = "observed"
    vote: Literal["argmax", "normalised"] = "argmax"

    def __post_init__(self) -> None:
        _check_iter(self.n_iter, self.tol)
        if self.sign_pairs not in ("observed", "all"):
            raise ValueError(f"sign_pairs must be 'observed' or 'all', got {self.sign_pairs!r}")
        if self.vote not in ("argmax", "normalised"):
            raise ValueError(f"vote must be 'argmax' or 'normalised', got {self.vote!r}")

    def fit(self, answers: pd.DataFrame) -> MMSR:
        """Fit on a `worker, task, label` frame."""
        from scipy import sparse, stats
        from scipy.sparse import linalg as sparse_linalg

        coded = encode_answers(answers)
        n_workers, n_tasks, n_labels = len(coded.workers), len(coded.tasks), len(coded.labels)
        if n_labels < 2 or n_workers < 2:
            raise ValueError("M-MSR needs at least two labels and two workers")
        onehot = sparse.csr_matrix(
            (np.ones(coded.n_answers), (coded.worker, coded.task * n_labels + coded.label)),
            shape=(n_workers, n_tasks * n_labels),
        )
        answered = sparse.csr_matrix((np.ones(coded.n_answers), (coded.worker, coded.task)), shape=(n_workers, n_tasks))
        common = np.asarray((answered @ answered.T).todense())
        agree = np.asarray((onehot @ onehot.T).todense())
        np.fill_diagonal(common, 0.0)
        np.fill_diagonal(agree, 0.0)
        observed = common > 0
        covariance = np.zeros((n_workers, n_workers))
        covariance[observed] = agree[observed] / common[observed]
        covariance = covariance * n_labels / (n_labels - 1) - 1.0 / (n_labels - 1)
        covariance[~observed] = -1.0 / (n_labels - 1)  # crowd-kit's value off the observed pairs (never used below)
        np.fill_diagonal(covariance, -1.0 / (n_labels - 1))
        f_param = int(np.floor(observed.sum(axis=0).min() / 2)) - 1

        u = stats.uniform.rvs(size=(n_workers, 1), random_state=self.seed).ravel()
        v = stats.uniform.rvs(size=(n_workers, 1), random_state=self.seed).ravel()
        magnitude = np.abs(covariance)
        history: list[float] = []
        floor = 1.0 / np.sqrt(n_tasks)
        for _ in range(self.n_iter):
            u_prev, v_prev = u.copy(), v.copy()
            v = _msr_update(magnitude.T / u[None, :], observed.T, v, f_param, floor)  # row j: |C_ij| / u_i over i
            u = _msr_update(magnitude / v[None, :], observed, u, f_param, floor)
            loss = float(np.sqrt(max(_outer_distance_sq(u, v, u_prev, v_prev), 0.0)))
            history.append(loss)
            if loss < self.tol:
                break
        k = np.sqrt(np.linalg.norm(u) / np.linalg.norm(v))
        pairs = observed if self.sign_pairs == "observed" else np.ones_like(observed)
        reliability = _signed(covariance, pairs, u / k, sparse, sparse_linalg)
        reliability = np.minimum(reliability, 1 - floor)
        reliability = np.maximum(reliability, -1.0 / (n_labels - 1) + floor)
        p = reliability * (n_labels - 1) / n_labels + 1.0 / n_labels
        skills = np.log(p * (n_labels - 1) / (1 - p))
        scores = np.bincount(
            coded.task * n_labels + coded.label, weights=skills[coded.worker], minlength=n_tasks * n_labels
        ).reshape(n_tasks, n_labels)
        ranked = scores
        if self.vote == "normalised":  # crowd-kit: argmax of scores / row sum, which flips when the sum is < 0
            row_sum = scores.sum(axis=1, keepdims=True)
            ranked = np.divide(scores, row_sum, out=scores.copy(), where=row_sum != 0)
        top = ranked == ranked.max(axis=1, keepdims=True)
        shifted = scores - np.minimum(scores.min(axis=1, keepdims=True), 0.0)
        total = shifted.sum(axis=1, keepdims=True)
        probas = np.divide(shifted, total, out=top / top.sum(axis=1, keepdims=True), where=total > 0)
        self.scores_ = pd.DataFrame(scores, index=coded.tasks, columns=coded.labels)
        self.reliabilities_ = pd.Series(reliability, index=coded.workers, name="reliability")
        self.loss_history_, self.n_iter_ = history, len(history)
        self._store(coded, probas, skills)
        self.labels_ = pd.Series(coded.labels.to_numpy()[top.argmax(axis=1)], index=coded.tasks, name="agg_label")
        return self


def _msr_update(ratios: np.ndarray, observed: np.ndarray, current: np.ndarray, f: int, floor: float) -> np.ndarray:
    """One M-MSR step for every row at once: trimmed mean of the row's observed `ratios` around `current`."""
    values = np.where(observed, ratios, np.nan)
    below = (values < current[:, None]).sum(axis=1)
    above = (values > current[:, None]).sum(axis=1)
    ordered = np.sort(values, axis=1)  # NaN (unobserved) last
    m = observed.sum(axis=1)
    low, high = np.minimum(below, max(f, 0)), np.minimum(above, max(f, 0))  # F <= 0: nothing is dropped
    cumulative = np.concatenate([np.zeros((len(m), 1)), np.cumsum(np.nan_to_num(ordered), axis=1)], axis=1)
    rows = np.arange(len(m))
    end = m - high
    count = end - low
    total = cumulative[rows, np.maximum(end, 0)] - cumulative[rows, np.clip(low, 0, None)]
    mean = np.divide(total, count, out=current.copy(), where=count > 0)
    single_zero = (count == 1) & (total == 0)
    return np.where(single_zero, floor, mean)


def _outer_distance_sq(u: np.ndarray, v: np.ndarray, u_prev: np.ndarray, v_prev: np.ndarray) -> float:
    """‖u vᵀ − u' v'ᵀ‖_F² without forming the matrices."""
    return float((u @ u) * (v @ v) - 2 * (u @ u_prev) * (v @ v_prev) + (u_prev @ u_prev) * (v_prev @ v_prev))


def _signed(covariance: np.ndarray, observed: np.ndarray, magnitude: np.ndarray, sparse, sparse_linalg) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Signs of the reliabilities from the sign pattern of the covariances (M-MSR's sign determination)."""
    n = len(magnitude)
    signs = np.where(observed, np.sign(covariance), 0.0)
    valid = np.flatnonzero(np.where(observed, covariance, 0.0).sum(axis=1) != 0)
    result = np.zeros(n)
    if valid.size == 0:
        return result
    s = signs[np.ix_(valid, valid)]
    k = len(valid)
    i_pos, j_pos = np.nonzero(np.triu(s == 1))
    m = len(i_pos)
    negative = sparse.csr_matrix(np.abs(np.where(s == -1, 1.0, 0.0)))
    # Each positive pair (i, j) becomes a new node k + e joined to i and j.
    rows = np.concatenate([i_pos, j_pos])
    cols = np.concatenate([np.arange(m), np.arange(m)])
    incidence = sparse.csr_matrix((np.ones(2 * m), (rows, cols)), shape=(k, m))
    adjacency = sparse.bmat([[negative, incidence], [incidence.T, None]], format="csr")
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    if (degree == 0).any():
        degree = np.where(degree == 0, 1.0, degree)
    inv_sqrt = sparse.diags(1.0 / np.sqrt(degree))
    normalised = inv_sqrt @ adjacency @ inv_sqrt  # similar to the random-walk matrix D^-1 A: same eigenvalues
    size = normalised.shape[0]
    if size <= 300:
        values, vectors = np.linalg.eigh(normalised.toarray())
        vector = vectors[:, np.argmin(np.abs(values + 1.0))]
    else:
        values, vectors = sparse_linalg.eigsh(normalised, k=1, which="SA", v0=np.ones(size))
        vector = vectors[:, 0]
    walk_vector = vector / np.sqrt(degree)  # eigenvector of D^-1 A (positive rescaling keeps the signs)
    sign_vector = np.sign(walk_vector[:k])
    orientation = np.sign(sign_vector.sum()) or 1.0
    result[valid] = orientation * magnitude[valid] * sign_vector
    return result
