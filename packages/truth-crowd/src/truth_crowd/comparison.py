"""Every aggregator and truth-inference model on the same answers, scored against the truth (spec 6 item 12, 7.6).

`compare_aggregators(answers, truth)` runs mean, median, majority vote, Dawid-Skene, one-coin DS, GLAD, MACE, M-MSR,
Wawa and zero-based skill on one crowd-kit `worker, task, label` frame and returns one row per method: accuracy (exact
label match, categorical methods only), MAE/RMSE and Spearman ρ / Kendall τ-b against the truth (numeric labels
only). On the simulator the truth is the planted label; on the IPM data `compare_with_experts` uses the expert level
(`gt_norm`, −2..+2) per dataset, where the categorical models treat the 5-point answers as nominal (spec 6 item 12).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from truth_crowd.aggregation import TIE_BREAKS, DawidSkene, majority_vote, mean_aggregate, median_aggregate
from truth_crowd.inference import GLAD, MACE, MMSR, OneCoinDawidSkene, Wawa, ZeroBasedSkill
from truth_crowd.io import CrowdData
from truth_crowd.schema import to_crowdkit

__all__ = ["AGGREGATORS", "NUMERIC_AGGREGATORS", "compare_aggregators", "compare_with_experts"]

logger = logging.getLogger(__name__)

#: Method names in table order. `mean` and `median` need numeric labels and give non-label values.
AGGREGATORS: tuple[str, ...] = ("mean", "median", "mv", "ds", "onecoin", "glad", "mace", "mmsr", "wawa", "zbs")
NUMERIC_AGGREGATORS: frozenset[str] = frozenset({"mean", "median"})

_MODELS: dict[str, Callable[[], object]] = {
    "ds": DawidSkene,
    "onecoin": OneCoinDawidSkene,
    "glad": GLAD,
    "mace": MACE,
    "mmsr": MMSR,
    "wawa": Wawa,
    "zbs": ZeroBasedSkill,
}


def _predict(method: str, answers: pd.DataFrame, tie_break: str, seed: int) -> pd.Series:
    if method == "mean":
        return mean_aggregate(answers)
    if method == "median":
        return median_aggregate(answers)
    if method == "mv":
        return majority_vote(answers, tie_break=tie_break, seed=seed)  # type: ignore[arg-type]
    return _MODELS[method]().fit_predict(answers)  # type: ignore[attr-defined]


def compare_aggregators(
    answers: pd.DataFrame,
    truth: pd.Series,
    *,
    methods: Sequence[str] | None = None,
    tie_break: str = "random",
    seed: int = 0,
) -> pd.DataFrame:
    """Run each method on `answers` (`worker, task, label`) and score it against `truth` (Series indexed by task).

    Returns a tidy table: `method, kind (numeric|categorical), n_tasks, accuracy, mae, rmse, spearman, kendall`.
    Accuracy is the share of tasks whose label equals the truth (NaN for mean/median, whose values are not labels);
    the error and rank columns need numeric labels and truth (NaN otherwise). Tasks without a truth are left out of
    the scores, not of the fits. `methods` defaults to every method, less mean and median when labels are not
    numeric; majority vote breaks ties by `tie_break` (default `random`, seeded: no label is favoured).
    """
    if not isinstance(truth, pd.Series):
        raise ValueError("truth must be a pandas Series indexed by task")
    if tie_break not in TIE_BREAKS:
        raise ValueError(f"tie_break must be one of {TIE_BREAKS}, got {tie_break!r}")
    missing = {"worker", "task", "label"} - set(answers.columns)
    if missing:
        raise ValueError(f"answers lack columns {sorted(missing)} (crowd-kit layout worker, task, label)")
    if answers.empty:
        raise ValueError("answers are empty")
    numeric = pd.api.types.is_numeric_dtype(answers["label"]) and pd.api.types.is_numeric_dtype(truth)
    if methods is None:
        methods = [m for m in AGGREGATORS if numeric or m not in NUMERIC_AGGREGATORS]
    unknown = [m for m in methods if m not in AGGREGATORS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {list(AGGREGATORS)}")
    if not numeric and any(m in NUMERIC_AGGREGATORS for m in methods):
        raise ValueError("mean and median need numeric labels and truth")
    truth = truth.dropna()
    rows = []
    for method in methods:
        predicted = _predict(method, answers, tie_break, seed)
        common = predicted.index.intersection(truth.index)
        p, t = predicted.loc[common], truth.loc[common]
        row: dict[str, object] = {
            "method": method,
            "kind": "numeric" if method in NUMERIC_AGGREGATORS else "categorical",
            "n_tasks": len(common),
            "accuracy": np.nan if method in NUMERIC_AGGREGATORS else float((p.to_numpy() == t.to_numpy()).mean()),
            "mae": np.nan,
            "rmse": np.nan,
            "spearman": np.nan,
            "kendall": np.nan,
        }
        if numeric and len(common):
            diff = p.to_numpy(dtype=float) - t.to_numpy(dtype=float)
            row["mae"], row["rmse"] = float(np.abs(diff).mean()), float(np.sqrt((diff**2).mean()))
            if p.nunique() > 1 and t.nunique() > 1:
                row["spearman"] = float(stats.spearmanr(p, t)[0])
                row["kendall"] = float(stats.kendalltau(p, t)[0])
        rows.append(row)
        logger.debug("compare_aggregators: %s done", method)
    return pd.DataFrame(rows)


def compare_with_experts(
    data: CrowdData,
    *,
    item: str = "overall_truthfulness",
    datasets: Sequence[str] = ("politifact", "abc", "all"),
    methods: Sequence[str] | None = None,
    tie_break: str = "random",
    seed: int = 0,
) -> pd.DataFrame:
    """`compare_aggregators` on real statements per dataset, against the expert level normalised to −2..+2.

    Accuracy is NaN here: the experts' 6- and 3-level scales are not the crowd's 5 labels, so the rank correlations
    (the spec's Spearman ρ with the expert level) and MAE/RMSE on the common scale are the scores. `all` pools both
    datasets (their normalised levels share the −2..+2 range). Returns the tidy table with a leading `dataset`.
    """
    if "gt_norm" not in data.statements.columns:
        raise ValueError("statements have no gt_norm (expert labels): nothing to compare against")
    if item not in data.judgments.columns:
        raise ValueError(f"item {item!r} is not a judgment column")
    truth = data.statements["gt_norm"].astype("float64")
    tables = []
    for name in datasets:
        if name == "all":
            rows = data.judgments[data.judgments["dataset"].isin(["politifact", "abc"])]
        elif name in ("politifact", "abc"):
            rows = data.judgments[data.judgments["dataset"] == name]
        else:
            raise ValueError(f"datasets must be among 'politifact', 'abc', 'all'; got {name!r}")
        answers = to_crowdkit(rows, item)
        if answers.empty:
            logger.warning("compare_with_experts: no %s answers, skipped", name)
            continue
        table = compare_aggregators(answers, truth, methods=methods, tie_break=tie_break, seed=seed)
        table["accuracy"] = np.nan
        tables.append(table.assign(dataset=name))
    if not tables:
        raise ValueError("no answers on real statements")
    result = pd.concat(tables, ignore_index=True)
    return result[["dataset", *[c for c in result.columns if c != "dataset"]]]
