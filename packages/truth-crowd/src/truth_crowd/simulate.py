"""Seeded simulators with known ground truth, so every estimator can be checked against the truth (spec 7.2).

- `simulate_answers`: categorical answers `worker, task, label` from workers with known confusion matrices (a mix
  of reliable workers, noisy ones and spammers), for truth-inference methods such as Dawid-Skene.
- `simulate_crowd`: an IPM2021-like run: statements with expert levels, nine correlated items on -2..+2, workers
  with leniency bias and noise (good, noisy, uniform and constant spammers), HITs with one statement per level plus
  HIGH/LOW gold items, the ABC block first or last, times that fall with position (learning), tries, and planted
  quality-control failures (gold failers, too-fast workers, missing answers).

Both return the data and the true parameters. Randomness comes only from the `seed` argument
(`repro_core.seeding.numpy_rng` streams), so the same seed gives the same data on every machine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from repro_core.seeding import numpy_rng
from truth_crowd.io import CrowdData
from truth_crowd.schema import ABC_LEVELS, DIMENSIONS, ITEMS, POLITIFACT_LEVELS, gt_norm

__all__ = [
    "DEFAULT_LOADINGS",
    "SimulatedAnswers",
    "SimulatedCrowd",
    "simulate_answers",
    "simulate_crowd",
]

#: How strongly each item's latent mean follows the statement's truth (the rest is correlated item noise).
DEFAULT_LOADINGS: dict[str, float] = {
    "overall_truthfulness": 0.95,
    "confidence": 0.0,
    "correctness": 0.85,
    "neutrality": 0.5,
    "comprehensibility": 0.2,
    "precision": 0.4,
    "completeness": 0.4,
    "speaker_trustworthiness": 0.6,
    "informativeness": 0.2,
}
_LEVEL_NAMES = {"politifact": list(POLITIFACT_LEVELS), "abc": list(ABC_LEVELS)}
_PARTIES = {"politifact": ("DEM", "REP"), "abc": ("Labor", "Liberal")}
_DOMAINS = (
    "wikipedia.org",
    "nytimes.com",
    "cnn.com",
    "foxnews.com",
    "washingtonpost.com",
    "factcheck.org",
    "snopes.com",
    "theguardian.com",
    "abc.com",
    "reuters.com",
)


@dataclass(frozen=True)
class SimulatedAnswers:
    """Categorical answers with their truth.

    Attributes:
        answers: `worker, task, label` (crowd-kit layout), labels 0..n_labels-1.
        truth: true label per task (Series indexed by task).
        worker_accuracy: each worker's probability of answering correctly, averaged over true labels (Series).
        confusion: `[n_workers, n_labels, n_labels]` true x observed answer probabilities.
        kind: worker type (`reliable`, `noisy`, `spammer`), Series indexed by worker.
    """

    answers: pd.DataFrame
    truth: pd.Series
    worker_accuracy: pd.Series
    confusion: np.ndarray
    kind: pd.Series


def simulate_answers(
    n_tasks: int = 300,
    n_workers: int = 40,
    n_labels: int = 3,
    answers_per_task: int = 5,
    *,
    mix: Mapping[str, float] | None = None,
    seed: int = 0,
) -> SimulatedAnswers:
    """Workers with different reliabilities label tasks; each task gets `answers_per_task` distinct workers.

    `mix` gives the share of worker kinds: `reliable` (accuracy 0.75-0.95), `noisy` (accuracy 0.35-0.6, errors
    spread unevenly) and `spammer` (one fixed answer whatever the truth); default 0.5/0.3/0.2.
    """
    for name, value, low in (
        ("n_tasks", n_tasks, 1),
        ("n_workers", n_workers, 1),
        ("n_labels", n_labels, 2),
        ("answers_per_task", answers_per_task, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if answers_per_task > n_workers:
        raise ValueError(f"answers_per_task ({answers_per_task}) exceeds n_workers ({n_workers})")
    mix = dict(mix or {"reliable": 0.5, "noisy": 0.3, "spammer": 0.2})
    unknown = set(mix) - {"reliable", "noisy", "spammer"}
    if unknown or not mix or any(v < 0 for v in mix.values()) or sum(mix.values()) <= 0:
        raise ValueError(f"mix must give non-negative shares of reliable, noisy, spammer; got {mix}")
    rng = numpy_rng(seed, "truth-crowd", "simulate_answers")
    kinds_names = list(mix)
    shares = np.array([mix[k] for k in kinds_names], dtype=float)
    n_per_kind = np.floor(shares / shares.sum() * n_workers).astype(int)
    n_per_kind[0] += n_workers - n_per_kind.sum()
    kinds = rng.permutation(np.repeat(kinds_names, n_per_kind))

    confusion = np.empty((n_workers, n_labels, n_labels))
    for w, kind in enumerate(kinds):
        if kind == "spammer":
            confusion[w] = 0.0
            confusion[w, :, rng.integers(n_labels)] = 1.0
            continue
        accuracy = rng.uniform(0.75, 0.95) if kind == "reliable" else rng.uniform(0.35, 0.6)
        errors = rng.dirichlet(np.ones(n_labels - 1) * (5.0 if kind == "reliable" else 0.7), size=n_labels)
        for k in range(n_labels):
            row = np.insert(errors[k] * (1.0 - accuracy), k, accuracy)
            confusion[w, k] = row
    truth = rng.integers(n_labels, size=n_tasks)
    # Each task draws distinct workers: argsort of random keys per task, [n_tasks, answers_per_task].
    workers = np.argsort(rng.random((n_tasks, n_workers)), axis=1)[:, :answers_per_task]
    task = np.repeat(np.arange(n_tasks), answers_per_task)
    worker = workers.reshape(-1)
    probs = confusion[worker, truth[task]]  # [n_answers, n_labels]
    label = (rng.random(task.size)[:, None] > np.cumsum(probs, axis=1)).sum(axis=1)
    label = np.minimum(label, n_labels - 1)
    worker_names = np.array([f"w{i}" for i in range(n_workers)], dtype=object)
    task_names = np.array([f"t{i}" for i in range(n_tasks)], dtype=object)
    answers = pd.DataFrame({"worker": worker_names[worker], "task": task_names[task], "label": label})
    accuracy = np.einsum("wkk->w", confusion) / n_labels
    return SimulatedAnswers(
        answers=answers,
        truth=pd.Series(truth, index=pd.Index(task_names, name="task"), name="truth"),
        worker_accuracy=pd.Series(accuracy, index=pd.Index(worker_names, name="worker"), name="accuracy"),
        confusion=confusion,
        kind=pd.Series(kinds, index=pd.Index(worker_names, name="worker"), name="kind"),
    )


@dataclass(frozen=True)
class SimulatedCrowd:
    """An IPM2021-like simulated run and its truth.

    Attributes:
        data: the run as `CrowdData` (same tables and columns as `io.load_ipm2021`).
        latent: statements x items latent means on the -2..+2 scale (before worker bias and noise).
        workers: per worker: `kind`, `bias`, `sigma`, `planted_gold_fail`, `planted_too_fast`, `planted_missing`.
    """

    data: CrowdData
    latent: pd.DataFrame
    workers: pd.DataFrame


def _statement_ids(datasets: Mapping[str, int], per_level: int) -> list[tuple[str, str, int, int, str]]:
    """(statement_id, dataset, level, scale size, party) for every simulated statement."""
    rows = []
    for dataset, k in datasets.items():
        names = _LEVEL_NAMES.get(dataset, [f"L{i}" for i in range(k)])
        parties = _PARTIES.get(dataset, ("A", "B"))
        for level in range(k):
            for i in range(per_level):
                party = parties[i % 2]
                rows.append((f"{dataset}_{names[level]}_{i + 1}", dataset, level, k, party))
    return rows


#: CRT items answered right with this probability per worker kind (better workers reason better; a planted effect).
_CRT_P = {"good": 0.65, "noisy": 0.35, "uniform": 0.15, "constant": 0.15}
_AGES = ("19-25", "26-35", "36-50", "50-80")
_VIEWS = ("Very liberal", "Liberal", "Moderate", "Conservative", "Very conservative")


def _background(kind: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """CRT score (0-3) tied to the worker kind, and age and political views independent of it (a planted null).

    A separate generator keeps the judgments identical to runs before these columns existed.
    """
    p = np.array([_CRT_P.get(k, 0.15) for k in kind])
    crt = rng.binomial(3, p).astype(np.int8)
    age = rng.integers(0, len(_AGES), len(kind))
    views = rng.integers(0, len(_VIEWS), len(kind))
    columns = {
        "age_answer": np.array(_AGES, dtype=object)[age],
        "age_value": (age + 1).astype(float),
        "political_views_answer": np.array(_VIEWS, dtype=object)[views],
        "political_views_value": views.astype(float),
    }
    return crt, columns


def simulate_crowd(
    *,
    statements_per_level: int = 20,
    judgments_per_statement: int = 10,
    datasets: Mapping[str, int] | None = None,
    mix: Mapping[str, float] | None = None,
    loadings: Mapping[str, float] | None = None,
    item_correlation: float = 0.5,
    abc_block_first: float = 0.3,
    n_gold_failers: int = 0,
    n_too_fast: int = 0,
    n_missing: int = 0,
    min_seconds: float = 2.0,
    seed: int = 0,
) -> SimulatedCrowd:
    """Simulate an IPM2021-like run: by default 120 PolitiFact + 60 ABC statements, 200 one-HIT workers, 11 items
    per HIT (one statement per level of each dataset, plus HIGH and LOW gold), 10 judgments per statement.

    Args:
        statements_per_level: statements per expert level (20 in the paper).
        judgments_per_statement: judgments each statement receives; the number of workers is their product.
        datasets: dataset name -> number of expert levels (default politifact 6, abc 3).
        mix: shares of worker kinds `good`, `noisy`, `uniform`, `constant` (default 0.6/0.25/0.1/0.05).
        loadings: per item, how much its latent mean follows the truth (`DEFAULT_LOADINGS`).
        item_correlation: equicorrelation of the items' non-truth parts.
        abc_block_first: share of HITs that show the `abc` block first (the rest show it last).
        n_gold_failers, n_too_fast, n_missing: workers planted to fail the gold check (LOW >= HIGH), to spend less
            than `min_seconds` on one statement, and to leave one item empty. All other workers pass the three
            checks by construction (the release holds accepted HITs only).
        seed: the only source of randomness.

    The workers table has `crt_score` drawn from Binomial(3, p) with p by kind (good 0.65, noisy 0.35, spammers
    0.15), and `age` / `political_views` (answer and code) independent of the kind.
    """
    datasets = dict(datasets or {"politifact": 6, "abc": 3})
    if not datasets or any(not isinstance(k, int) or k < 2 for k in datasets.values()):
        raise ValueError(f"datasets must map names to a number of levels >= 2, got {datasets}")
    for name, value in (
        ("statements_per_level", statements_per_level),
        ("judgments_per_statement", judgments_per_statement),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if not 0.0 <= abc_block_first <= 1.0:
        raise ValueError(f"abc_block_first must lie in [0, 1], got {abc_block_first}")
    if not -0.1 < item_correlation < 1.0:
        raise ValueError(f"item_correlation must lie in (-0.1, 1), got {item_correlation}")
    loadings = {**DEFAULT_LOADINGS, **(loadings or {})}
    n_workers = statements_per_level * judgments_per_statement
    planted_total = n_gold_failers + n_too_fast + n_missing
    if min(n_gold_failers, n_too_fast, n_missing) < 0 or planted_total > n_workers:
        raise ValueError(f"planted workers ({planted_total}) must be >= 0 and at most n_workers ({n_workers})")
    mix = dict(mix or {"good": 0.6, "noisy": 0.25, "uniform": 0.1, "constant": 0.05})
    if set(mix) - {"good", "noisy", "uniform", "constant"} or sum(mix.values()) <= 0:
        raise ValueError(f"mix must give shares of good, noisy, uniform, constant; got {mix}")
    rng = numpy_rng(seed, "truth-crowd", "simulate_crowd")

    # Statements and their latent item means.
    statements = _statement_ids(datasets, statements_per_level)
    ids = [s[0] for s in statements]
    gt_value = np.array([s[2] for s in statements], dtype=float)
    gt_scale = np.array([s[3] for s in statements], dtype=float)
    truth = gt_norm(gt_value, gt_scale)
    n_items = len(ITEMS)
    corr = np.full((n_items, n_items), item_correlation) + np.eye(n_items) * (1.0 - item_correlation)
    z = rng.multivariate_normal(np.zeros(n_items), corr, size=len(ids))
    load = np.array([loadings[item] for item in ITEMS])
    latent = truth[:, None] * load[None, :] + 1.2 * np.sqrt(1.0 - load**2)[None, :] * z
    latent[:, ITEMS.index("confidence")] += 0.5
    gold_latent = {"HIGH": np.full(n_items, 1.8), "LOW": np.full(n_items, -1.8)}

    # Workers.
    names = list(mix)
    shares = np.array([mix[k] for k in names], dtype=float)
    counts = np.floor(shares / shares.sum() * n_workers).astype(int)
    counts[0] += n_workers - counts.sum()
    kind = rng.permutation(np.repeat(names, counts))
    bias = np.where(np.isin(kind, ["good", "noisy"]), rng.normal(0.4, 0.3, n_workers), 0.0)
    sigma = np.where(
        kind == "good",
        rng.uniform(0.3, 0.7, n_workers),
        np.where(kind == "noisy", rng.uniform(1.2, 2.0, n_workers), np.nan),
    )
    constant_value = rng.integers(-2, 3, n_workers)
    planted = rng.permutation(n_workers)
    gold_fail = np.zeros(n_workers, bool)
    gold_fail[planted[:n_gold_failers]] = True
    too_fast = np.zeros(n_workers, bool)
    too_fast[planted[n_gold_failers : n_gold_failers + n_too_fast]] = True
    missing = np.zeros(n_workers, bool)
    missing[planted[n_gold_failers + n_too_fast : planted_total]] = True

    # HITs: worker h gets, for each dataset and level, statement perm[(h) mod per_level] of that level, so every
    # statement gets exactly judgments_per_statement judgments and each HIT one statement per level.
    by_level: dict[tuple[str, int], list[int]] = {}
    for index, (_, dataset, level, _, _) in enumerate(statements):
        by_level.setdefault((dataset, level), []).append(index)
    rows_worker, rows_statement, rows_position = [], [], []
    block_first = rng.random(n_workers) < abc_block_first
    shuffles = {key: rng.permutation(members) for key, members in by_level.items()}
    for h in range(n_workers):
        chosen = {key: int(members[h % statements_per_level]) for key, members in shuffles.items()}
        abc = [chosen[key] for key in chosen if key[0] == "abc"]
        other: list[int | str] = [chosen[key] for key in chosen if key[0] != "abc"] + ["HIGH", "LOW"]
        order = rng.permutation(len(other))
        other = [other[i] for i in order]
        abc = [abc[i] for i in rng.permutation(len(abc))]
        sequence = abc + other if block_first[h] else other + abc
        for position, item in enumerate(sequence):
            rows_worker.append(h)
            rows_statement.append(item)
            rows_position.append(position)
    worker = np.asarray(rows_worker)
    position = np.asarray(rows_position)
    is_gold = np.array([isinstance(s, str) for s in rows_statement])
    statement_index = np.array([-1 if isinstance(s, str) else s for s in rows_statement])
    n_rows = worker.size

    mu = np.where(is_gold[:, None], 0.0, latent[np.maximum(statement_index, 0)])
    for kind_name, values in gold_latent.items():
        rows = np.array([s == kind_name for s in rows_statement])
        mu[rows] = values
    noise = rng.normal(size=(n_rows, n_items)) * np.nan_to_num(sigma[worker])[:, None]
    x = np.clip(np.rint(mu + bias[worker][:, None] + noise), -2, 2)
    uniform = kind[worker] == "uniform"
    x[uniform] = rng.integers(-2, 3, size=(int(uniform.sum()), n_items))
    constant = kind[worker] == "constant"
    x[constant] = constant_value[worker[constant]][:, None]

    # Gold items: planted failers answer LOW >= HIGH; everyone else passes (accepted HITs only).
    ot = ITEMS.index("overall_truthfulness")
    high_row = np.flatnonzero(np.array([s == "HIGH" for s in rows_statement]))
    low_row = np.flatnonzero(np.array([s == "LOW" for s in rows_statement]))
    high_row = high_row[np.argsort(worker[high_row])]
    low_row = low_row[np.argsort(worker[low_row])]
    fails = x[low_row, ot] >= x[high_row, ot]
    fix = fails & ~gold_fail
    x[high_row[fix], ot], x[low_row[fix], ot] = 2, -2
    x[high_row[gold_fail], ot], x[low_row[gold_fail], ot] = -1, 1

    # Times fall with position (learning curve a * (p + 1)^-beta, log-normal noise), floored above min_seconds.
    scale = rng.lognormal(np.log(120.0), 0.4, n_workers)
    time = scale[worker] * (position + 1.0) ** -0.35 * rng.lognormal(0.0, 0.35, n_rows)
    time = np.maximum(time, min_seconds + 0.5)
    fast_rows = np.array([rng.choice(np.flatnonzero(worker == h)) for h in np.flatnonzero(too_fast)], dtype=int)
    if fast_rows.size:
        time[fast_rows] = min_seconds * 0.5
    values = pd.DataFrame(x, columns=list(ITEMS)).astype("Int8")
    missing_rows = np.array(
        [rng.choice(np.flatnonzero((worker == h) & ~is_gold)) for h in np.flatnonzero(missing)], dtype=int
    )
    for r in missing_rows:
        values.iloc[r, ITEMS.index(DIMENSIONS[int(rng.integers(len(DIMENSIONS)))])] = pd.NA

    worker_ids = np.array([f"sim_{h}" for h in range(n_workers)], dtype=object)
    sid = np.array([s if isinstance(s, str) else ids[s] for s in rows_statement], dtype=object)
    dataset = np.array(["gold" if isinstance(s, str) else statements[s][1] for s in rows_statement], dtype=object)
    domains = np.asarray(_DOMAINS, dtype=object)[rng.integers(len(_DOMAINS), size=n_rows)]
    judgments = pd.DataFrame(
        {
            "worker_id": worker_ids[worker],
            "statement_id": sid,
            "statement_text": [f"text of {s}" for s in sid],
            "dataset": pd.Categorical(dataset, categories=[*datasets, "gold"]),
            "position": position.astype(np.int16),
            "is_gold": is_gold,
            "gold_kind": pd.array([s if isinstance(s, str) else None for s in rows_statement], dtype="string"),
        }
    )
    judgments = pd.concat([judgments, values], axis=1)
    judgments["time_elapsed_s"] = np.round(time, 2)
    judgments["accesses"] = pd.array(np.ones(n_rows, dtype=np.int32), dtype="Int32")
    judgments["evidence_url"] = pd.array(
        [f"https://www.{d}/article/{i}" for i, d in enumerate(domains)], dtype="string"
    )
    judgments["try_number"] = pd.array(np.where(rng.random(n_workers) < 0.05, 2, 1)[worker], dtype="Int16")
    judgments["shown_level_mismatch"] = False

    statement_table = pd.DataFrame(
        {
            "dataset": pd.Categorical([s[1] for s in statements], categories=[*datasets, "gold"]),
            "text": [f"text of {s}" for s in ids],
            "party": [s[4] for s in statements],
            "gt_value": pd.array(gt_value.astype(int), dtype="Int8"),
            "gt_scale": pd.array(gt_scale.astype(int), dtype="Int8"),
            "gt_norm": truth,
            "n_judgments": judgments[~judgments["is_gold"]].groupby("statement_id").size().reindex(ids).to_numpy(),
            "broken": False,
        },
        index=pd.Index(ids, name="statement_id"),
    )
    crt_score, background = _background(kind, np.random.default_rng([seed, 2021]))
    workers_table = pd.DataFrame(
        {
            "n_judgments": judgments.groupby("worker_id").size().reindex(worker_ids).to_numpy(),
            "try_number": pd.array(
                judgments.groupby("worker_id")["try_number"].first().reindex(worker_ids).to_numpy(), dtype="Int16"
            ),
            "crt_score": crt_score,
            **background,
            **{
                f"q{q}_time_elapsed_s": np.round(rng.lognormal(np.log(20.0), 0.5, n_workers) + min_seconds + 0.5, 2)
                for q in range(4)
            },
            "tries_allowed": 10,
        },
        index=pd.Index(worker_ids, name="worker_id"),
    )
    truth_workers = pd.DataFrame(
        {
            "kind": kind,
            "bias": bias,
            "sigma": sigma,
            "planted_gold_fail": gold_fail,
            "planted_too_fast": too_fast,
            "planted_missing": missing,
        },
        index=pd.Index(worker_ids, name="worker_id"),
    )
    data = CrowdData(
        judgments=judgments,
        statements=statement_table,
        workers=workers_table,
        items=ITEMS,
        decisions=[f"simulated: seed {seed}, {n_workers} workers, {len(ids)} statements"],
        source=None,
    )
    latent_table = pd.DataFrame(latent, index=pd.Index(ids, name="statement_id"), columns=list(ITEMS))
    return SimulatedCrowd(data=data, latent=latent_table, workers=truth_workers)
