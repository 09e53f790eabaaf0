"""Predicting the expert label from the dimensions: the released settings on current scikit-learn, the protocol as
parameters, leakage-free judgment-level CV, determinism by seed, and the missing-extra error."""

from __future__ import annotations

import sys

import pytest

from repro_core.errors import ConfigError, MissingExtraError
from repro_core.optional import has_module
from truth_crowd.classify import PAPER_MODEL_NAMES, paper_models, predict_expert_label
from truth_crowd.simulate import simulate_crowd

needs_sklearn = pytest.mark.skipif(not has_module("sklearn"), reason="scikit-learn is the optional [classify] extra")


@pytest.fixture(scope="module")
def sim():
    return simulate_crowd(seed=0).data.real()


@needs_sklearn
def test_paper_models_are_the_released_settings() -> None:
    models = paper_models(random_state=3)
    assert tuple(models) == PAPER_MODEL_NAMES
    rf = models["random_forest"].get_params()
    assert (rf["n_estimators"], rf["criterion"], rf["max_features"], rf["bootstrap"], rf["random_state"]) == (
        100,
        "gini",
        "sqrt",
        True,
        3,
    )
    lr = models["logistic_regression"].get_params()
    assert (lr["C"], lr["solver"], lr["max_iter"]) == (1.0, "lbfgs", 100)
    assert lr.get("l1_ratio") in (0.0, None) and lr.get("penalty") in ("l2", "deprecated")
    ada = models["adaboost"].get_params()
    assert (ada["n_estimators"], ada["learning_rate"], ada.get("algorithm", "SAMME")) == (50, 1.0, "SAMME")
    assert models["naive_bayes"].get_params()["var_smoothing"] == 1e-9
    svm = models["svm"].get_params()
    assert (svm["C"], svm["kernel"], svm["gamma"]) == (1.0, "rbf", "scale")


@needs_sklearn
def test_dimensions_predict_the_simulated_expert_label(sim) -> None:
    result = predict_expert_label(sim, models=["logistic_regression", "naive_bayes", "svm"], seeds=(0, 1))
    summary = result.summary.set_index("model")
    assert summary.loc["majority", "accuracy"] == pytest.approx(0.5)  # PolitiFact 012|345: 60 vs 60
    # The simulator ties correctness (and so the dimensions) to the truth: every model beats the baseline clearly.
    assert (summary.drop(index="majority")["accuracy"] > 0.75).all()
    assert set(result.folds["seed"]) == {0, 1} and (summary["n_folds"] == 10).all()
    assert result.protocol["n_rows"] == 120 and result.protocol["class_counts"] == {0: 60, 1: 60}
    again = predict_expert_label(sim, models=["logistic_regression", "naive_bayes", "svm"], seeds=(0, 1))
    assert again.folds.equals(result.folds)


@needs_sklearn
def test_protocol_parameters(sim) -> None:
    # Judgment rows: grouped folds keep each statement's judgments on one side.
    result = predict_expert_label(
        sim, unit="judgment", target="levels", features=["correctness"], models=["naive_bayes"], n_splits=3
    )
    assert result.protocol["n_rows"] == 1200 and set(result.protocol["class_counts"]) == set(range(6))
    assert result.folds.groupby("model")["n_test"].sum().to_dict() == {"majority": 1200, "naive_bayes": 1200}
    abc = predict_expert_label(sim, dataset="abc", target="levels", models=["naive_bayes"], n_splits=3)
    assert abc.protocol["class_counts"] == {0: 20, 1: 20, 2: 20}
    merged = predict_expert_label(sim, target="01|23|45", models=["naive_bayes"])
    assert merged.protocol["class_counts"] == {0: 40, 1: 40, 2: 40}
    both = predict_expert_label(sim, dataset="all", models=["naive_bayes"])
    assert both.protocol["n_rows"] == 180
    from sklearn.tree import DecisionTreeClassifier

    custom = predict_expert_label(sim, models={"tree": DecisionTreeClassifier(max_depth=2, random_state=0)})
    assert set(custom.summary["model"]) == {"majority", "tree"}
    for kwargs, match in (
        ({"target": "six"}, "target"),
        ({"dataset": "all", "target": "levels"}, "binary"),
        ({"dataset": "abc", "target": "01|23|45"}, "PolitiFact"),
        ({"features": ["nope"]}, "features"),
        ({"models": ["xgboost"]}, "unknown model"),
        ({"n_splits": 1}, "n_splits"),
        ({"n_splits": 70}, "n_splits"),
    ):
        with pytest.raises(ConfigError, match=match):
            predict_expert_label(sim, **kwargs)


def test_missing_scikit_learn_names_the_extra(sim, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "sklearn" or m.startswith("sklearn.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "sklearn", None)  # makes `import sklearn` raise ImportError
    with pytest.raises(MissingExtraError, match=r"truth-crowd\[classify\]"):
        predict_expert_label(sim)
    with pytest.raises(ImportError):
        paper_models()
