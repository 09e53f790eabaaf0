"""`truth-crowd report`: every analysis of this package on one run, as Markdown + CSV tables + PNG figures.

Deterministic for a seed (the sampler, bootstraps and CV folds are seeded), offline, and about 10 s of CPU (10-30 s
wall on a busy 2-core machine) on the released IPM2021 file.
Figures use `repro_core.report.new_figure` / `save_figure` (matplotlib on an Agg canvas, no pyplot).
Every analysis runs before anything is written, so a failure leaves no partial report; each stage advances a
`repro_core.progress` bar on stderr (plain lines where stderr is not a terminal).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from repro_core.checkpoint import atomic_write_text
from repro_core.errors import InputError
from repro_core.optional import has_module
from repro_core.progress import progress
from repro_core.report import new_figure, save_figure
from truth_crowd.agreement import alpha_by_item
from truth_crowd.analyses import (
    correlation_matrix,
    crowd_expert_agreement,
    dimension_correlations,
    dimension_factors,
    dimension_pca,
    evidence_sources,
    external_agreement,
    learning_curve,
    require_complete_rows,
    worker_background,
)
from truth_crowd.comparison import compare_with_experts
from truth_crowd.describe import design_counts
from truth_crowd.io import CrowdData
from truth_crowd.phi import phi_by_item
from truth_crowd.schema import DIMENSIONS

__all__ = ["check_report_input", "markdown_frame", "write_report"]

logger = logging.getLogger(__name__)


def markdown_frame(frame: pd.DataFrame, *, digits: int = 4) -> str:
    """A GitHub Markdown table of a DataFrame (floats rounded to `digits`)."""

    def cell(value: Any) -> str:
        if isinstance(value, (float, np.floating)):
            return (
                ""
                if np.isnan(value)
                else f"{value:.{digits}g}"
                if abs(value) < 1e-3 and value != 0
                else f"{value:.{digits}f}"
            )
        return str(value).replace("|", "\\|")

    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def _figure_levels(data: CrowdData, out: Path) -> Path:
    scores = data.judgments.groupby("statement_id")["overall_truthfulness"].mean()
    table = data.statements[["dataset", "gt_value"]].join(scores.rename("score"), how="inner").dropna()
    figure = new_figure(9.0, 3.6)
    for k, dataset in enumerate(("politifact", "abc")):
        axes = figure.add_subplot(1, 2, k + 1)
        part = table[table["dataset"] == dataset]
        levels = sorted(part["gt_value"].astype(int).unique())
        axes.boxplot([part.loc[part["gt_value"] == lv, "score"].to_numpy() for lv in levels])
        axes.set_xticks(range(1, len(levels) + 1), [str(lv) for lv in levels])  # works on matplotlib 3.7+
        axes.set_title(f"{dataset}: mean OT per statement")
        axes.set_xlabel("expert level")
        axes.set_ylabel(f"crowd mean ({data.scale.low:g}..{data.scale.high:g})")
    return save_figure(figure, out / "levels.png")


def _figure_heatmap(matrix: pd.DataFrame, out: Path) -> Path:
    figure = new_figure(6.5, 5.5)
    axes = figure.add_subplot()
    image = axes.imshow(matrix.to_numpy(), vmin=-1, vmax=1, cmap="RdBu_r")
    short = [
        c.replace("overall_truthfulness", "OT").replace("speaker_trustworthiness", "speaker")[:13]
        for c in matrix.columns
    ]
    axes.set_xticks(range(len(short)), short, rotation=60, ha="right")
    axes.set_yticks(range(len(short)), short)
    for i in range(len(short)):
        for j in range(len(short)):
            axes.text(j, i, f"{matrix.iat[i, j]:.2f}", ha="center", va="center", fontsize=7)
    figure.colorbar(image, ax=axes, shrink=0.8)
    axes.set_title("Pearson correlation of statement means")
    return save_figure(figure, out / "correlations.png")


def _figure_agreement(alpha: pd.DataFrame, phi: pd.DataFrame, out: Path) -> Path:
    a = alpha[(alpha["group"] == "ALL") & (alpha["level"] == "interval")].set_index("item")["alpha"]
    p = phi[phi["group"] == "ALL"].set_index("item")["phi"].reindex(a.index)
    figure = new_figure(8.0, 3.8)
    axes = figure.add_subplot()
    x = np.arange(len(a))
    axes.bar(x - 0.2, a.to_numpy(), 0.4, label="Krippendorff's alpha (interval)")
    axes.bar(x + 0.2, p.to_numpy(), 0.4, label="Phi (posterior mean)")
    axes.set_xticks(x, [i[:12] for i in a.index], rotation=45, ha="right")
    axes.axhline(0, color="black", linewidth=0.5)
    axes.legend()
    axes.set_title("Internal agreement per item (all real statements)")
    return save_figure(figure, out / "agreement.png")


def _figure_time(per_position: pd.DataFrame, out: Path) -> Path:
    figure = new_figure(6.5, 3.8)
    axes = figure.add_subplot()
    for block, part in per_position.groupby("block"):
        axes.plot(part["position"], part["mean_time"], marker="o", label=f"ABC block {block}")
    axes.set_xlabel("position in the HIT")
    axes.set_ylabel("mean time (s)")
    axes.legend()
    axes.set_title("Time per statement by position")
    return save_figure(figure, out / "time_by_position.png")


def _figure_crt(quality: pd.DataFrame, out: Path) -> Path:
    figure = new_figure(5.5, 3.8)
    axes = figure.add_subplot()
    scores = sorted(quality["crt_score"].dropna().unique())
    groups = [quality.loc[quality["crt_score"] == s, "mae"].to_numpy() for s in scores]
    axes.boxplot(groups)
    axes.set_xticks(range(1, len(scores) + 1), [f"{int(s)}\n(n={len(g)})" for s, g in zip(scores, groups, strict=True)])
    axes.set_xlabel("CRT score (correct answers of 3)")
    axes.set_ylabel("worker MAE of OT vs experts")
    axes.set_title("Judgment error by cognitive reflection")
    return save_figure(figure, out / "crt_error.png")


def check_report_input(data: CrowdData) -> None:
    """Refuse data the report cannot use, before any work: it needs overall truthfulness on a bounded numeric
    scale, the experts' labels (IPM2021, SIGIR 2020 or simulated data), statements judged by two or more workers
    (agreement) and, when the data has the seven dimensions, more complete statements than dimensions (PCA, factor
    analysis). Data without the dimensions (a SIGIR 2020 file) gets the report without the dimension sections."""
    where = {"path": data.source, "line": 1 if data.source else None}
    if "overall_truthfulness" not in data.judgments.columns:
        raise InputError(
            "the report needs the item 'overall_truthfulness', which the data lacks",
            field="overall_truthfulness",
            **where,
        )
    if data.scale.magnitude_estimation or data.scale.nominal:
        raise InputError(f"the report needs a bounded numeric scale, not {data.scale.describe()}", **where)
    if "gt_value" not in data.statements.columns or "gt_norm" not in data.statements.columns:
        raise InputError(
            "the report compares the crowd with the experts, but the data has no expert labels: use --format "
            "ipm2021 (or --simulate)",
            field="gt_value",
            **where,
        )
    judgments = data.judgments[data.judgments["dataset"].isin(["politifact", "abc"])]
    if judgments.empty:
        raise InputError("the report needs real statements (dataset politifact or abc); the data has none", **where)
    per_statement = judgments.groupby("statement_id", observed=True)["worker_id"].nunique()
    if not (per_statement >= 2).any():
        raise InputError(
            f"the report needs statements judged by at least 2 workers; the data has "
            f"{judgments['worker_id'].nunique()} worker(s) and no statement judged twice",
            path=data.source,
            field="worker_id",
        )
    if _has_dimensions(data):
        require_complete_rows(judgments, DIMENSIONS, path=data.source)


def _has_dimensions(data: CrowdData) -> bool:
    return all(d in data.judgments.columns for d in DIMENSIONS)


def _dimension_section(
    components: pd.DataFrame, components_j: pd.DataFrame, factors: pd.DataFrame, factor_loadings: pd.DataFrame
) -> list[str]:
    """The report's dimension-structure section: correlations, PCA at statement and judgment level, factors."""
    return [
        "## Dimension structure",
        "",
        "Pearson correlations of statement means (all pairs in `correlations_statement.csv`; judgment level in"
        " `correlations_judgment.csv`):",
        "",
        "![correlations](correlations.png)",
        "",
        "PCA of the seven dimensions (statement means, standardised):",
        "",
        markdown_frame(components),
        "",
        "PCA of the seven dimensions (individual judgments, standardised; loadings in `pca_judgment_loadings.csv`):",
        "",
        markdown_frame(components_j),
        "",
        "Factor analysis of the seven dimensions (statement means; maximum likelihood, 2 factors, varimax):",
        "",
        markdown_frame(factor_loadings.reset_index(names="item")),
        "",
        markdown_frame(factors),
        "",
    ]


def write_report(
    data: CrowdData, out: str | Path, *, n_resamples: int = 0, seed: int = 0, phi_samples: int = 1000
) -> dict[str, Any]:
    """Run the analyses on `data` and write `report.md`, one CSV per table and the PNG figures under `out`.

    Φ is the Metropolis posterior (mean and HPD; `phi_samples` burn-in and kept draws per chain); `n_resamples > 0`
    adds the MLE Φ with an item bootstrap.
    Returns the tables as records (the CLI's `--json`).
    """
    check_report_input(data)
    out = Path(out)
    real = data.real()
    items = list(real.items)
    tables: dict[str, pd.DataFrame] = {}
    has_time = "time_elapsed_s" in data.judgments.columns and data.judgments["time_elapsed_s"].notna().any()
    has_experts = "gt_value" in real.statements.columns and (real.statements["dataset"] == "politifact").any()
    has_dims = _has_dimensions(data)
    run_classify = has_experts and has_dims and has_module("sklearn")
    scale = data.scale
    limits = (float(scale.low), float(scale.high))
    stages = ["alpha", "phi", *(["phi_mle"] if n_resamples > 0 else []), "crowd vs experts", "dimensions"]
    stages += ["background", "aggregators", *(["classify"] if run_classify else [])]
    stages += [*(["learning"] if has_time else []), "figures", "writing"]
    with progress(total=len(stages), desc="report", unit="stage") as bar:
        started: list[str] = []

        def stage(name: str) -> None:
            """Count the previous stage as done and show the one now starting."""
            if started:
                bar.update(1)
            started.append(name)
            bar.set_postfix_str(name, refresh=False)
            logger.info("report: %s", name)

        stage("alpha")
        counts = design_counts(data)
        alpha = alpha_by_item(
            real.judgments, items, levels=("interval", "ordinal", "nominal"), value_domain=scale.domain
        )
        stage("phi")
        phi = phi_by_item(
            real.judgments, items, limits=limits, n_samples=phi_samples, n_burn=phi_samples, seed=seed
        )  # posterior mean, HPD
        tables["alpha"], tables["phi"] = alpha, phi
        if n_resamples > 0:
            stage("phi_mle")
            tables["phi_mle"] = phi_by_item(
                real.judgments, items, limits=limits, method="mle", n_resamples=n_resamples, seed=seed
            )
        stage("crowd vs experts")
        ext = external_agreement(real)
        for name, table in ext.tables().items():
            tables[f"external_{name}"] = table
        merged = external_agreement(real, merge="012|345")
        tables["external_merged_adjacent"] = merged.adjacent
        crowd_experts = crowd_expert_agreement(real)
        tables["crowd_expert_agreement"] = crowd_experts
        stage("dimensions")
        if has_dims:
            corr_j = dimension_correlations(real.judgments, items, level="judgment")
            corr_s = dimension_correlations(real.judgments, items, level="statement")
            tables["correlations_judgment"], tables["correlations_statement"] = corr_j, corr_s
            components, loadings = dimension_pca(real.judgments)
            tables["pca"], tables["pca_loadings"] = components, loadings.reset_index(names="item")
            components_j, loadings_j = dimension_pca(real.judgments, level="judgment")
            tables["pca_judgment"] = components_j
            tables["pca_judgment_loadings"] = loadings_j.reset_index(names="item")
            factors, factor_loadings = dimension_factors(real.judgments)
            tables["factors"], tables["factor_loadings"] = factors, factor_loadings.reset_index(names="item")
        sources = evidence_sources(real.judgments) if "evidence_url" in real.judgments.columns else None
        if sources is not None:
            tables["evidence_sources"] = sources
        stage("background")
        background = None
        if "crt_score" in real.workers.columns and "gt_norm" in real.statements.columns:
            background = worker_background(real)
            tables["background_tests"], tables["background_groups"] = background.tests, background.groups
        stage("aggregators")
        aggregators = compare_with_experts(real, seed=seed)
        tables["aggregators"] = aggregators
        classify = None
        if run_classify:
            stage("classify")
            from truth_crowd.classify import predict_expert_label

            classify = predict_expert_label(real, seeds=(seed,))
            tables["classify_summary"], tables["classify_folds"] = classify.summary, classify.folds
        if has_time:
            stage("learning")
            curve = learning_curve(data)
            for name, table in curve.tables().items():
                tables[f"learning_{name}"] = table
        stage("figures")
        out.mkdir(parents=True, exist_ok=True)
        figures = [_figure_levels(real, out), _figure_agreement(alpha, phi, out)]
        if has_dims:
            figures.insert(1, _figure_heatmap(correlation_matrix(corr_s), out))
        if background is not None:
            figures.append(_figure_crt(background.quality, out))
        if has_time:
            figures.append(_figure_time(curve.per_position[curve.per_position["block"] != "all"], out))
        stage("writing")
        for name, table in tables.items():
            atomic_write_text(out / f"{name}.csv", table.to_csv(index=False))
        bar.update(1)

    md = [
        f"# truth-crowd report: {data.source or 'simulated data'}",
        "",
        "Generated by `truth-crowd report`; every number is computed from the data (spec §6).",
        "",
        "## Design counts",
        "",
        markdown_frame(pd.DataFrame({"quantity": list(counts), "value": [str(v) for v in counts.values()]})),
        "",
        "## Internal agreement",
        "",
        f"Answers on {scale.describe()}. Krippendorff's alpha (interval, ordinal, nominal) and Φ (Checco et al.'s"
        " Beta model by Metropolis MCMC: Φ at the"
        " posterior mean of τ with the 95% HPD interval, as the reference reports; `phi_mle` is the maximum-likelihood"
        " Φ" + (f", with a {n_resamples}-resample item bootstrap in `phi_mle.csv`" if n_resamples > 0 else "") + ").",
        "",
        markdown_frame(
            alpha.pivot_table(index="item", columns=["level", "group"], values="alpha", sort=False)
            .reset_index()
            .set_axis(
                [
                    "item",
                    *[
                        f"{a} {b}"
                        for a, b in alpha.pivot_table(
                            index="item", columns=["level", "group"], values="alpha", sort=False
                        ).columns
                    ],
                ],
                axis=1,
            )
        ),
        "",
        markdown_frame(phi[["item", "group", "phi", "low", "high", "tau", "phi_mle", "rhat"]]),
        "",
        "![agreement](agreement.png)",
        "",
        "## Crowd against experts (mean-aggregated overall truthfulness)",
        "",
        markdown_frame(ext.levels),
        "",
        "Adjacent levels, two-sided Mann-Whitney U, Bonferroni within dataset:",
        "",
        markdown_frame(ext.adjacent),
        "",
        markdown_frame(ext.kruskal),
        "",
        markdown_frame(ext.correlations),
        "",
        markdown_frame(ext.auc),
        "",
        "PolitiFact merged `012|345`:",
        "",
        markdown_frame(merged.adjacent),
        "",
        "Crowd and experts as two coders: the mean of overall truthfulness per statement mapped linearly onto the"
        " expert's k levels and rounded; Krippendorff's alpha (interval, ordinal; `unrounded`: the mapped mean) and"
        " Cohen's kappa weighted linearly and quadratically over the k levels; `exact`: share of equal levels:",
        "",
        markdown_frame(crowd_experts),
        "",
        "![levels](levels.png)",
        "",
    ]
    if has_dims:
        md += _dimension_section(components, components_j, factors, factor_loadings)
    else:
        md += ["## Dimension structure", "", "Not computed: the data has no dimension items (one judgment scale).", ""]
    if sources is not None and len(sources):
        md += [
            "## Evidence sources",
            "",
            f"Domains of the evidence URLs ({int(sources['n'].sum())} URLs, {len(sources)} domains; top 15, all in"
            " `evidence_sources.csv`; `blocked`: the experts' own sites):",
            "",
            markdown_frame(sources.head(15)),
            "",
        ]
    if aggregators is not None:
        md += [
            "## Aggregators against the experts",
            "",
            "Every aggregator of overall truthfulness on the same answers (`truth_crowd.comparison`); the categorical"
            " models treat the 5-point answers as nominal labels; MAE/RMSE against the expert level normalised to"
            " −2..+2, rank correlations with it (majority-vote ties broken at random, seeded):",
            "",
            markdown_frame(aggregators.drop(columns="accuracy")),
            "",
        ]
    if background is not None:
        md += [
            "## Worker background",
            "",
            "Per worker, the mean absolute error of overall truthfulness against the normalised expert level (rows"
            " where the worker saw another statement left out); Kruskal-Wallis across the answers of each"
            " questionnaire item (Bonferroni over the items) and Spearman ρ for ordered codes. Groups per answer in"
            " `background_groups.csv`.",
            "",
            markdown_frame(background.tests),
            "",
            "![CRT and error](crt_error.png)",
            "",
        ]
    md += ["## Predicting the expert label from the dimensions", ""]
    if classify is not None:
        md += [
            "Our protocol, not the paper's (spec 6 item 11): statement means of the seven dimensions, PolitiFact"
            " `012|345`, 5-fold stratified CV; the released classifier settings adapted to the installed"
            " scikit-learn (`truth_crowd.classify`); `majority` is the majority-class baseline.",
            "",
            markdown_frame(classify.summary),
            "",
        ]
    else:
        md += ["Not computed: needs scikit-learn (`pip install 'truth-crowd[classify]'`) and PolitiFact labels.", ""]
    if has_time:
        md += [
            "## Learning effect",
            "",
            markdown_frame(curve.trends),
            "",
            "MixedLM `time ~ position + C(block) + (1 | worker)`:",
            "",
            markdown_frame(curve.mixed),
            "",
            markdown_frame(curve.per_position[curve.per_position["block"] == "all"]),
            "",
            "![time by position](time_by_position.png)",
            "",
        ]
    else:
        md += ["## Learning effect", "", "Not computed: the data has no times (16-column file).", ""]
    atomic_write_text(out / "report.md", "\n".join(md))
    logger.info("report written to %s (%d tables, %d figures)", out, len(tables), len(figures))
    return {
        "counts": counts,
        "out": str(out),
        "report": str(out / "report.md"),
        "figures": [str(f) for f in figures],
        "tables": {k: v.astype(object).where(v.notna(), None).to_dict(orient="records") for k, v in tables.items()},
    }
