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
from typing import Any, cast

import numpy as np
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
from truth_crowd import released_data
from truth_crowd.__about__ import __version__
from truth_crowd.aggregation import (
    TIE_BREAKS,
    DawidSkene,
    GoldMajorityVote,
    majority_vote,
    mean_aggregate,
    median_aggregate,
)
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
from truth_crowd.icc import icc_from_answers
from truth_crowd.inference import GLAD, KOS, MACE, MMSR, OneCoinDawidSkene, Wawa, ZeroBasedSkill
from truth_crowd.io import (
    DUPLICATE_UNIT_POLICIES,
    CrowdData,
    load_ipm2021,
    load_sigir2020_crowd,
    load_table,
    read_csv_records,
)
from truth_crowd.phi import PHI_METHODS, phi_by_item
from truth_crowd.qc import default_checks, run_qc
from truth_crowd.released_data import CITATION, DATA_DIR_ENV, RELEASE_COMMIT, RELEASE_URL, data_dir
from truth_crowd.report import check_report_input, write_report
from truth_crowd.reproduction import quick
from truth_crowd.schema import DIMENSIONS, LIKERT5, Scale, to_crowdkit
from truth_crowd.simulate import simulate_crowd
from truth_crowd.worker_metrics import accuracy_on_aggregates, consistency, uncertainty

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

_MODELS = {"onecoin": OneCoinDawidSkene, "glad": GLAD, "wawa": Wawa, "zbs": ZeroBasedSkill}

#: `aggregate --method` choices: the numeric aggregates, majority vote, the truth-inference models and the two
#: methods that learn from gold labels (`--gold FILE`).
AGGREGATE_METHODS: tuple[str, ...] = (
    "mean",
    "median",
    "mv",
    "ds",
    "onecoin",
    "glad",
    "mace",
    "mmsr",
    "kos",
    "wawa",
    "zbs",
    "gold-mv",
    "gold-ds",
)
_GOLD_METHODS = ("gold-mv", "gold-ds")

DESCRIPTION = """Crowdsourced truthfulness judgments on seven dimensions plus overall truthfulness (arXiv 2108.01222):
loading and validation, quality control, agreement and aggregation.

Data: --data FILE (the released IPM2021 multidimensional.csv by default; --format long/wide for any CSV or Parquet
file with --map OURS=THEIRS column renames), or --simulate for a seeded IPM-like simulated run.

commands:
  validate    load, validate and print the design counts and the loader's decisions
  qc          the paper's quality checks (completeness, gold LOW < HIGH, time >= 2 s, tries, URL domains)
  agreement   Krippendorff's alpha per item and dataset (nominal/ordinal/interval/ratio), bootstrap CIs;
              --phi adds Checco et al.'s Phi (Metropolis posterior, HPD), --kappa Fleiss' kappa,
              --randolph Randolph's kappa, --icc the one-way intraclass correlations ICC(1,1), ICC(1,k)
  aggregate   one value per statement: mean (the paper's), median, majority vote, Dawid-Skene, one-coin DS,
              GLAD, MACE, M-MSR, KOS (binary labels), Wawa, zero-based skill, and with gold labels (--gold)
              gold majority vote and gold-initialised Dawid-Skene; --worker-metrics adds each worker's
              accuracy on the aggregates and the answers' consistency and uncertainty; --compare scores every
              method against the experts
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
        choices=("ipm2021", "long", "wide", "sigir2020"),
        default="ipm2021",
        help="layout of --data (default: ipm2021, the released 93- or 16-column file; sigir2020: a SIGIR 2020 crowd "
        "file S3/S6/S100.csv, its scale from the column prefix)",
    )
    group.add_argument(
        "--scale",
        type=_scale_argument,
        default=None,
        metavar="SCALE",
        help="the answers' scale: likert5 (IPM default), s3, s6, s100, LOW:HIGH (integers, e.g. 0:100), LOW:HIGH:STEP, "
        "LOW:HIGH:continuous, magnitude (unbounded magnitude estimation), cat:A,B,... (nominal categories)",
    )
    group.add_argument(
        "--duplicate-units",
        choices=DUPLICATE_UNIT_POLICIES,
        default="first",
        help="sigir2020: a unit id in two HITs: keep the first HIT (default, logged), keep each HIT as a separate "
        "coder, or refuse",
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


def _scale_argument(text: str) -> Scale:
    """argparse type of --scale: `Scale.parse`, its ValueError as a usage error."""
    try:
        return Scale.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


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
        default=None,
        help="levels of measurement (default: interval ordinal nominal; nominal only on a nominal --scale, ratio "
        "and interval on magnitudes)",
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
    agreement.add_argument(
        "--randolph",
        action="store_true",
        help="add Randolph's free-marginal kappa per item and dataset (chance = 1 / the scale's number of values)",
    )
    agreement.add_argument(
        "--icc",
        action="store_true",
        help="add the one-way intraclass correlations ICC(1,1) and ICC(1,k) of Shrout & Fleiss per item and dataset "
        "(statements with the modal number of ratings; numeric scales only)",
    )

    aggregate = add_command(
        commands,
        "aggregate",
        help="aggregate per statement",
        description="One value per statement for ITEM on the canonical filter: mean (the paper's), median, "
        "majority vote (mv), Dawid-Skene (ds), one-coin DS, GLAD, MACE, M-MSR (mmsr), KOS (kos, binary labels), "
        "Wawa, zero-based skill (zbs); with gold labels (--gold FILE, columns statement_id,label), gold majority "
        "vote (gold-mv: votes weighted by each worker's accuracy on the gold statements) and Dawid-Skene with the "
        "gold statements' labels pinned (gold-ds).",
    )
    _add_data_options(aggregate)
    aggregate.add_argument("--item", default="overall_truthfulness", help="item (default: overall_truthfulness)")
    aggregate.add_argument("--method", choices=AGGREGATE_METHODS, default="mean", help="aggregation (default: mean)")
    aggregate.add_argument(
        "--tie-break",
        choices=TIE_BREAKS,
        default="lowest",
        help="mv ties (default: lowest); gold-mv takes lowest or highest",
    )
    aggregate.add_argument(
        "--gold",
        type=InputPath(suffixes=(".csv",)),
        default=None,
        metavar="FILE",
        help="gold-mv/gold-ds: CSV of known labels, columns statement_id,label (values on the item's scale); gold "
        "statements of the data (e.g. HIGH, LOW) named here take part in the fit",
    )
    aggregate.add_argument(
        "--missing-skill",
        type=Bounded(float, low=0, high=1),
        default=None,
        metavar="SKILL",
        help="gold-mv: skill in [0, 1] of a worker who answered no gold statement (default: refuse such workers)",
    )
    aggregate.add_argument(
        "--mmsr-vote",
        choices=("argmax", "normalised"),
        default="argmax",
        help="mmsr: argmax of the skill-weighted votes (default) or crowd-kit 1.4.2's normalised shares",
    )
    aggregate.add_argument(
        "--mace-method",
        choices=("vb", "em"),
        default="vb",
        help="mace: variational Bayes (default, the paper's) or EM training",
    )
    aggregate.add_argument(
        "--worker-metrics",
        action="store_true",
        help="add each worker's accuracy on the aggregates and the consistency and uncertainty of the answers "
        "(label methods only, not mean or median)",
    )
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
    analyze.add_argument(
        "--features", nargs="+", default=None, help="classify: items (default: the seven dimensions the data has)"
    )
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

    data = add_command(
        commands,
        "data",
        help="get the authors' released files",
        description="The authors' released data (not shipped with the package: no licence, research use only).",
    )
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    fetch = add_command(
        data_commands,
        "fetch",
        help="download the released files (sha256-checked)",
        description="Download the authors' released files from their public repository at the pinned commit "
        f"({RELEASE_COMMIT}) into the user data directory (or --dest; ${DATA_DIR_ENV} sets the default), each "
        "checked against its sha256; files already there with the right hash are kept. Prints the citation.",
    )
    fetch.add_argument("--dest", type=Path, default=None, help="folder to write to (default: the user data dir)")
    fetch.add_argument("--url", default=RELEASE_URL, help="base URL of the release (default: the pinned commit)")
    fetch.add_argument(
        "--timeout", type=Bounded(float, low=0, low_open=True), default=60.0, help="seconds per request, > 0"
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
        if args.scale is not None:
            raise ConfigError("--scale applies to --data only (the simulator answers on likert5)")
        return simulate_crowd(seed=args.seed).data
    if args.map and args.format not in ("long", "wide"):
        raise ConfigError("--map applies to --format long or wide only")
    if args.format == "ipm2021":
        return load_ipm2021(args.data, drop_broken=args.drop_broken, scale=args.scale or LIKERT5)
    if args.format == "sigir2020":
        return load_sigir2020_crowd(args.data, scale=args.scale, duplicate_units=args.duplicate_units)
    return load_table(args.data, layout=args.format, columns=_mapping(args.map), scale=args.scale)


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
    scale = data.scale
    if (args.kappa or args.randolph) and scale.domain is None:
        raise ConfigError(f"--kappa/--randolph: need a scale of discrete values, not {scale.describe()}")
    if args.phi and (scale.magnitude_estimation or scale.nominal):
        raise ConfigError(f"--phi: needs a bounded numeric scale, not {scale.describe()}")
    if args.icc and scale.nominal:
        raise ConfigError(f"--icc: needs numeric values, not {scale.describe()}")
    levels = args.levels or _default_levels(scale)
    if scale.nominal and set(levels) - {"nominal"}:
        raise ConfigError(f"--levels: {scale.describe()} is nominal; only the nominal level applies")
    table = alpha_by_item(data.judgments, items, levels=levels, value_domain=scale.domain)
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
                value_domain=scale.domain,
                n_resamples=args.bootstrap,
                seed=args.seed,
            )
            lows.append(ci.low)
            highs.append(ci.high)
        table["low"], table["high"] = lows, highs
    result: dict[str, Any] = {"alpha": table.to_dict(orient="records"), "n_judgments": len(data.judgments)}
    if args.phi:
        limits = (float(scale.low), float(scale.high))
        result["phi"] = _records(phi_by_item(data.judgments, items, limits=limits, seed=args.seed))
    if args.kappa:
        result["kappa"] = _kappas(data, items, args.bootstrap, args.seed)
    if args.randolph:
        result["randolph"] = _kappas(data, items, args.bootstrap, args.seed, method="randolph")
    if args.icc:
        result["icc"] = _iccs(data, items)
    result["scale"] = scale.describe()
    return result


def _iccs(data: CrowdData, items: Sequence[str]) -> list[dict[str, Any]]:
    """One-way ICC(1,1) and ICC(1,k) per item and dataset (+ ALL) on the statements with the modal number of
    ratings (crowd workers differ between statements, so the two-way forms do not apply); undefined ones (fewer
    than 2 such statements) are null and named in a warning."""
    groups = [(str(g), part) for g, part in data.judgments.groupby("dataset", observed=True)]
    rows, undefined = [], []
    for item in items:
        for name, part in [*groups, ("ALL", data.judgments)]:
            row: dict[str, Any] = {"item": item, "group": name}
            try:
                result = icc_from_answers(to_crowdkit(part, item))
            except ValueError:
                undefined.append(f"{item} ({name})")
                row.update({"icc_1_1": None, "icc_1_k": None, "n_statements": None, "k": None})
            else:
                row.update(
                    icc_1_1=result.values["ICC(1,1)"],
                    icc_1_k=result.values["ICC(1,k)"],
                    n_statements=result.n_targets,
                    k=result.k,
                )
            rows.append(row)
    if undefined:
        logger.warning("ICC is undefined (null: fewer than 2 statements with 2+ ratings) for %s", ", ".join(undefined))
    return rows


def _default_levels(scale: Scale) -> list[str]:
    """Alpha levels that suit the scale: nominal categories -> nominal; magnitudes -> interval and ratio."""
    if scale.nominal:
        return ["nominal"]
    if scale.magnitude_estimation:
        return ["interval", "ratio"]
    return ["interval", "ordinal", "nominal"]


def _kappas(
    data: CrowdData, items: Sequence[str], n_resamples: int, seed: int, *, method: str = "fleiss"
) -> list[dict[str, Any]]:
    """Fleiss' (or Randolph's, chance 1/k over the scale's k values) kappa per item and dataset (+ ALL) on the
    statements with the modal number of ratings, with a task-bootstrap interval when `n_resamples` > 0."""
    groups = [(str(g), part) for g, part in data.judgments.groupby("dataset", observed=True)]
    column = f"{method}_kappa"
    rows = []
    for item in items:
        for name, part in [*groups, ("ALL", data.judgments)]:
            answers = to_crowdkit(part, item)
            row: dict[str, Any] = {"item": item, "group": name}
            if method == "randolph":
                result = fleiss_kappa_ci(
                    answers, method="randolph", categories=data.scale.domain, n_resamples=max(n_resamples, 2), seed=seed
                )
                row[column] = result.kappa
                if n_resamples:
                    row.update(low=result.low, high=result.high)
                row["n_tasks"] = result.n_tasks
            elif n_resamples:
                result = fleiss_kappa_ci(answers, n_resamples=n_resamples, seed=seed)
                row.update({column: result.kappa, "low": result.low, "high": result.high, "n_tasks": result.n_tasks})
            else:
                row[column] = fleiss_kappa(answers)
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
    if "randolph" in result:
        text += "\n\nRandolph's kappa\n" + pd.DataFrame(result["randolph"]).round(4).to_string()
    if "icc" in result:
        text += (
            "\n\nIntraclass correlation, one-way (Shrout & Fleiss ICC(1,1), ICC(1,k); k ratings per statement)\n"
            + pd.DataFrame(result["icc"]).round(4).to_string()
        )
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
    if name == "classify" and not [d for d in DIMENSIONS if d in real.items]:
        return "the data has none of the seven dimensions to use as features (give --features)"
    if name == "phi" and (data.scale.magnitude_estimation or data.scale.nominal):
        return f"Phi needs a bounded numeric scale, not {data.scale.describe()}"
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
    features = args.features if args.features is not None else dims
    if "classify" in chosen and args.features is not None:
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
                limits=(float(data.scale.low), float(data.scale.high)),
                method=args.phi_method,
                n_samples=args.phi_samples,
                n_burn=args.phi_samples,
                seed=args.seed,
            )
        elif name == "classify":
            from truth_crowd.classify import predict_expert_label

            result = predict_expert_label(
                real,
                features=features,
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


def _check_aggregate_options(args: argparse.Namespace) -> None:
    """Refuse option combinations that cannot work, before any file is loaded."""
    if args.out is not None and args.out.is_dir():
        raise ConfigError(f"--out: {args.out} is a folder; give a CSV file name")
    gold_method = args.method in _GOLD_METHODS and not args.compare
    if args.gold is not None and not gold_method:
        raise ConfigError("--gold: applies to --method gold-mv or gold-ds only")
    if gold_method and args.gold is None:
        raise ConfigError(f"--method {args.method}: needs --gold FILE (CSV with columns statement_id,label)")
    if args.missing_skill is not None and (args.method != "gold-mv" or args.compare):
        raise ConfigError("--missing-skill: applies to --method gold-mv only")
    if args.method == "gold-mv" and args.tie_break not in ("lowest", "highest"):
        raise ConfigError(f"--tie-break: gold-mv breaks ties by lowest or highest, not {args.tie_break}")
    if args.worker_metrics and (args.method in ("mean", "median") or args.compare):
        raise ConfigError("--worker-metrics: needs a label method (not mean, median or --compare)")


def _read_gold(path: Path) -> pd.Series:
    """The `--gold` file as a Series of labels indexed by statement id (one label per statement)."""
    records = read_csv_records(path)
    missing = [c for c in ("statement_id", "label") if c not in records.columns]
    if missing:
        raise InputError(
            f"the gold file needs the columns statement_id and label; it lacks {', '.join(missing)}",
            path=str(path),
            line=1,
            field=missing[0],
        )
    if records.empty:
        raise InputError("the gold file has no rows", path=str(path), line=2)
    for column in ("statement_id", "label"):
        blank = records[column].isna().to_numpy()
        if blank.any():
            line = int(records["_line"].to_numpy()[blank][0])
            raise InputError(f"empty {column}", path=str(path), line=line, field=column)
    ids = records["statement_id"].str.strip()
    repeated = ids.duplicated().to_numpy()
    if repeated.any():
        line = int(records["_line"].to_numpy()[repeated][0])
        raise InputError(f"statement {ids[repeated].iloc[0]!r} more than once", path=str(path), line=line)
    labels = records["label"].str.strip()
    numeric = pd.to_numeric(labels, errors="coerce")
    if numeric.notna().all():
        values = numeric.to_numpy(dtype=float)
        labels = pd.Series(values.astype(np.int64) if np.all(values == np.round(values)) else values)
    return pd.Series(labels.to_numpy(), index=pd.Index(ids.to_numpy(), name="task"), name="label")


def _gold_answers(full: CrowdData, real: CrowdData, item: str, gold: pd.Series) -> pd.DataFrame:
    """The item's answers on the real statements plus those on the gold statements `gold` names (e.g. HIGH, LOW),
    which the canonical filter drops; every gold statement must occur in the data."""
    unknown = [s for s in gold.index if s not in set(full.judgments["statement_id"])]
    if unknown:
        raise ConfigError(f"--gold: statement(s) not in the data: {unknown[:5]}")
    extra = full.judgments[
        full.judgments["statement_id"].isin(gold.index) & ~full.judgments["statement_id"].isin(real.statements.index)
    ]
    return to_crowdkit(pd.concat([real.judgments, extra], ignore_index=True), item)


def _aggregate(args: argparse.Namespace) -> dict[str, Any]:
    _check_aggregate_options(args)
    gold = _read_gold(args.gold) if args.gold is not None and not args.compare else None
    full = _load(args)
    data = _real(full)
    if args.item not in data.items:
        raise ConfigError(f"--item: unknown item {args.item!r}; the data has {list(data.items)}")
    if args.compare:
        if "gt_norm" not in data.statements.columns:
            raise ConfigError("--compare: the data has no expert labels (gt_norm) to compare with")
        table = compare_with_experts(data, item=args.item, tie_break=args.tie_break, seed=args.seed)
        return {"item": args.item, "method": "compare", "comparison": _records(table)}
    if gold is not None and data.scale.nominal:  # category names in the file, category codes in the answers
        codes = data.scale.codes(gold.astype(str))
        if np.isnan(codes).any():
            raise ConfigError(f"--gold: label(s) not on {data.scale.describe()}: {sorted(set(gold[np.isnan(codes)]))}")
        gold = pd.Series(codes.astype(np.int64), index=gold.index, name="label")
    answers = to_crowdkit(data.judgments, args.item) if gold is None else _gold_answers(full, data, args.item, gold)
    if args.method == "kos" and answers["label"].nunique() != 2:
        raise ConfigError(
            f"--method kos: KOS is for binary labels; {args.item} has {answers['label'].nunique()} distinct values"
        )
    if args.method == "gold-mv" and args.missing_skill is None:
        gold_workers = set(answers.loc[answers["task"].isin(gold.index), "worker"])  # type: ignore[union-attr]
        without = sorted(set(answers["worker"]) - gold_workers, key=str)
        if without:
            raise ConfigError(
                f"--method gold-mv: {len(without)} worker(s) answered no gold statement, e.g. {without[:3]}; "
                "give --missing-skill SKILL (0..1) to weigh them"
            )
    with value_errors_as_config_errors(f"--method {args.method}: "):
        values = _fit_aggregate(args, answers, gold)
    values = values[values.index.isin(data.statements.index)] if gold is not None else values
    frame = pd.DataFrame({"statement_id": values.index.astype(str), "value": values.to_numpy(dtype=float)})
    if "gt_value" in data.statements.columns:
        frame["gt_value"] = frame["statement_id"].map(data.statements["gt_value"]).astype("Float64")
    result: dict[str, Any] = {"item": args.item, "method": args.method, "n_statements": len(frame)}
    if args.worker_metrics:
        result.update(_worker_metrics(answers[answers["task"].isin(values.index)], values))  # gold tasks apart
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.out, frame.to_csv(index=False))  # never a half-written CSV
    result["aggregates"] = _records(frame)
    return result


def _fit_aggregate(args: argparse.Namespace, answers: pd.DataFrame, gold: pd.Series | None) -> pd.Series:
    """One aggregate per task with the chosen method."""
    method = args.method
    if method == "mean":
        return mean_aggregate(answers)
    if method == "median":
        return median_aggregate(answers)
    if method == "mv":
        return majority_vote(answers, tie_break=args.tie_break, seed=args.seed)
    if method == "ds":
        return DawidSkene().fit_predict(answers)
    if method == "gold-ds":
        return DawidSkene().fit_predict(answers, true_labels=gold)
    if method == "gold-mv":
        missing = "error" if args.missing_skill is None else float(args.missing_skill)
        return GoldMajorityVote(on_missing_skill=missing, tie_break=args.tie_break).fit_predict(answers, gold)
    if method == "mace":
        return MACE(method=args.mace_method, seed=args.seed).fit_predict(answers)
    if method == "mmsr":
        return MMSR(vote=args.mmsr_vote, seed=args.seed).fit_predict(answers)
    if method == "kos":
        return KOS(seed=args.seed).fit_predict(answers)
    return _MODELS[method]().fit_predict(answers)


def _worker_metrics(answers: pd.DataFrame, values: pd.Series) -> dict[str, Any]:
    """crowd-kit's worker metrics against the aggregates: accuracy per worker (and overall), the consistency of
    the aggregates under a one-coin model with those accuracies as skills, and the vote uncertainty (nats)."""
    skills = cast(pd.Series, accuracy_on_aggregates(answers, values, by="worker"))
    n_answers = answers.groupby("worker", sort=False).size()
    workers = pd.DataFrame(
        {
            "worker_id": skills.index.astype(str),
            "n_answers": n_answers.reindex(skills.index).to_numpy(dtype=int),
            "accuracy": skills.to_numpy(dtype=float),
        }
    )
    return {
        "metrics": {
            "accuracy_on_aggregates": accuracy_on_aggregates(answers, values),
            "consistency": consistency(answers, skills, values),
            "uncertainty": uncertainty(answers),
        },
        "workers": _records(workers),
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
    if "metrics" in result:
        metrics = result["metrics"]
        lines += [
            "",
            f"worker metrics: accuracy on the aggregates {metrics['accuracy_on_aggregates']:.4f}, consistency "
            f"{metrics['consistency']:.4f}, uncertainty {metrics['uncertainty']:.4f} nats",
        ]
        workers = pd.DataFrame(result["workers"])
        shown = workers.sort_values("accuracy", kind="stable").head(20)
        lines.append(shown.round(4).to_string(index=False))
        if len(workers) > 20:
            lines.append(f"  ... {len(workers) - 20} more workers (use --json)")
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


def _data(args: argparse.Namespace) -> dict[str, Any]:
    if args.dest is not None and args.dest.exists() and not args.dest.is_dir():
        raise ConfigError(f"--dest: {args.dest} is a file; give a folder")
    if not args.url.startswith(("http://", "https://")):
        raise ConfigError(f"--url: expected an http(s) URL, got {args.url!r}")
    fetched = released_data.fetch_released_data(
        args.dest, base_url=args.url, files=released_data.RELEASED_FILES, timeout=args.timeout
    )
    return {
        "commit": RELEASE_COMMIT,
        "folder": str(args.dest if args.dest is not None else data_dir()),
        "files": [{"path": str(f.path), "sha256": f.sha256, "downloaded": f.downloaded} for f in fetched],
        "citation": CITATION,
    }


def _human_data(result: dict[str, Any]) -> str:
    lines = [f"released data (commit {result['commit']}) in {result['folder']}:"]
    lines += [f"  {'downloaded' if f['downloaded'] else 'present   '}  {f['path']}" for f in result["files"]]
    lines += ["", "Please cite:", *("  " + line for line in result["citation"].splitlines())]
    return "\n".join(lines)


def _main(args: argparse.Namespace) -> int:
    if args.command == "data":
        emit(_data(args), as_json=args.json, human=_human_data)
        return 0
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
