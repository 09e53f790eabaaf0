"""Crowdsourced truthfulness judgments on seven dimensions: loading, quality control, aggregation and agreement
(arXiv 2108.01222, Soprano et al., IP&M 2021).

Main entry points: `load_ipm2021` / `load_sigir2020_crowd` / `load_csv` / `load_parquet` / `load_table` (a
`CrowdData` of judgments, statements, workers and the answers' `Scale`; paths or DataFrames), `fetch_released_data`
(`truth-crowd data fetch`) and `find_data_file`,
`simulate_crowd` / `simulate_answers` (seeded data with known truth), `run_qc` (the paper's quality checks),
`krippendorff_alpha` (and `alpha_by_item`; long tables through `answers_value_counts`), Fleiss', Randolph's and
Cohen's kappa, the Shrout & Fleiss ICCs (`icc_from_answers`; `truth_crowd.icc.icc` for a complete table: the
function is not re-exported, as it would hide the `truth_crowd.icc` module), `phi_agreement` (Metropolis posterior
or MLE; `phi_by_item`), `mean_aggregate`, `median_aggregate`, `majority_vote`, `DawidSkene` (with gold: `true_labels`,
`initial_error`), `GoldMajorityVote`, `OneCoinDawidSkene`, `GLAD`, `MACE`, `MMSR`, `KOS`, `Wawa`, `ZeroBasedSkill`,
the worker metrics (`accuracy_on_aggregates`, `consistency`, `uncertainty`), `drop_duplicate_answers`,
the analyses (`external_agreement`, `dimension_correlations`, `dimension_pca`, `dimension_factors`,
`learning_curve`, `worker_background`, `predict_expert_label` with the `[classify]` extra), `compare_aggregators` /
`compare_with_experts` and `write_report`.
"""

from truth_crowd.__about__ import __version__
from truth_crowd.aggregation import (
    DawidSkene,
    GoldMajorityVote,
    drop_duplicate_answers,
    majority_vote,
    mean_aggregate,
    median_aggregate,
)
from truth_crowd.agreement import (
    alpha_by_item,
    answers_value_counts,
    cohen_kappa,
    cohen_kappa_ci,
    fleiss_kappa,
    fleiss_kappa_ci,
    krippendorff_alpha,
    krippendorff_alpha_ci,
    value_counts_matrix,
)
from truth_crowd.analyses import (
    correlation_matrix,
    crowd_expert_agreement,
    dimension_correlations,
    dimension_factors,
    dimension_pca,
    external_agreement,
    learning_curve,
    worker_background,
)
from truth_crowd.classify import paper_models, predict_expert_label
from truth_crowd.comparison import compare_aggregators, compare_with_experts
from truth_crowd.describe import design_counts
from truth_crowd.icc import ICC_FORMS, IccResult, icc_from_answers
from truth_crowd.inference import GLAD, KOS, MACE, MMSR, OneCoinDawidSkene, Wawa, ZeroBasedSkill
from truth_crowd.io import (
    CrowdData,
    load_csv,
    load_ipm2021,
    load_parquet,
    load_sigir2020,
    load_sigir2020_crowd,
    load_table,
)
from truth_crowd.phi import phi_agreement, phi_by_item, phi_posterior
from truth_crowd.qc import run_qc
from truth_crowd.released_data import HOW_TO_GET_DATA, data_dir, fetch_released_data, find_data_file
from truth_crowd.report import write_report
from truth_crowd.schema import (
    DIMENSIONS,
    ITEMS,
    LIKERT5,
    NAMED_SCALES,
    Scale,
    normalise_magnitudes,
    to_crowdkit,
    to_long,
    to_reliability_matrix,
)
from truth_crowd.simulate import simulate_answers, simulate_crowd
from truth_crowd.worker_metrics import accuracy_on_aggregates, consistency, uncertainty

__all__ = [
    "DIMENSIONS",
    "GLAD",
    "HOW_TO_GET_DATA",
    "ICC_FORMS",
    "ITEMS",
    "KOS",
    "LIKERT5",
    "MACE",
    "MMSR",
    "NAMED_SCALES",
    "PAPER",
    "CrowdData",
    "DawidSkene",
    "GoldMajorityVote",
    "IccResult",
    "OneCoinDawidSkene",
    "Scale",
    "Wawa",
    "ZeroBasedSkill",
    "__version__",
    "accuracy_on_aggregates",
    "alpha_by_item",
    "answers_value_counts",
    "cohen_kappa",
    "cohen_kappa_ci",
    "compare_aggregators",
    "compare_with_experts",
    "consistency",
    "correlation_matrix",
    "crowd_expert_agreement",
    "data_dir",
    "design_counts",
    "dimension_correlations",
    "dimension_factors",
    "dimension_pca",
    "drop_duplicate_answers",
    "external_agreement",
    "fetch_released_data",
    "find_data_file",
    "fleiss_kappa",
    "fleiss_kappa_ci",
    "icc_from_answers",
    "krippendorff_alpha",
    "krippendorff_alpha_ci",
    "learning_curve",
    "load_csv",
    "load_ipm2021",
    "load_parquet",
    "load_sigir2020",
    "load_sigir2020_crowd",
    "load_table",
    "majority_vote",
    "mean_aggregate",
    "median_aggregate",
    "normalise_magnitudes",
    "paper_models",
    "phi_agreement",
    "phi_by_item",
    "phi_posterior",
    "predict_expert_label",
    "run_qc",
    "simulate_answers",
    "simulate_crowd",
    "to_crowdkit",
    "to_long",
    "to_reliability_matrix",
    "uncertainty",
    "value_counts_matrix",
    "worker_background",
    "write_report",
]

#: The paper this distribution implements.
PAPER = "arXiv:2108.01222"
