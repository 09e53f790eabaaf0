"""Predicting the expert label from the crowd's dimensions (spec §2.5 G, §6 item 11) with the released classifier
settings (`IPM2021/parameters.md`) updated for current scikit-learn.

scikit-learn is an optional extra (`pip install 'truth-crowd[classify]'`): it is imported only here, and a missing
install raises `repro_core.errors.MissingExtraError` naming that extra.

Deviations from `parameters.md`, each forced by scikit-learn's API changes:

- RandomForest `max_features='auto'` meant `'sqrt'` for classifiers and was removed in 1.3: we pass `'sqrt'`;
  `min_impurity_split` (removed in 1.0) is dropped.
- LogisticRegression `multi_class='auto'` (deprecated in 1.5, removed later) is omitted (the multinomial model it
  picked for lbfgs is now the only behaviour); `penalty='l2'` is passed as `l1_ratio=0` where scikit-learn has
  deprecated `penalty` (1.8+).
- AdaBoost `base_estimator` became `estimator` (default: a depth-1 tree either way); `algorithm='SAMME.R'` was
  removed: SAMME is used (passed explicitly where the parameter still exists).
- RandomForest keeps `random_state=0` from the released settings unless the protocol's seed replaces it; AdaBoost
  (whose stumps break feature ties at random) gets the same seed so that runs are deterministic.

The protocol (which items are features, the target, statement or judgment rows, folds and seeds) is not in the
paper's release: it is a parameter here, and the default (statement means of the 7 dimensions, 5-fold stratified
CV, seed 0) is ours, not the paper's.
"""

from __future__ import annotations

import inspect
import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

import numpy as np
import pandas as pd

from repro_core.errors import ConfigError
from repro_core.optional import require
from truth_crowd.analyses import aggregate_items
from truth_crowd.io import CrowdData
from truth_crowd.schema import DIMENSIONS

__all__ = ["PAPER_MODEL_NAMES", "TARGETS", "ClassifierResult", "paper_models", "predict_expert_label"]

logger = logging.getLogger(__name__)

#: The five classifiers of `parameters.md`, in its order.
PAPER_MODEL_NAMES: tuple[str, ...] = ("random_forest", "logistic_regression", "adaboost", "naive_bayes", "svm")
#: Targets: the native expert level, the PolitiFact 3-way merge, or true vs false (PolitiFact `012|345`, ABC
#: positive vs the rest: the same splits as the AUC of `external_agreement`).
TARGETS: tuple[str, ...] = ("levels", "01|23|45", "binary")
_FEATURE = "predicting the expert label (truth_crowd.classify)"


def _sklearn() -> ModuleType:
    """scikit-learn, or `MissingExtraError` naming this package's `classify` extra."""
    return require("sklearn", _FEATURE, extra="classify", distribution="truth-crowd")


def _accepts(cls: type, name: str) -> bool:
    return name in inspect.signature(cls).parameters


def paper_models(random_state: int = 0) -> dict[str, Any]:
    """Fresh, unfitted estimators with the `parameters.md` settings adapted to the installed scikit-learn."""
    _sklearn()
    from sklearn.ensemble import AdaBoostClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import GaussianNB
    from sklearn.svm import SVC

    logistic: dict[str, Any] = {"C": 1.0, "solver": "lbfgs", "max_iter": 100}
    if inspect.signature(LogisticRegression).parameters["penalty"].default == "deprecated":
        logistic["l1_ratio"] = 0.0  # pure L2 in scikit-learn >= 1.8
    else:
        logistic["penalty"] = "l2"
    adaboost: dict[str, Any] = {"estimator": None, "n_estimators": 50, "learning_rate": 1.0}
    if _accepts(AdaBoostClassifier, "algorithm"):
        adaboost["algorithm"] = "SAMME"
    return {
        "random_forest": RandomForestClassifier(
            n_estimators=100,
            criterion="gini",
            max_depth=None,
            min_samples_split=2,
            min_samples_leaf=1,
            max_features="sqrt",
            bootstrap=True,
            random_state=random_state,
        ),
        "logistic_regression": LogisticRegression(**logistic),
        "adaboost": AdaBoostClassifier(**adaboost, random_state=random_state),
        "naive_bayes": GaussianNB(var_smoothing=1e-9),
        "svm": SVC(C=1.0, kernel="rbf", gamma="scale"),
    }


@dataclass(frozen=True)
class ClassifierResult:
    """Cross-validated scores: `folds` (model, seed, fold, accuracy, f1_macro, n_test) and `summary` per model
    (mean and sd over every fold of every seed), with the majority-class baseline as model `majority`."""

    folds: pd.DataFrame
    summary: pd.DataFrame
    protocol: dict[str, Any]

    def tables(self) -> dict[str, pd.DataFrame]:
        """The two tables by name."""
        return {"folds": self.folds, "summary": self.summary}


def _target(levels: np.ndarray, dataset: np.ndarray, target: str) -> np.ndarray:
    if target == "levels":
        return levels.astype(int)
    if target == "01|23|45":
        if (dataset != "politifact").any():
            raise ConfigError("target '01|23|45' is a PolitiFact merge: use dataset='politifact'")
        return levels.astype(int) // 2
    pf = dataset == "politifact"
    return np.where(pf, levels >= 3, levels == 2).astype(int)


def predict_expert_label(
    data: CrowdData,
    *,
    features: Sequence[str] = DIMENSIONS,
    dataset: Literal["politifact", "abc", "all"] = "politifact",
    target: str = "binary",
    unit: Literal["statement", "judgment"] = "statement",
    aggregator: Literal["mean", "median"] = "mean",
    models: Sequence[str] | Mapping[str, Any] | None = None,
    n_splits: int = 5,
    seeds: Sequence[int] = (0,),
) -> ClassifierResult:
    """Cross-validated prediction of the expert label from crowd items (spec §2.5 G; the protocol is a parameter).

    Rows are statements (items aggregated by `aggregator`) or judgments; judgment rows are split with
    `StratifiedGroupKFold` grouped by statement, so a statement's judgments never sit in train and test at once.
    Each seed reshuffles the folds and seeds the random models. `models`: names from `PAPER_MODEL_NAMES` (default:
    all five) or a mapping name -> unfitted scikit-learn estimator. `dataset="all"` needs `target="binary"` (the
    two expert scales differ). Returns per-fold accuracy and macro F1 plus a per-model summary.
    """
    _sklearn()
    from sklearn.base import clone
    from sklearn.dummy import DummyClassifier
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    if target not in TARGETS:
        raise ConfigError(f"target must be one of {TARGETS}, got {target!r}")
    if dataset not in ("politifact", "abc", "all"):
        raise ConfigError(f"dataset must be 'politifact', 'abc' or 'all', got {dataset!r}")
    if dataset == "all" and target != "binary":
        raise ConfigError("dataset='all' mixes a 6-level and a 3-level expert scale: use target='binary'")
    if unit not in ("statement", "judgment"):
        raise ConfigError(f"unit must be 'statement' or 'judgment', got {unit!r}")
    if n_splits < 2:
        raise ConfigError(f"n_splits must be >= 2, got {n_splits}")
    if not seeds:
        raise ConfigError("seeds must name at least one seed")
    features = list(features)
    unknown = [f for f in features if f not in data.judgments.columns]
    if not features or unknown:
        raise ConfigError(f"features must be item columns of the data; unknown: {unknown or 'none given'}")
    if "gt_value" not in data.statements.columns:
        raise ConfigError("the data has no expert labels (statements.gt_value)")
    expert = data.statements[["dataset", "gt_value"]].dropna(subset=["gt_value"])
    expert = expert[expert["dataset"].isin(["politifact", "abc"] if dataset == "all" else [dataset])]
    if unit == "statement":
        rows = aggregate_items(data.judgments, features, aggregator).join(expert, how="inner")
        groups = None
    else:
        judgments = data.judgments[["statement_id", *features]]
        rows = judgments.join(expert, on="statement_id", how="inner")
    rows = rows.dropna(subset=features)
    if unit == "judgment":
        groups = rows["statement_id"].to_numpy()
    x = rows[features].to_numpy(dtype=float)
    y = _target(rows["gt_value"].to_numpy(dtype=float), rows["dataset"].to_numpy(), target)
    smallest = int(np.bincount(y).min()) if y.size else 0
    if len(np.unique(y)) < 2 or (smallest < n_splits and unit == "statement"):
        raise ConfigError(f"n_splits={n_splits} needs >= {n_splits} rows of each class; the smallest has {smallest}")

    if models is None:
        models = PAPER_MODEL_NAMES
    if isinstance(models, Mapping):
        chosen = dict(models)
    else:
        unknown_models = [m for m in models if m not in PAPER_MODEL_NAMES]
        if unknown_models:
            raise ConfigError(f"unknown model(s) {unknown_models}; choose from {PAPER_MODEL_NAMES}")
        chosen = {name: None for name in models}

    records = []
    for seed in seeds:
        templates = paper_models(random_state=int(seed))
        estimators = {"majority": DummyClassifier(strategy="most_frequent")}
        for name, est in chosen.items():
            estimators[name] = templates[name] if est is None else est
        if groups is None:
            splits = StratifiedKFold(n_splits, shuffle=True, random_state=int(seed)).split(x, y)
        else:
            splits = StratifiedGroupKFold(n_splits, shuffle=True, random_state=int(seed)).split(x, y, groups)
        for fold, (train, test) in enumerate(splits):
            for name, template in estimators.items():
                model = clone(template)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # lbfgs max_iter=100 (the released setting) may not converge
                    model.fit(x[train], y[train])
                predicted = model.predict(x[test])
                records.append(
                    {
                        "model": name,
                        "seed": int(seed),
                        "fold": fold,
                        "accuracy": float(accuracy_score(y[test], predicted)),
                        "f1_macro": float(f1_score(y[test], predicted, average="macro", zero_division=0)),
                        "n_test": int(test.size),
                    }
                )
    folds = pd.DataFrame(records)
    summary = (
        folds.groupby("model", sort=False)
        .agg(
            accuracy=("accuracy", "mean"),
            accuracy_sd=("accuracy", "std"),
            f1_macro=("f1_macro", "mean"),
            f1_macro_sd=("f1_macro", "std"),
            n_folds=("fold", "size"),
        )
        .reset_index()
    )
    protocol = {
        "features": features,
        "dataset": dataset,
        "target": target,
        "unit": unit,
        "aggregator": aggregator,
        "n_splits": n_splits,
        "seeds": [int(s) for s in seeds],
        "n_rows": len(y),
        "class_counts": {int(k): int(v) for k, v in zip(*np.unique(y, return_counts=True), strict=True)},
    }
    logger.info("classifiers: %s", protocol)
    return ClassifierResult(folds, summary, protocol)
