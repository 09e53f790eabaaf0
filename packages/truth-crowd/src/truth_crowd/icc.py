"""Intraclass correlation: the six forms of Shrout & Fleiss (1979), "Intraclass correlations: uses in assessing
rater reliability", Psychological Bulletin 86(2), 420-428.

From a complete `[n_targets, k_judges]` table, a two-way ANOVA gives the mean squares between targets (BMS), within
targets (WMS), between judges (JMS) and the residual (EMS); then

- ICC(1,1) = (BMS − WMS) / (BMS + (k − 1) WMS)      one-way random: each target rated by its own k judges;
- ICC(2,1) = (BMS − EMS) / (BMS + (k − 1) EMS + k (JMS − EMS) / n)   two-way random: judges drawn from a population;
- ICC(3,1) = (BMS − EMS) / (BMS + (k − 1) EMS)      two-way mixed: these k judges only (consistency);
- ICC(1,k) = (BMS − WMS) / BMS, ICC(2,k) = (BMS − EMS) / (BMS + (JMS − EMS) / n), ICC(3,k) = (BMS − EMS) / BMS:
  the reliability of the mean of the k judges.

Crowd data rarely has the same judges on every target: then only the one-way forms apply, with the k ratings of a
target in any order (`icc_from_answers` takes crowd-kit's `worker, task, label` frame, keeps the tasks with the most
common number of ratings, as `fleiss_kappa` does, and puts each task's ratings in slots).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["ICC_FORMS", "IccResult", "icc", "icc_from_answers"]

#: The six forms, in Shrout & Fleiss's notation.
ICC_FORMS: tuple[str, ...] = ("ICC(1,1)", "ICC(2,1)", "ICC(3,1)", "ICC(1,k)", "ICC(2,k)", "ICC(3,k)")


@dataclass(frozen=True)
class IccResult:
    """The six ICC forms and the ANOVA they come from (`k` judges, `n` targets)."""

    values: dict[str, float]
    n_targets: int
    k: int
    bms: float
    wms: float
    jms: float
    ems: float

    def table(self) -> pd.DataFrame:
        """One row per form: `form, icc`."""
        return pd.DataFrame({"form": list(self.values), "icc": list(self.values.values())})


def icc(ratings: np.ndarray | pd.DataFrame) -> IccResult:
    """All six Shrout-Fleiss ICCs of a complete `[n_targets, k_judges]` table (no missing ratings).

    Raises `ValueError` for missing or non-finite ratings, fewer than 2 targets or 2 judges.
    """
    table = np.asarray(ratings, dtype=float)
    if table.ndim != 2:
        raise ValueError(f"ratings must be 2-D [n_targets, k_judges], got shape {table.shape}")
    n, k = table.shape
    if n < 2 or k < 2:
        raise ValueError(f"ICC needs at least 2 targets and 2 judges, got {n} x {k}")
    if not np.isfinite(table).all():
        raise ValueError("ICC needs a complete table: ratings contain NaN or infinite values")
    grand = table.mean()
    target_means, judge_means = table.mean(axis=1), table.mean(axis=0)
    ss_targets = k * ((target_means - grand) ** 2).sum()
    ss_judges = n * ((judge_means - grand) ** 2).sum()
    ss_within = ((table - target_means[:, None]) ** 2).sum()
    ss_error = ss_within - ss_judges
    bms = ss_targets / (n - 1)
    wms = ss_within / (n * (k - 1))
    jms = ss_judges / (k - 1)
    ems = ss_error / ((n - 1) * (k - 1))

    def ratio(numerator: float, denominator: float) -> float:
        return float(numerator / denominator) if denominator != 0 else float("nan")

    values = {
        "ICC(1,1)": ratio(bms - wms, bms + (k - 1) * wms),
        "ICC(2,1)": ratio(bms - ems, bms + (k - 1) * ems + k * (jms - ems) / n),
        "ICC(3,1)": ratio(bms - ems, bms + (k - 1) * ems),
        "ICC(1,k)": ratio(bms - wms, bms),
        "ICC(2,k)": ratio(bms - ems, bms + (jms - ems) / n),
        "ICC(3,k)": ratio(bms - ems, bms),
    }
    return IccResult(values, n, k, float(bms), float(wms), float(jms), float(ems))


def icc_from_answers(answers: pd.DataFrame, *, n_ratings: int | None = None) -> IccResult:
    """One-way ICCs (`ICC(1,1)`, `ICC(1,k)`) of crowd answers (`worker, task, label`, numeric labels).

    Tasks with exactly `n_ratings` answers (default: the most common count) are kept; each task's answers fill k
    slots in table order. The two-way forms need the same judges on every target, which slots are not: they are
    left out of the returned `values`.
    """
    missing = {"worker", "task", "label"} - set(answers.columns)
    if missing:
        raise ValueError(f"answers lack columns {sorted(missing)}")
    labels = pd.to_numeric(answers["label"], errors="coerce")
    if labels.isna().any():
        raise ValueError("ICC needs numeric labels without missing values")
    from truth_crowd.aggregation import check_unique_pairs

    check_unique_pairs(answers)
    per_task = answers.groupby("task", sort=False).size()
    if per_task.empty:
        raise ValueError("answers are empty")
    k = int(per_task.mode().iloc[0]) if n_ratings is None else int(n_ratings)
    tasks = per_task.index[per_task == k]
    if k < 2 or len(tasks) < 2:
        raise ValueError(f"ICC needs at least 2 tasks with k >= 2 ratings each; {len(tasks)} task(s) have {k}")
    kept = answers["task"].isin(tasks).to_numpy()
    frame = pd.DataFrame({"task": answers["task"].to_numpy()[kept], "label": labels.to_numpy(dtype=float)[kept]})
    frame["slot"] = frame.groupby("task", sort=False).cumcount()
    table = frame.pivot(index="task", columns="slot", values="label").to_numpy()
    full = icc(table)
    one_way = {form: full.values[form] for form in ("ICC(1,1)", "ICC(1,k)")}
    return IccResult(one_way, full.n_targets, full.k, full.bms, full.wms, full.jms, full.ems)
