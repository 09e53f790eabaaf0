"""Crowdsourced truthfulness judgments on seven dimensions: loading, quality control, aggregation and agreement
(arXiv 2108.01222, Soprano et al., IP&M 2021).

Main entry points: `load_ipm2021` / `load_csv` / `load_parquet` / `load_table` (a `CrowdData` of judgments,
statements and workers),
`simulate_crowd` / `simulate_answers` (seeded data with known truth), `run_qc` (the paper's quality checks),
`krippendorff_alpha` (and `alpha_by_item`), `phi_agreement` (Metropolis posterior or MLE; `phi_by_item`),
`mean_aggregate`,
`median_aggregate`, `majority_vote`, `DawidSkene`, `OneCoinDawidSkene`, `GLAD`, `MACE`, `Wawa`, `ZeroBasedSkill`,
the analyses (`external_agreement`, `dimension_correlations`, `dimension_pca`, `dimension_factors`,
`learning_curve`, `worker_background`, `predict_expert_label` with the `[classify]` extra), `compare_aggregators` /
`compare_with_experts` and `write_report`.
"""

from truth_crowd.__about__ import __version__
from truth_crowd.aggregation import DawidSkene, majority_vote, mean_aggregate, median_aggregate
from truth_crowd.agreement import alpha_by_item, cohen_kappa, fleiss_kappa, krippendorff_alpha, krippendorff_alpha_ci
from truth_crowd.analyses import (
    correlation_matrix,
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
from truth_crowd.inference import GLAD, MACE, OneCoinDawidSkene, Wawa, ZeroBasedSkill
from truth_crowd.io import CrowdData, load_csv, load_ipm2021, load_parquet, load_sigir2020, load_table
from truth_crowd.phi import phi_agreement, phi_by_item, phi_posterior
from truth_crowd.qc import run_qc
from truth_crowd.report import write_report
from truth_crowd.schema import DIMENSIONS, ITEMS, LIKERT5, Scale, to_crowdkit, to_long, to_reliability_matrix
from truth_crowd.simulate import simulate_answers, simulate_crowd

__all__ = [
    "DIMENSIONS",
    "GLAD",
    "ITEMS",
    "LIKERT5",
    "MACE",
    "PAPER",
    "CrowdData",
    "DawidSkene",
    "OneCoinDawidSkene",
    "Scale",
    "Wawa",
    "ZeroBasedSkill",
    "__version__",
    "alpha_by_item",
    "cohen_kappa",
    "compare_aggregators",
    "compare_with_experts",
    "correlation_matrix",
    "design_counts",
    "dimension_correlations",
    "dimension_factors",
    "dimension_pca",
    "external_agreement",
    "fleiss_kappa",
    "krippendorff_alpha",
    "krippendorff_alpha_ci",
    "learning_curve",
    "load_csv",
    "load_ipm2021",
    "load_parquet",
    "load_sigir2020",
    "load_table",
    "majority_vote",
    "mean_aggregate",
    "median_aggregate",
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
    "worker_background",
    "write_report",
]

#: The paper this distribution implements.
PAPER = "arXiv:2108.01222"
