"""The `ntk-permute` command line: analytic GP predictions, ensemble sizes and the quick reproduction."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from repro_core.cli import common_options, make_parser, progress, run_main
from repro_core.cli import emit as emit_result
from repro_core.errors import ConfigError
from repro_core.seeding import numpy_rng
from repro_core.umbrella import add_reproduce_command, reproduce_package

from ntk_permute.__about__ import __version__
from ntk_permute.closed_form import m_form
from ntk_permute.complexity import BOUNDS, ensemble_size, worst_ratio
from ntk_permute.exhaustive import DEFAULT_EPS, MODES, exhaustive_check
from ntk_permute.gp import random_permutation
from ntk_permute.reproduction import quick

__all__ = ["build_parser", "main"]

DESCRIPTION = """Exact learning of permutations by ensembles of two-layer ReLU networks in the NTK regime
(arXiv 2502.16763).

Trained by gradient descent on the k basis vectors only, an infinite ensemble of infinitely wide networks is a
Gaussian process whose rounded mean gives P x for every nonzero binary x. Two GPs: the NTK-GP (NTK
parametrisation, the paper's theory) and the NNGP-GP (standard parametrisation / last layer, what the official
experiments follow).

commands:
  analytic     GP mean and variance per number of ones m (closed form), or an exhaustive check of all 2^k - 1 inputs
  complexity   ensemble sizes M(k, delta): one input (exact product), all inputs (union bound), crude k^2 bound
  reproduce    this package's quick reproduction (also run by `repro reproduce`)

Not implemented yet: finite-width training, the Figure 1 experiments."""

KINDS = ("ntk", "nngp")


def _kinds(value: str) -> list[str]:
    return list(KINDS) if value == "both" else [value]


def _add_gp_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kind", choices=[*KINDS, "both"], default="both",
                        help="ntk = NTK-GP, nngp = NNGP-GP (default: both)")
    parser.add_argument("--w-std", type=float, default=1.0, help="weight standard deviation sigma_w (default: 1)")
    parser.add_argument("--b-std", type=float, default=0.0, help="bias standard deviation sigma_b (default: 0)")


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser("ntk-permute", DESCRIPTION, __version__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    analytic = commands.add_parser(
        "analytic", parents=[common_options()], formatter_class=argparse.RawDescriptionHelpFormatter,
        help="GP mean/variance per m, or the exhaustive exactness check",
        description="Infinite-width GP after gradient descent on the k basis vectors (NTK parametrisation, "
                    "L2-normalised inputs).\n\nWithout --exhaustive: mu_on(m), mu_off(m) and sigma^2(m) from the "
                    "O(1) closed form.\nWith --exhaustive: round the GP mean (1[mean > eps]) at all 2^k - 1 nonzero "
                    "inputs, streamed in chunks,\nfor --perms random permutations, and count the exact inputs.",
        epilog="examples:\n  ntk-permute analytic --k 8\n  ntk-permute analytic --k 16 --exhaustive --perms 20 --json\n"
               "  ntk-permute analytic --k 20 --exhaustive --mode mform",
    )
    analytic.add_argument("--k", type=int, required=True, help="input dimension k")
    analytic.add_argument("--m", type=int, nargs="+", help="numbers of ones to report (default: 1..k)")
    analytic.add_argument("--t", type=float, default=None, help="training time (default: t = infinity)")
    analytic.add_argument("--lr", type=float, default=1.0, help="learning rate eta for finite --t (default: 1)")
    _add_gp_options(analytic)
    group = analytic.add_argument_group("exhaustive check")
    group.add_argument("--exhaustive", action="store_true", help="check every nonzero input")
    group.add_argument("--perms", type=int, default=1, help="number of random permutations (default: 1)")
    group.add_argument("--seed", type=int, default=0, help="seed of the permutations (default: 0)")
    group.add_argument("--eps", type=float, default=DEFAULT_EPS, help=f"rounding tolerance (default: {DEFAULT_EPS:g}; "
                                                                      "0 = the fragile strict rule)")
    group.add_argument("--mode", choices=MODES, default="kernel",
                       help="kernel = full Gram matrices, mform = closed form (default: kernel)")
    group.add_argument("--chunk-size", type=int, default=65536, help="inputs per chunk (default: 65536)")

    complexity = commands.add_parser(
        "complexity", parents=[common_options()], formatter_class=argparse.RawDescriptionHelpFormatter,
        help="ensemble sizes M(k, delta)",
        description="Smallest ensemble size M whose failure probability is <= delta:\n"
                    "  single  one input with m ones (default: the worst m), exact product over its k bits\n"
                    "  all     all 2^k - 1 inputs, m-stratified union bound (any k)\n"
                    "  crude   all inputs, 2 r ln(k 2^k / delta) with r the worst sigma^2/mu^2 (~k^2)",
        epilog="example:\n  ntk-permute complexity --k 8 16 32 --delta 0.1 0.01 --json",
    )
    complexity.add_argument("--k", type=int, nargs="+", required=True, help="input dimensions")
    complexity.add_argument("--delta", type=float, nargs="+", default=[0.01], help="failure budgets (default: 0.01)")
    complexity.add_argument("--bound", choices=BOUNDS, nargs="+", default=list(BOUNDS),
                            help="which sizes (default: all three)")
    complexity.add_argument("--m", type=int, default=None, help="level of the single input (default: the worst)")
    _add_gp_options(complexity)

    add_reproduce_command(commands)
    return parser


def _analytic(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"k": args.k, "w_std": args.w_std, "b_std": args.b_std, "t": args.t}
    if not args.exhaustive:
        for kind in _kinds(args.kind):
            form = m_form(args.k, args.m, kind=kind, t=args.t, learning_rate=args.lr, w_std=args.w_std,
                          b_std=args.b_std)
            result[kind] = form.as_rows()
        return result
    if args.perms < 1:
        raise ConfigError(f"--perms: must be >= 1, got {args.perms}")
    rng = numpy_rng(args.seed, "ntk-permute", "permutations", args.k)
    perms = [random_permutation(args.k, rng) for _ in range(args.perms)]
    result.update({"eps": args.eps, "mode": args.mode, "seed": args.seed, "n_perms": args.perms})
    for kind in _kinds(args.kind):
        with progress(total=2**args.k - 1, desc=f"{kind}-GP k={args.k}", unit="input") as bar:
            done = [0]

            def advance(n: int, bar: Any = bar, done: list[int] = done) -> None:
                bar.update(n - done[0])
                done[0] = n

            outcome = exhaustive_check(args.k, perms, kind=kind, eps=args.eps, mode=args.mode, t=args.t,
                                       learning_rate=args.lr, w_std=args.w_std, b_std=args.b_std,
                                       chunk_size=args.chunk_size, on_chunk=advance)
        result[kind] = {
            "n_inputs": outcome.n_inputs,
            "n_exact": outcome.n_exact,
            "all_exact": outcome.all_exact,
            "min_on": float(outcome.min_on.min()),
            "max_off": float(outcome.max_off.max()),
            "first_failure": outcome.first_failure,
        }
    return result


def _human_analytic(result: dict[str, Any]) -> str:
    lines = []
    for kind in KINDS:
        if kind not in result:
            continue
        block = result[kind]
        if isinstance(block, list):
            lines.append(f"{kind}-GP, k = {result['k']}" + ("" if result["t"] is None else f", t = {result['t']}"))
            lines.append(f"{'m':>6} {'mu_on':>14} {'mu_off':>14} {'sigma^2':>12}")
            for row in block:
                off = "-" if row["mu_off"] is None else f"{row['mu_off']:.10f}"
                lines.append(f"{row['m']:>6} {row['mu_on']:>14.10f} {off:>14} {row['variance']:>12.6e}")
        else:
            n_exact = list(block["n_exact"])
            lines.append(f"{kind}-GP, k = {result['k']}, {result['n_perms']} permutation(s), eps = {result['eps']:g}: "
                         f"exact on {min(n_exact)}..{max(n_exact)} of {block['n_inputs']} inputs "
                         f"({'all exact' if block['all_exact'] else 'NOT all exact'}); min on-bit mean "
                         f"{block['min_on']:.4g}, max off-bit mean {block['max_off']:.3g}")
    return "\n".join(lines)


def _complexity(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    for k in args.k:
        for kind in _kinds(args.kind):
            ratio, level, bit = worst_ratio(k, kind=kind, w_std=args.w_std, b_std=args.b_std)
            for delta in args.delta:
                for bound in args.bound:
                    size = ensemble_size(k, delta, bound=bound, m=args.m if bound == "single" else None, kind=kind,
                                         w_std=args.w_std, b_std=args.b_std)
                    rows.append({"k": k, "kind": kind, "delta": delta, "bound": bound,
                                 "m": args.m if bound == "single" else None, "M": size,
                                 "worst_ratio": ratio, "worst_m": level, "worst_bit": bit})
    return rows


def _human_complexity(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'k':>8} {'kind':>5} {'delta':>8} {'bound':>7} {'M':>14} {'max s2/mu2':>12}"]
    for r in rows:
        lines.append(f"{r['k']:>8} {r['kind']:>5} {r['delta']:>8g} {r['bound']:>7} {r['M']:>14} "
                     f"{r['worst_ratio']:>12.2f}")
    return "\n".join(lines)


def _main(args: argparse.Namespace) -> int:
    if args.command == "reproduce":
        return reproduce_package("ntk-permute", quick, args)
    try:
        if args.command == "analytic":
            emit_result(_analytic(args), as_json=args.json, human=_human_analytic)
            return 0
        if args.command == "complexity":
            emit_result(_complexity(args), as_json=args.json, human=_human_complexity)
            return 0
    except ConfigError:
        raise
    except ValueError as exc:  # the library's argument checks name the argument
        raise ConfigError(str(exc)) from exc
    raise AssertionError(f"unhandled command {args.command!r}")  # argparse rejects unknown commands first


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(_main, build_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
