"""The `truth-crowd` command line: validate, qc, agreement, aggregate, analyze, report and the quick reproduction.

Every subcommand prints its results on stdout (a human table, or a JSON-able payload with `--json`; tables as lists
of records); logs and progress go to stderr. Options, files and the data's fitness for the command are checked
before any work starts, so a bad input is one line `truth-crowd: error: ...` and exit 2, with nothing written.
Nothing here computes on an accelerator (numpy, pandas, scipy), so no command takes `--device`."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from repro_core.checkpoint import atomic_write_text
from repro_core.cli import (
    Bounded,
    InputPath,
    add_command,
    add_seed_option,
    emit,
    make_parser,
    non_negative_int,
    positive_int,
    progress,
    run_main,
    value_errors_as_config_errors,
)
from repro_core.errors import ConfigError, InputError
from repro_core.optional import has_module
from repro_core.umbrella import add_reproduce_command, reproduce_package
from truth_crowd.__about__ import __version__
from truth_crowd.aggregation import TIE_BREAKS, DawidSkene, majority_vote, mean_aggregate, median_aggregate
from truth_crowd.agreement import LEVELS, alpha_by_item, fleiss_kappa, fleiss_kappa_ci, krippendorff_alpha_ci
from truth_crowd.analyses import (
    FACTOR_ROTATIONS,
    MERGES,
    dimension_correlations,
    dimension_factors,
    dimension_pca,
    evidence_sources,
    external_agreement,
    learning_curve,
    require_complete_rows,
    worker_background,
)
from truth_crowd.classify import PAPER_MODEL_NAMES
from truth_crowd.comparison import compare_with_experts
from truth_crowd.describe import design_counts
from truth_crowd.inference import GLAD, MACE, OneCoinDawidSkene, Wawa, ZeroBasedSkill
from truth_crowd.io import CrowdData, load_ipm2021, load_table
from truth_crowd.phi import PHI_METHODS, phi_by_item
from truth_crowd.qc import default_checks, run_qc
from truth_crowd.report import check_report_input, write_report
from truth_crowd.reproduction import quick
from truth_crowd.schema import DIMENSIONS, to_crowdkit
from truth_crowd.simulate import simulate_crowd

__all__ = ["ANALYSES", "build_parser", "main"]

logger = logging.getLogger(__name__)

#: The analyses of `truth-crowd analyze` (spec 2.5 B, D, F, G and 6).
ANALYSES: tuple[str, ...] = (
    "external",
    "correlations",
    "pca",
    "factors",
    "learning",
    "sources",
    "background",
    "aggregators",
    "phi",
    "classify",
)

_MODELS = {"onecoin": OneCoinDawidSkene, "glad": GLAD, "mace": MACE, "wawa": Wawa, "zbs": ZeroBasedSkill}

DESCRIPTION = """Crowdsourced truthfulness judgments on seven dimensions plus overall truthfulness (arXiv 2108.01222):
loading and validation, quality control, agreement and aggregation.

Data: --data FILE (the released IPM2021 multidimensional.csv by default; --format long/wide for any CSV or Parquet
file with --map OURS=THEIRS column renames), or --simulate for a seeded IPM-like simulated run.

commands:
  validate    load, validate and print the design counts and the loader's decisions
  qc          the paper's quality checks (completeness, gold LOW < HIGH, time >= 2 s, tries, URL domains)
  agreement   Krippendorff's alpha per item and dataset (nominal/ordinal/interval/ratio), bootstrap CIs;
              --phi adds Checco et al.'s Phi (Metropolis posterior, HPD), --kappa Fleiss' kappa
  aggregate   one value per statement: mean (the paper's), median, majority vote, Dawid-Skene, one-coin DS,
              GLAD, MACE, Wawa, zero-based skill; --compare scores every method against the experts
  analyze     the paper's analyses as tables: crowd vs experts, dimension correlations, PCA, factor
              analysis (varimax), learning effect, evidence-URL domains, worker background (demographics,
              CRT) vs error, every aggregator vs the experts, Phi, classifiers predicting the expert label
  report      every analysis as a Markdown report with CSV tables and PNG figures
  reproduce   this package's quick reproduction (also run by `repro reproduce`)

Every command prints a JSON payload with --json."""


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data")
    source = group.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--data",
        type=InputPath(suffixes=(".csv", ".parquet", ".pq")),
        help="CSV (or, with --format long/wide, Parquet) file to load",
    )
    source.add_argument("--simulate", action="store_true", help="use a seeded IPM-like simulated run")
    group.add_argument(
        "--format",
        choices=("ipm2021", "long", "wide"),
        default="ipm2021",
        help="layout of --data (default: ipm2021, the released 93- or 16-column file)",
    )
    group.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="OURS=THEIRS",
        help="column rename for --format long/wide, e.g. --map worker_id=WorkerId (repeatable)",
    )
    group.add_argument("--drop-broken", action="store_true", help="ipm2021: drop DEM_BARELYTRUE_doc7")
    add_seed_option(parser, help="seed of --simulate, samplers and bootstraps, 0 to 2**32 - 1 (default: 0)")


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser("truth-crowd", DESCRIPTION, __version__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    validate = add_command(
        commands,
        "validate",
        help="load, validate, print design counts",
        description="Load and validate a data file; print its design counts (spec 6) "
        "and every decision the loader took about the data.",
    )
    _add_data_options(validate)

    qc = add_command(
        commands,
        "qc",
        help="run the quality checks",
        description="Crowd_Frame's checks: completeness (every item and a URL), gold "
        "(LOW < HIGH on overall truthfulness), time (>= MIN seconds on every "
        "statement and questionnaire), tries, and blocked URL domains.",
    )
    _add_data_options(qc)
    qc.add_argument("--min-seconds", type=Bounded(float, low=0), default=2.0, help="time threshold, >= 0 (default: 2)")
    qc.add_argument("--max-tries", type=positive_int, default=10, help="allowed tries, >= 1 (default: 10)")

    agreement = add_command(
        commands,
        "agreement",
        help="Krippendorff's alpha per item",
        description="Krippendorff's alpha per item, per dataset and ALL, on the "
        "canonical filter (real statements only).",
    )
    _add_data_options(agreement)
    agreement.add_argument(
        "--levels",
        nargs="+",
        choices=LEVELS,
        default=["interval", "ordinal", "nominal"],
        help="levels of measurement (default: interval ordinal nominal)",
    )
    agreement.add_argument("--items", nargs="+", default=None, help="items (default: all)")
    agreement.add_argument(
        "--bootstrap",
        type=non_negative_int,
        default=0,
        metavar="N",
        help="add a 95%% unit-bootstrap interval with N >= 2 resamples (default: 0, none)",
    )
    agreement.add_argument(
        "--phi", action="store_true", help="add Phi per item and dataset (Metropolis posterior mean, 95%% HPD)"
    )
    agreement.add_argument(
        "--kappa", action="store_true", help="add Fleiss' kappa per item and dataset (--bootstrap: task-bootstrap CI)"
    )

    aggregate = add_command(
        commands,
        "aggregate",
        help="aggregate per statement",
        description="One value per statement for ITEM: mean (the paper's), median, "
        "majority vote (mv) or Dawid-Skene (ds), on the canonical filter.",
    )
    _add_data_options(aggregate)
    aggregate.add_argument("--item", default="overall_truthfulness", help="item (default: overall_truthfulness)")
    aggregate.add_argument(
        "--method",
        choices=("mean", "median", "mv", "ds", *_MODELS),
        default="mean",
        help="aggregation (default: mean)",
    )
    aggregate.add_argument("--tie-break", choices=TIE_BREAKS, default="lowest", help="mv ties (default: lowest)")
    aggregate.add_argument("--out", type=Path, default=None, help="also write the aggregates as CSV")
    aggregate.add_argument(
        "--compare",
        action="store_true",
        help="run every method and score it against the expert level per dataset (MAE, RMSE, Spearman, Kendall)",
    )

    analyze = add_command(
        commands,
        "analyze",
        help="the paper's analyses as tables",
        description="Run the paper's analyses on the canonical filter and print their tables: crowd vs "
        "experts (per-level summaries, adjacent Mann-Whitney with Bonferroni, Kruskal-Wallis, "
        "correlations, AUC), dimension correlations, PCA, factor analysis with varimax, the learning "
        "effect (MixedLM), evidence-URL domains, worker background (demographics and CRT score against "
        "each worker's error, Kruskal-Wallis and Spearman), every aggregator against the experts, Phi, and "
        "classifiers predicting the expert label "
        "(needs the [classify] extra).",
    )
    _add_data_options(analyze)
    analyze.add_argument(
        "--analyses",
        nargs="+",
        choices=ANALYSES,
        default=None,
        help="which analyses (default: all; classify only when scikit-learn is installed)",
    )
    analyze.add_argument("--item", default="overall_truthfulness", help="external: crowd item (default: OT)")
    analyze.add_argument("--aggregator", choices=("mean", "median"), default="mean", help="per-statement aggregate")
    analyze.add_argument("--merge", choices=sorted(MERGES), default=None, help="external: PolitiFact level merge")
    analyze.add_argument(
        "--method", choices=("pearson", "spearman", "kendall"), default="pearson", help="correlations: method"
    )
    analyze.add_argument(
        "--level", choices=("judgment", "statement"), default="statement", help="correlations/PCA/factors: rows"
    )
    analyze.add_argument(
        "--n-factors", type=positive_int, default=2, help="factors: number of factors, >= 1 (default: 2)"
    )
    analyze.add_argument(
        "--rotation",
        choices=(*FACTOR_ROTATIONS, "none"),
        default="varimax",
        help="factors: rotation (default: varimax)",
    )
    analyze.add_argument("--phi-method", choices=PHI_METHODS, default="mcmc", help="phi: estimator (default: mcmc)")
    analyze.add_argument(
        "--phi-samples",
        type=Bounded(int, low=2),
        default=1000,
        help="phi: burn-in and kept draws per chain, >= 2 (default: 1000)",
    )
    analyze.add_argument("--features", nargs="+", default=list(DIMENSIONS), help="classify: items (default: 7 dims)")
    analyze.add_argument(
        "--target", choices=("levels", "01|23|45", "binary"), default="binary", help="classify: target"
    )
    analyze.add_argument(
        "--dataset", choices=("politifact", "abc", "all"), default="politifact", help="classify: dataset"
    )
    analyze.add_argument("--unit", choices=("statement", "judgment"), default="statement", help="classify: rows")
    analyze.add_argument(
        "--folds", type=Bounded(int, low=2), default=5, help="classify: stratified folds, >= 2 (default: 5)"
    )
    analyze.add_argument(
        "--seeds",
        type=Bounded(int, low=0, high=2**32 - 1),
        nargs="+",
        default=[0],
        help="classify: CV/model seeds, 0 to 2**32 - 1 (default: 0)",
    )
    analyze.add_argument(
        "--models", nargs="+", choices=PAPER_MODEL_NAMES, default=None, help="classify: models (default: all five)"
    )

    report = add_command(
        commands,
        "report",
        help="Markdown report with tables and figures",
        description="Run every analysis (agreement alpha and Phi, crowd vs experts, dimension "
        "correlations and PCA, learning effect) and write report.md, one CSV per table and PNG "
        "figures under --out.",
    )
    _add_data_options(report)
    report.add_argument("--out", type=Path, default=Path("truth-crowd-report"), help="output folder")
    report.add_argument(
        "--bootstrap",
        type=non_negative_int,
        default=0,
        metavar="N",
        help="also the MLE Phi with an item bootstrap of N >= 2 resamples (default: 0, none; Phi is always reported"
        " as the Metropolis posterior mean with its 95%% HPD)",
    )

    report.add_argument(
        "--phi-samples",
        type=Bounded(int, low=2),
        default=1000,
        help="Phi: burn-in and kept draws per chain, >= 2 (default: 1000)",
    )

    add_reproduce_command(commands)
    return parser


def _mapping(pairs: Sequence[str]) -> dict[str, str]:
    mapping = {}
    for pair in pairs:
        ours, sep, theirs = pair.partition("=")
        if not sep or not ours or not theirs:
            raise ConfigError(f"--map: expected OURS=THEIRS, got {pair!r}")
        mapping[ours] = theirs
    return mapping


def _load(args: argparse.Namespace) -> CrowdData:
    if args.simulate:
        return simulate_crowd(seed=args.seed).data
    if args.format == "ipm2021":
        if args.map:
            raise ConfigError("--map applies to --format long or wide only")
        return load_ipm2021(args.data, drop_broken=args.drop_broken)
    return load_table(args.data, layout=args.format, columns=_mapping(args.map))


def _real(data: CrowdData) -> CrowdData:
    """The canonical filter when the data has real and gold statements; the data itself otherwise."""
    if data.judgments["dataset"].isin(["politifact", "abc"]).any():
        return data.real()
    return data


def _require_columns(data: CrowdData, columns: Sequence[str], command: str) -> None:
    """Refuse data without the judgment columns a command reads, before it starts (not a KeyError halfway)."""
    missing = [c for c in columns if c not in data.judgments.columns]
    if missing:
        raise InputError(
            f"{command} needs the column(s) {', '.join(map(repr, missing))}, which the data lacks "
            "(with --format long/wide, map them with --map OURS=THEIRS)",
            path=data.source,
            line=1 if data.source else None,
            field=missing[0],
        )


def _require_pairable(data: CrowdData, command: str) -> None:
    """Refuse data on which agreement is undefined: no statement judged by two or more workers (e.g. one worker)."""
    per_statement = data.judgments.groupby("statement_id", observed=True)["worker_id"].nunique()
    if not (per_statement >= 2).any():
        n_workers = data.judgments["worker_id"].nunique()
        raise InputError(
            f"{command} needs statements judged by at least 2 workers; the data has {n_workers} worker(s) and "
            "no statement judged twice, so agreement is undefined",
            path=data.source,
            field="worker_id",
        )


def _warn_undefined_alpha(table: pd.DataFrame) -> None:
    """Say which alphas are undefined (NaN: one value only, or no pairable unit), so no NaN passes silently."""
    undefined = table[table["alpha"].isna()]
    if len(undefined):
        logger.warning(
            "alpha is undefined (shown as NaN/null: no statement with 2+ values, or every value the same) for %s",
            ", ".join(f"{r.item} ({r.group}, {r.level})" for r in undefined.itertuples()),
        )


def _validate(args: argparse.Namespace) -> dict[str, Any]:
    data = _load(args)
    return {"source": data.source, "counts": design_counts(data), "decisions": data.decisions}


def _human_validate(result: dict[str, Any]) -> str:
    lines = [f"{result['source'] or 'simulated data'}: valid"]
    lines += [f"  {k}: {v}" for k, v in result["counts"].items()]
    lines += ["decisions:"] + [f"  - {d}" for d in result["decisions"]]
    return "\n".join(lines)


def _qc(args: argparse.Namespace) -> dict[str, Any]:
    data = _load(args)
    _require_columns(data, ["time_elapsed_s", "try_number", "evidence_url"], "qc")
    report = run_qc(data, default_checks(min_seconds=args.min_seconds, max_tries=args.max_tries))
    return {
        "summary": report.summary.to_dict(orient="records"),
        "failed_workers": report.failed_workers,
        "failures": report.failures.astype(object).where(report.failures.notna(), None).to_dict(orient="records"),
        "judgments_kept": int(report.judgment_mask.sum()),
        "judgments": int(report.judgment_mask.size),
    }


def _human_qc(result: dict[str, Any]) -> str:
    lines = [f"{'check':<14} {'level':<9} {'checked':>8} {'failed':>7} {'workers failed':>15}"]
    for r in result["summary"]:
        lines.append(
            f"{r['check']:<14} {r['level']:<9} {r['n_checked']:>8} {r['n_failed']:>7} {r['n_workers_failed']:>15}"
        )
    lines.append(
        f"workers failing any check: {len(result['failed_workers'])}; judgments kept "
        f"{result['judgments_kept']} of {result['judgments']}"
    )
    for f in result["failures"][:50]:
        where = f["worker_id"] + (f" / {f['statement_id']}" if f["statement_id"] else "")
        lines.append(f"  {f['check']}: {where}: {f['reason']}")
    if len(result["failures"]) > 50:
        lines.append(f"  ... {len(result['failures']) - 50} more (use --json)")
    return "\n".join(lines)


def _agreement(args: argparse.Namespace) -> dict[str, Any]:
    if args.bootstrap == 1:
        raise ConfigError(f"--bootstrap: needs 0 or at least 2 resamples, got {args.bootstrap}")
    data = _real(_load(args))
    items = args.items or list(data.items)
    unknown = [i for i in items if i not in data.items]
    if unknown:
        raise ConfigError(f"--items: unknown item(s) {unknown}; the data has {list(data.items)}")
    _require_pairable(data, "agreement")
    table = alpha_by_item(data.judgments, items, levels=args.levels)
    _warn_undefined_alpha(table)
    if args.bootstrap:
        lows, highs = [], []
        rows = progress(table.itertuples(), total=len(table), desc="bootstrap", unit="alpha")
        for row in rows:
            frame = data.judgments if row.group == "ALL" else data.judgments[data.judgments["dataset"] == row.group]
            matrix = frame.pivot(index="worker_id", columns="statement_id", values=row.item).astype(float)
            ci = krippendorff_alpha_ci(
                matrix.to_numpy(),
                level=row.level,
                value_domain=(-2, -1, 0, 1, 2),
                n_resamples=args.bootstrap,
                seed=args.seed,
            )
            lows.append(ci.low)
            highs.append(ci.high)
        table["low"], table["high"] = lows, highs
    result: dict[str, Any] = {"alpha": table.to_dict(orient="records"), "n_judgments": len(data.judgments)}
    if args.phi:
        result["phi"] = _records(phi_by_item(data.judgments, items, seed=args.seed))
    if args.kappa:
        result["kappa"] = _kappas(data, items, args.bootstrap, args.seed)
    return result


def _kappas(data: CrowdData, items: Sequence[str], n_resamples: int, seed: int) -> list[dict[str, Any]]:
    """Fleiss' kappa per item and dataset (+ ALL) on the statements with the modal number of ratings, with a
    task-bootstrap interval when `n_resamples` > 0."""
    groups = [(str(g), part) for g, part in data.judgments.groupby("dataset", observed=True)]
    rows = []
    for item in items:
        for name, part in [*groups, ("ALL", data.judgments)]:
            answers = to_crowdkit(part, item)
            row: dict[str, Any] = {"item": item, "group": name}
            if n_resamples:
                result = fleiss_kappa_ci(answers, n_resamples=n_resamples, seed=seed)
                row.update(fleiss_kappa=result.kappa, low=result.low, high=result.high, n_tasks=result.n_tasks)
            else:
                row["fleiss_kappa"] = fleiss_kappa(answers)
            row["n_raters"] = int(answers.groupby("task").size().mode().iloc[0])
            rows.append(row)
    return rows


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A table as JSON-able records (missing values as null)."""
    return frame.astype(object).where(frame.notna(), None).to_dict(orient="records")


def _human_agreement(result: dict[str, Any]) -> str:
    table = pd.DataFrame(result["alpha"])
    wide = table.pivot_table(index="item", columns=["level", "group"], values="alpha", sort=False)
    text = f"Krippendorff's alpha on {result['n_judgments']} judgments\n" + wide.round(4).to_string()
    if "phi" in result:
        phi = pd.DataFrame(result["phi"])[["item", "group", "phi", "low", "high", "phi_mle", "rhat"]]
        text += "\n\nPhi (posterior mean of tau, 95% HPD; phi_mle: maximum likelihood)\n" + phi.round(4).to_string()
    if "kappa" in result:
        text += "\n\nFleiss' kappa\n" + pd.DataFrame(result["kappa"]).round(4).to_string()
    return text


def _skip_reason(name: str, data: CrowdData, real: CrowdData) -> str | None:
    """Why analysis `name` cannot run on this data (a column it reads is absent), or None when it can."""
    has_experts = "gt_value" in real.statements.columns and "gt_norm" in real.statements.columns
    if name in ("external", "background", "aggregators", "classify") and not has_experts:
        return "the data has no expert labels"
    if name == "learning" and not (
        "time_elapsed_s" in data.judgments.columns and data.judgments["time_elapsed_s"].notna().any()
    ):
        return "the data has no times"
    if name == "sources" and "evidence_url" not in real.judgments.columns:
        return "the data has no evidence URLs"
    if name in ("pca", "factors") and len([d for d in DIMENSIONS if d in real.items]) < 3:
        return "the data has fewer than 3 of the seven dimensions"
    return None


def _analyze(args: argparse.Namespace) -> dict[str, Any]:
    chosen = list(args.analyses) if args.analyses else [a for a in ANALYSES if a != "classify"]
    if not args.analyses and has_module("sklearn"):
        chosen.append("classify")
    if "classify" in chosen:
        from truth_crowd.classify import _sklearn

        _sklearn()  # a missing [classify] extra is refused before any work
    data = _load(args)
    real = _real(data)
    items = list(real.items)
    dims = [d for d in DIMENSIONS if d in items]
    if args.item not in items:
        raise ConfigError(f"--item: unknown item {args.item!r}; the data has {items}")
    if "classify" in chosen:
        unknown = [f for f in args.features if f not in items]
        if unknown:
            raise ConfigError(f"--features: unknown item(s) {unknown}; the data has {items}")
    if "phi" in chosen:
        _require_pairable(real, "analyze phi")
    skipped = {name: reason for name in chosen if (reason := _skip_reason(name, data, real)) is not None}
    chosen = [name for name in chosen if name not in skipped]
    if "factors" in chosen and not args.n_factors < len(dims):
        raise ConfigError(f"--n-factors: must be below the number of dimensions ({len(dims)}), got {args.n_factors}")
    if "pca" in chosen or "factors" in chosen:
        require_complete_rows(real.judgments, dims, level=args.level, path=data.source)
    for name, reason in skipped.items():  # after every refusal, so that an error stays one line
        logger.warning("%s: skipped, %s", name, reason)
    tables: dict[str, pd.DataFrame] = {}
    protocol: dict[str, Any] = {}
    for name in progress(chosen, desc="analyze", unit="analysis"):
        if name == "external":
            ext = external_agreement(real, item=args.item, aggregator=args.aggregator, merge=args.merge)
            tables.update({f"external_{k}": v for k, v in ext.tables().items()})
        elif name == "correlations":
            tables["correlations"] = dimension_correlations(real.judgments, items, level=args.level, method=args.method)
        elif name == "pca":
            components, loadings = dimension_pca(real.judgments, dims, level=args.level)
            tables["pca"], tables["pca_loadings"] = components, loadings.reset_index(names="item")
        elif name == "factors":
            rotation = None if args.rotation == "none" else args.rotation
            with value_errors_as_config_errors("--n-factors/--rotation: "):
                factors, loadings = dimension_factors(
                    real.judgments, dims, n_factors=args.n_factors, level=args.level, rotation=rotation
                )
            tables["factors"], tables["factor_loadings"] = factors, loadings.reset_index(names="item")
        elif name == "learning":
            curve = learning_curve(data)
            tables.update({f"learning_{k}": v for k, v in curve.tables().items()})
        elif name == "sources":
            tables["evidence_sources"] = evidence_sources(real.judgments)
        elif name == "background":
            try:
                background = worker_background(real, item=args.item)
            except ValueError as exc:
                logger.warning("background: skipped, %s", exc)
            else:
                tables["background_tests"] = background.tests
                tables["background_groups"] = background.groups
        elif name == "aggregators":
            tables["aggregators"] = compare_with_experts(real, item=args.item, seed=args.seed)
        elif name == "phi":
            tables["phi"] = phi_by_item(
                real.judgments,
                items,
                method=args.phi_method,
                n_samples=args.phi_samples,
                n_burn=args.phi_samples,
                seed=args.seed,
            )
        elif name == "classify":
            from truth_crowd.classify import predict_expert_label

            result = predict_expert_label(
                real,
                features=args.features,
                dataset=args.dataset,
                target=args.target,
                unit=args.unit,
                aggregator=args.aggregator,
                models=args.models,
                n_splits=args.folds,
                seeds=args.seeds,
            )
            tables["classify_summary"], tables["classify_folds"] = result.summary, result.folds
            protocol = result.protocol
    payload: dict[str, Any] = {
        "source": data.source,
        "analyses": chosen,
        "tables": {k: _records(v) for k, v in tables.items()},
    }
    if protocol:
        payload["classify_protocol"] = protocol
    return payload


def _human_analyze(result: dict[str, Any]) -> str:
    lines = [f"analyses of {result['source'] or 'simulated data'}: {', '.join(result['analyses'])}"]
    for name, records in result["tables"].items():
        if name == "classify_folds":
            continue
        frame = pd.DataFrame(records)
        lines += ["", f"== {name} ==", frame.round(4).to_string(index=False) if len(frame) else "(empty)"]
    return "\n".join(lines)


def _aggregate(args: argparse.Namespace) -> dict[str, Any]:
    if args.out is not None and args.out.is_dir():
        raise ConfigError(f"--out: {args.out} is a folder; give a CSV file name")
    data = _real(_load(args))
    if args.item not in data.items:
        raise ConfigError(f"--item: unknown item {args.item!r}; the data has {list(data.items)}")
    if args.compare:
        if "gt_norm" not in data.statements.columns:
            raise ConfigError("--compare: the data has no expert labels (gt_norm) to compare with")
        table = compare_with_experts(data, item=args.item, tie_break=args.tie_break, seed=args.seed)
        return {"item": args.item, "method": "compare", "comparison": _records(table)}
    answers = to_crowdkit(data.judgments, args.item)
    if args.method == "mean":
        values = mean_aggregate(answers)
    elif args.method == "median":
        values = median_aggregate(answers)
    elif args.method == "mv":
        values = majority_vote(answers, tie_break=args.tie_break, seed=args.seed)
    elif args.method == "ds":
        values = DawidSkene().fit_predict(answers)
    else:
        values = _MODELS[args.method]().fit_predict(answers)
    frame = pd.DataFrame({"statement_id": values.index.astype(str), "value": values.to_numpy(dtype=float)})
    if "gt_value" in data.statements.columns:
        frame["gt_value"] = frame["statement_id"].map(data.statements["gt_value"]).astype("Float64")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.out, frame.to_csv(index=False))  # never a half-written CSV
    return {
        "item": args.item,
        "method": args.method,
        "n_statements": len(frame),
        "aggregates": frame.astype(object).where(frame.notna(), None).to_dict(orient="records"),
    }


def _human_aggregate(result: dict[str, Any]) -> str:
    if result["method"] == "compare":
        frame = pd.DataFrame(result["comparison"]).drop(columns="accuracy")
        return f"every aggregator of {result['item']} against the experts\n" + frame.round(4).to_string(index=False)
    lines = [f"{result['method']} of {result['item']} for {result['n_statements']} statements"]
    for r in result["aggregates"][:20]:
        lines.append(
            f"  {r['statement_id']:<28} {r['value']:>7.3f}"
            + (f"   expert {r['gt_value']:.0f}" if r.get("gt_value") is not None else "")
        )
    if result["n_statements"] > 20:
        lines.append(f"  ... {result['n_statements'] - 20} more (use --json or --out)")
    return "\n".join(lines)


def _report(args: argparse.Namespace) -> dict[str, Any]:
    if args.bootstrap == 1:
        raise ConfigError(f"--bootstrap: needs 0 or at least 2 resamples, got {args.bootstrap}")
    if args.out.exists() and not args.out.is_dir():
        raise ConfigError(f"--out: {args.out} is a file; give a folder")
    data = _load(args)
    check_report_input(data)
    return write_report(data, args.out, n_resamples=args.bootstrap, seed=args.seed, phi_samples=args.phi_samples)


def _human_report(result: dict[str, Any]) -> str:
    return f"report written to {result['report']} ({len(result['tables'])} tables, {len(result['figures'])} figures)"


_COMMANDS = {
    "report": (_report, _human_report),
    "validate": (_validate, _human_validate),
    "qc": (_qc, _human_qc),
    "agreement": (_agreement, _human_agreement),
    "aggregate": (_aggregate, _human_aggregate),
    "analyze": (_analyze, _human_analyze),
}


def _main(args: argparse.Namespace) -> int:
    if args.command == "reproduce":
        return reproduce_package("truth-crowd", quick, args)
    if args.command in _COMMANDS:
        run, human = _COMMANDS[args.command]
        emit(run(args), as_json=args.json, human=human)
        return 0
    raise AssertionError(f"unhandled command {args.command!r}")  # argparse rejects unknown commands first


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(_main, build_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
