"""The `truth-crowd` command line: validate, qc, agreement, aggregate, and the quick reproduction."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from repro_core.cli import add_command, emit, make_parser, run_main
from repro_core.errors import ConfigError
from repro_core.umbrella import add_reproduce_command, reproduce_package
from truth_crowd.__about__ import __version__
from truth_crowd.aggregation import TIE_BREAKS, DawidSkene, majority_vote, mean_aggregate, median_aggregate
from truth_crowd.agreement import LEVELS, alpha_by_item, krippendorff_alpha_ci
from truth_crowd.describe import design_counts
from truth_crowd.inference import GLAD, MACE, OneCoinDawidSkene, Wawa, ZeroBasedSkill
from truth_crowd.io import CrowdData, load_csv, load_ipm2021
from truth_crowd.qc import default_checks, run_qc
from truth_crowd.report import write_report
from truth_crowd.reproduction import quick
from truth_crowd.schema import to_crowdkit
from truth_crowd.simulate import simulate_crowd

__all__ = ["build_parser", "main"]

_MODELS = {"onecoin": OneCoinDawidSkene, "glad": GLAD, "mace": MACE, "wawa": Wawa, "zbs": ZeroBasedSkill}

DESCRIPTION = """Crowdsourced truthfulness judgments on seven dimensions plus overall truthfulness (arXiv 2108.01222):
loading and validation, quality control, agreement and aggregation.

Data: --data FILE (the released IPM2021 multidimensional.csv by default; --format long/wide for any CSV with
--map OURS=THEIRS column renames), or --simulate for a seeded IPM-like simulated run.

commands:
  validate    load, validate and print the design counts and the loader's decisions
  qc          the paper's quality checks (completeness, gold LOW < HIGH, time >= 2 s, tries, URL domains)
  agreement   Krippendorff's alpha per item and dataset (nominal/ordinal/interval/ratio), bootstrap CIs
  aggregate   one value per statement: mean (the paper's), median, majority vote, Dawid-Skene, one-coin DS,
              GLAD, MACE, Wawa, zero-based skill
  report      every analysis as a Markdown report with CSV tables and PNG figures
  reproduce   this package's quick reproduction (also run by `repro reproduce`)

Not implemented yet: worker-background and evidence-source tables, factor analysis, the classifiers."""


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data")
    source = group.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="CSV file to load")
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
    group.add_argument("--seed", type=int, default=0, help="seed of --simulate and of bootstraps (default: 0)")


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
    qc.add_argument("--min-seconds", type=float, default=2.0, help="time threshold (default: 2)")
    qc.add_argument("--max-tries", type=int, default=10, help="allowed tries (default: 10)")

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
        type=int,
        default=0,
        metavar="N",
        help="add a 95%% unit-bootstrap interval with N resamples (default: none)",
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
        type=int,
        default=1000,
        metavar="N",
        help="Phi item-bootstrap resamples (default: 1000; 0: none)",
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
    return load_csv(args.data, layout=args.format, columns=_mapping(args.map))


def _real(data: CrowdData) -> CrowdData:
    """The canonical filter when the data has real and gold statements; the data itself otherwise."""
    if data.judgments["dataset"].isin(["politifact", "abc"]).any():
        return data.real()
    return data


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
    data = _real(_load(args))
    items = args.items or list(data.items)
    unknown = [i for i in items if i not in data.items]
    if unknown:
        raise ConfigError(f"--items: unknown item(s) {unknown}; the data has {list(data.items)}")
    if args.bootstrap and args.bootstrap < 2:
        raise ConfigError(f"--bootstrap: needs at least 2 resamples, got {args.bootstrap}")
    table = alpha_by_item(data.judgments, items, levels=args.levels)
    if args.bootstrap:
        lows, highs = [], []
        for row in table.itertuples():
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
    return {"alpha": table.to_dict(orient="records"), "n_judgments": len(data.judgments)}


def _human_agreement(result: dict[str, Any]) -> str:
    table = pd.DataFrame(result["alpha"])
    wide = table.pivot_table(index="item", columns=["level", "group"], values="alpha", sort=False)
    return f"Krippendorff's alpha on {result['n_judgments']} judgments\n" + wide.round(4).to_string()


def _aggregate(args: argparse.Namespace) -> dict[str, Any]:
    data = _real(_load(args))
    if args.item not in data.items:
        raise ConfigError(f"--item: unknown item {args.item!r}; the data has {list(data.items)}")
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
        frame.to_csv(args.out, index=False)
    return {
        "item": args.item,
        "method": args.method,
        "n_statements": len(frame),
        "aggregates": frame.astype(object).where(frame.notna(), None).to_dict(orient="records"),
    }


def _human_aggregate(result: dict[str, Any]) -> str:
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
    if args.bootstrap < 0 or args.bootstrap == 1:
        raise ConfigError(f"--bootstrap: needs 0 or at least 2 resamples, got {args.bootstrap}")
    return write_report(_load(args), args.out, n_resamples=args.bootstrap, seed=args.seed)


def _human_report(result: dict[str, Any]) -> str:
    return f"report written to {result['report']} ({len(result['tables'])} tables, {len(result['figures'])} figures)"


_COMMANDS = {
    "report": (_report, _human_report),
    "validate": (_validate, _human_validate),
    "qc": (_qc, _human_qc),
    "agreement": (_agreement, _human_agreement),
    "aggregate": (_aggregate, _human_aggregate),
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
