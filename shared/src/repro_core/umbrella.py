"""`repro`: the umbrella command that runs every installed package's quick reproduction.

Packages register a reproduction in the entry-point group `repro.reproductions`; the entry point's name is the
distribution's name and its value a callable `quick(context: ReproductionContext) -> list[ClaimResult]`. Each runs
on the package's embedded default data, seeded with `derive_seed(seed, <distribution>)`. A package that fails to
load or raises does not stop the others: its row in `report/index.md` says what failed.

    repro list                         # the registered reproductions
    repro reproduce [--out report]     # run them all, write report/index.md, results.json and figures
"""

from __future__ import annotations

import argparse
import logging
import time
import traceback
from collections.abc import Callable, Sequence
from importlib.metadata import EntryPoint, entry_points, version
from pathlib import Path

from repro_core.__about__ import __version__
from repro_core.checkpoint import atomic_write_text
from repro_core.cli import add_command, add_seed_option, emit, make_parser, progress, run_main
from repro_core.errors import ConfigError
from repro_core.report import (
    ClaimResult,
    ReproductionContext,
    ReproductionOutcome,
    Verdict,
    format_value,
    markdown_table,
    plot_paper_vs_ours,
    write_json,
)
from repro_core.seeding import derive_seed, seed_everything

__all__ = [
    "ENTRY_POINT_GROUP",
    "add_reproduce_command",
    "discover",
    "main",
    "reproduce_package",
    "run_all",
    "run_one",
    "write_report",
]

logger = logging.getLogger(__name__)

#: Entry-point group in which packages register their quick reproduction.
ENTRY_POINT_GROUP = "repro.reproductions"


def discover() -> dict[str, EntryPoint]:
    """Registered reproductions by distribution name, sorted by name."""
    found = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return dict(sorted(found.items()))


def _distribution_version(name: str) -> str:
    try:
        return version(name)
    except Exception:  # an entry point whose distribution metadata is odd must not break the report
        return "unknown"


def run_one(
    name: str, entry: EntryPoint | Callable[[ReproductionContext], list[ClaimResult]], out_dir: Path, seed: int
) -> ReproductionOutcome:
    """Load and run one reproduction; any exception becomes a FAILED outcome instead of propagating."""
    outcome = ReproductionOutcome(package=name, version=_distribution_version(name))
    context = ReproductionContext(out_dir=out_dir / name, seed=derive_seed(seed, name))
    start = time.perf_counter()
    try:
        reproduce = entry.load() if isinstance(entry, EntryPoint) else entry
        seed_everything(context.seed)
        results = reproduce(context)
        if not isinstance(results, list) or not all(isinstance(r, ClaimResult) for r in results):
            raise TypeError(f"{name}'s reproduction must return a list of ClaimResult, got {type(results).__name__}")
        outcome.results = [r.with_package(name) for r in results]
    except Exception as exc:
        logger.debug("reproduction %s failed:\n%s", name, traceback.format_exc())
        outcome.error = f"{type(exc).__name__}: {exc}"
        outcome.results = [
            ClaimResult(
                claim="quick reproduction",
                metric="-",
                verdict=Verdict.FAILED,
                package=name,
                note=f"failed: {outcome.error}",
            )
        ]
    outcome.seconds = time.perf_counter() - start
    if context.out_dir.is_dir():
        outcome.figures = sorted(context.out_dir.rglob("*.png"))
    return outcome


def run_all(out_dir: Path, *, seed: int = 0, only: Sequence[str] | None = None) -> list[ReproductionOutcome]:
    """Run every registered reproduction (or those in `only`), one after the other."""
    registered = discover()
    if only:
        unknown = sorted(set(only) - set(registered))
        if unknown:
            raise ConfigError(
                f"--only: no reproduction registered for {', '.join(unknown)} "
                f"(registered: {', '.join(registered) or 'none'})"
            )
        registered = {name: ep for name, ep in registered.items() if name in only}
    outcomes = []
    for name, entry in progress(registered.items(), total=len(registered), desc="reproductions", unit="pkg"):
        logger.info("running %s", name)
        outcomes.append(run_one(name, entry, out_dir, seed))
    return outcomes


def write_report(outcomes: Sequence[ReproductionOutcome], out_dir: Path, *, seed: int) -> Path:
    """Write `index.md`, `results.json` and the summary figure into `out_dir`; return the index path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results = [r for outcome in outcomes for r in outcome.results]
    summary = plot_paper_vs_ours(results, out_dir / "ours_vs_paper.png") if _has_matplotlib() else None
    lines = [
        "# Reproduction report",
        "",
        f"`repro reproduce` with seed {seed}, repro-core {__version__}: each package's quick reproduction on its",
        f"embedded default data. {Verdict.legend()}",
        "",
        "## Packages",
        "",
        "| package | version | claims | " + " | ".join(v.value for v in Verdict) + " | seconds |",
        "|---|---|---|" + "---|" * len(Verdict) + "---|",
    ]
    for o in outcomes:  # one column per verdict, so a new verdict is counted without touching this table
        counts = " | ".join(str(sum(r.verdict is v for r in o.results)) for v in Verdict)
        lines.append(f"| {o.package} | {o.version} | {len(o.results)} | {counts} | {o.seconds:.1f} |")
    lines += ["", "## Claims", "", markdown_table(results)]
    figures = [f for o in outcomes for f in o.figures] + ([summary] if summary else [])
    if figures:
        lines += ["## Figures", ""]
        lines += [f"![{f.stem}]({f.relative_to(out_dir).as_posix()})" for f in figures]
        lines.append("")
    index = out_dir / "index.md"
    atomic_write_text(index, "\n".join(lines))
    write_json({"seed": seed, "repro_core": __version__, "outcomes": list(outcomes)}, out_dir / "results.json")
    return index


def add_reproduce_command(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the `reproduce` subcommand every package CLI offers (same options as `repro reproduce`)."""
    run = add_command(
        commands,
        "reproduce",
        help="run this package's quick reproduction",
        description="Run this package's quick reproduction on its embedded default data and "
        "write OUT/index.md, OUT/results.json and figures.",
    )
    run.add_argument("--out", type=Path, default=Path("report"), help="report folder (default: ./report)")
    add_seed_option(run, help="experiment seed, 0 to 2**32 - 1 (default: 0)")
    return run


def reproduce_package(
    name: str, quick: Callable[[ReproductionContext], list[ClaimResult]], args: argparse.Namespace
) -> int:
    """Run one package's reproduction as its own CLI's `reproduce` subcommand; 1 if it failed."""
    outcome = run_one(name, quick, args.out, args.seed)
    index = write_report([outcome], args.out, seed=args.seed)
    emit({"index": index, "outcomes": [outcome]}, as_json=args.json, human=_human_summary)
    return 1 if outcome.error else 0


def _has_matplotlib() -> bool:
    from repro_core.optional import has_module

    return has_module("matplotlib")


def _human_summary(payload: dict) -> str:
    rows = [f"{'package':<16} {'claim':<48} {'paper':>8} {'ours':>8}  verdict"]
    for outcome in payload["outcomes"]:
        for r in outcome.results:
            rows.append(
                f"{outcome.package:<16} {r.claim[:48]:<48} {format_value(r.paper_value):>8} "
                f"{format_value(r.our_value):>8}  {r.verdict.value}"
            )
    rows.append(f"report: {payload['index']}")
    return "\n".join(rows)


def _build_parser() -> argparse.ArgumentParser:
    parser = make_parser("repro", "Run the repro packages' reproductions and write a report.", __version__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = add_reproduce_command(commands)
    run.description = (
        "Run every installed package's quick reproduction (or those named by --only) on its embedded default data "
        "and write OUT/index.md, OUT/results.json and figures."
    )
    _set_help(commands, "reproduce", "run every installed package's quick reproduction")
    run.add_argument("--only", nargs="+", metavar="DIST", help="run only these distributions")
    add_command(commands, "list", help="list the registered reproductions")
    return parser


def _set_help(commands: argparse._SubParsersAction, name: str, text: str) -> None:
    """Change the one-line help a subcommand shows in its parent's `--help`."""
    for choice in commands._choices_actions:
        if choice.dest == name:
            choice.help = text


#: What to say when no package is installed, so that `repro list` and `repro reproduce` are never silent.
_NOTHING_INSTALLED = (
    "no package registers a reproduction: install one or more of ntk-permute, mult-probe, truth-crowd, "
    "premise-search, bt2-compat"
)


def _human_list(registered: dict[str, dict[str, str]]) -> str:
    if not registered:
        return _NOTHING_INSTALLED
    return "\n".join(f"{n} {v['version']}  ({v['entry_point']})" for n, v in registered.items())


def _main(args: argparse.Namespace) -> int:
    if args.command == "list":
        registered = {
            name: {"entry_point": ep.value, "version": _distribution_version(name)} for name, ep in discover().items()
        }
        emit(registered, as_json=args.json, human=_human_list)
        return 0
    if not discover():
        raise ConfigError(_NOTHING_INSTALLED)
    outcomes = run_all(args.out, seed=args.seed, only=args.only)
    index = write_report(outcomes, args.out, seed=args.seed)
    emit({"index": index, "outcomes": outcomes}, as_json=args.json, human=_human_summary)
    return 1 if any(o.error for o in outcomes) else 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(_main, _build_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
