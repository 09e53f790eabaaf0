"""The `ntk-permute` command line: analytic GP predictions, ensemble sizes and the quick reproduction."""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ntk_permute.__about__ import __version__
from ntk_permute.closed_form import m_form
from ntk_permute.complexity import BOUNDS, ensemble_size, worst_ratio
from ntk_permute.exhaustive import DEFAULT_EPS, MODES, exhaustive_check
from ntk_permute.gp import random_permutation
from ntk_permute.reproduction import quick
from ntk_permute.training import BACKENDS, DTYPES, LOSSES, TrainConfig
from repro_core.cli import add_command, make_parser, progress, run_main
from repro_core.cli import emit as emit_result
from repro_core.errors import ConfigError
from repro_core.seeding import numpy_rng
from repro_core.umbrella import add_reproduce_command, reproduce_package

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
  train        train a finite-width ensemble (JAX or torch), compare it with the GPs, check every input
  experiment   figure1 (Figure 1 with trained pools and theory curves), scaling (M / order plots),
               p-all (Monte-Carlo joint probability that all inputs are exact)
  reproduce    this package's quick reproduction (also run by `repro reproduce`)"""

KINDS = ("ntk", "nngp")


def _kinds(value: str) -> list[str]:
    return list(KINDS) if value == "both" else [value]


def _add_gp_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kind", choices=[*KINDS, "both"], default="both", help="ntk = NTK-GP, nngp = NNGP-GP (default: both)"
    )
    parser.add_argument("--w-std", type=float, default=1.0, help="weight standard deviation sigma_w (default: 1)")
    parser.add_argument("--b-std", type=float, default=0.0, help="bias standard deviation sigma_b (default: 0)")


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser("ntk-permute", DESCRIPTION, __version__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    analytic = add_command(
        commands,
        "analytic",
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
    group.add_argument(
        "--eps",
        type=float,
        default=DEFAULT_EPS,
        help=f"rounding tolerance (default: {DEFAULT_EPS:g}; 0 = the fragile strict rule)",
    )
    group.add_argument(
        "--mode",
        choices=MODES,
        default="kernel",
        help="kernel = full Gram matrices, mform = closed form (default: kernel)",
    )
    group.add_argument("--chunk-size", type=int, default=65536, help="inputs per chunk (default: 65536)")

    complexity = add_command(
        commands,
        "complexity",
        help="ensemble sizes M(k, delta)",
        description="Smallest ensemble size M whose failure probability is <= delta:\n"
        "  single  one input with m ones (default: the worst m), exact product over its k bits\n"
        "  all     all 2^k - 1 inputs, m-stratified union bound (any k)\n"
        "  crude   all inputs, 2 r ln(k 2^k / delta) with r the worst sigma^2/mu^2 (~k^2)",
        epilog="example:\n  ntk-permute complexity --k 8 16 32 --delta 0.1 0.01 --json",
    )
    complexity.add_argument("--k", type=int, nargs="+", required=True, help="input dimensions")
    complexity.add_argument("--delta", type=float, nargs="+", default=[0.01], help="failure budgets (default: 0.01)")
    complexity.add_argument(
        "--bound", choices=BOUNDS, nargs="+", default=list(BOUNDS), help="which sizes (default: all three)"
    )
    complexity.add_argument("--m", type=int, default=None, help="level of the single input (default: the worst)")
    _add_gp_options(complexity)

    train = add_command(
        commands,
        "train",
        help="train a finite-width ensemble and compare it with the GPs",
        description="Train M two-layer ReLU networks on the k basis vectors by full-batch gradient descent\n"
        "(vectorised over members; learning rate and steps from the analytic spectrum unless given),\n"
        "then report the per-model m = 2 statistics against the NTK-GP and NNGP-GP and, for k <= 16,\n"
        "the rounded ensemble mean at every nonzero input (tolerance rule and strict > 0 rule).",
        epilog="examples:\n  ntk-permute train --k 8 --members 256 --parametrization standard\n"
        "  ntk-permute train --k 8 --members 128 --backend torch --json\n"
        "  ntk-permute train --paper --k 10 --members 320     # the official recipe (a GPU job)\n"
        "  ntk-permute train --config config.json",
    )
    _add_train_options(train)
    train.add_argument("--eps", type=float, default=1e-6, help="rounding tolerance for trained nets (default: 1e-6)")
    train.add_argument("--no-all-inputs", action="store_true", help="skip the check of all 2^k - 1 inputs")

    experiment = add_command(
        commands,
        "experiment",
        help="Figure 1, the scaling plot, or P_all(M) by Monte Carlo",
        description="figure1  train a pool per k, accuracy on 1,000 random m = 2 inputs against M, first M\n"
        "         reaching --level, with the official values and the NNGP-GP / NTK-GP theory (PNG)\n"
        "scaling  M_single/(k ln k), M_all/(k ln k), M_all/(k^1.5 ln k), M_all/k^2 from the closed forms\n"
        "p-all    P(all nonzero inputs exact) for ensembles of --members, Monte Carlo from the GP",
        epilog="examples:\n  ntk-permute experiment figure1 --k 5 10 15 --width 1024 --out figures\n"
        "  ntk-permute experiment figure1 --paper --k 10 20 30 --out figures   # official recipe, GPU\n"
        "  ntk-permute experiment scaling --k 4 16 64 256 1024 --out figures\n"
        "  ntk-permute experiment p-all --k 8 --members 100 150 200 --gp nngp --json",
    )
    experiment.add_argument("name", choices=("figure1", "scaling", "p-all"), help="which experiment")
    _add_train_options(experiment, single_k=False)
    experiment.add_argument("--level", type=float, default=0.9, help="figure1: target accuracy (default: 0.9)")
    experiment.add_argument("--num-tests", type=int, default=1000, help="figure1: m = 2 test inputs (default: 1000)")
    experiment.add_argument(
        "--pool", type=int, default=None, help="figure1: members per k (default: 2x the NNGP-GP prediction)"
    )
    experiment.add_argument("--delta", type=float, default=0.01, help="scaling: failure budget (default: 0.01)")
    experiment.add_argument("--gp", choices=[*KINDS, "both"], default="both", help="scaling / p-all: which GP")
    experiment.add_argument("--draws", type=int, default=20000, help="p-all: Monte-Carlo draws (default: 20000)")
    experiment.add_argument("--out", type=Path, default=None, help="folder for PNG figures (default: none)")

    add_reproduce_command(commands)
    return parser


def _add_train_options(parser: argparse.ArgumentParser, *, single_k: bool = True) -> None:
    group = parser.add_argument_group("ensemble")
    if single_k:
        group.add_argument("--k", type=int, default=None, help="permutation size k (default: 8)")
    else:
        group.add_argument("--k", type=int, nargs="+", default=None, help="permutation sizes")
    group.add_argument(
        "--members",
        type=int,
        nargs="+" if not single_k else None,
        default=None,
        help="ensemble size M (p-all: several)",
    )
    group.add_argument("--width", type=int, default=None, help="hidden width n (default: 1024)")
    group.add_argument(
        "--parametrization",
        choices=("ntk", "standard"),
        default=None,
        help="ntk (-> NTK-GP) or standard (-> NNGP-GP, the official code) (default: ntk; figure1: standard)",
    )
    group.add_argument("--backend", choices=BACKENDS, default=None, help="jax (default) or torch")
    group.add_argument("--dtype", choices=DTYPES, default=None, help="float64 (default) or float32")
    group.add_argument("--lr", type=float, default=None, help="learning rate (default: 1/lambda_max)")
    group.add_argument("--steps", type=int, default=None, help="GD steps (default: 30 e-folds of lambda_min)")
    group.add_argument("--loss", choices=LOSSES, default=None, help="sum (1/2 sum) or mean (F.mse_loss)")
    group.add_argument("--bias", action="store_true", default=None, help="train biases")
    group.add_argument(
        "--member-chunk",
        type=int,
        default=None,
        help="members trained at once (default: automatic, cache-sized on a CPU)",
    )
    group.add_argument("--device", default=None, help="torch device (default: cuda > mps > cpu)")
    group.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    group.add_argument(
        "--paper",
        action="store_true",
        help="the official recipe: standard, width 50,000, lr 1e-3 on F.mse_loss, 10,000 epochs",
    )
    group.add_argument("--config", type=Path, default=None, help="a TrainConfig JSON file (flags override it)")


def _train_config(args: argparse.Namespace, k: int, members: int | None, *, standard: bool = False) -> TrainConfig:
    if args.config is not None:
        config = TrainConfig.from_json(args.config.read_text())
    elif args.paper:
        config = TrainConfig.paper(k)
    else:
        config = TrainConfig(k=k, parametrization="standard" if standard else "ntk")
    overrides = {
        "k": k if args.config is None or args.k is not None else None,
        "n_members": members,
        "width": args.width,
        "parametrization": args.parametrization,
        "backend": args.backend,
        "dtype": args.dtype,
        "learning_rate": args.lr,
        "steps": args.steps,
        "loss": args.loss,
        "bias": args.bias,
        "member_chunk": args.member_chunk,
        "device": args.device,
        "seed": args.seed,
    }
    return config.replace(**{name: value for name, value in overrides.items() if value is not None})


def _train(args: argparse.Namespace) -> dict[str, Any]:
    from ntk_permute.evaluation import evaluate_all_inputs, level_statistics
    from ntk_permute.training import train_ensemble

    k = args.k if args.k is not None else 8
    config = _train_config(args, k, args.members)
    if args.config is None and args.members is None and not args.paper:
        config = config.replace(n_members=256)
    perm = random_permutation(config.k, numpy_rng(config.seed, "ntk-permute", "train", "permutation"))
    with progress(total=config.n_members, desc=f"training k={config.k}", unit="member") as bar:
        done = [0]

        def advance(n: int) -> None:
            bar.update(n - done[0])
            done[0] = n

        ensemble = train_ensemble(config, perm, on_chunk=advance)
    result: dict[str, Any] = {
        "config": config.to_dict(),
        "perm": perm,
        "schedule": ensemble.schedule,
        "max_residual": float(ensemble.residual_.max()),
    }
    if config.k >= 2:
        stats = level_statistics(ensemble, 2)
        theory = {
            kind: m_form(config.k, 2, kind=kind, w_std=config.w_std, b_std=config.b_std).as_rows()[0] for kind in KINDS
        }
        result["m2"] = {"ours": stats, "theory": theory}
    if config.k <= 16 and not args.no_all_inputs:
        with progress(total=2**config.k - 1, desc="all inputs", unit="input") as bar:
            seen = [0]

            def tick(n: int) -> None:
                bar.update(n - seen[0])
                seen[0] = n

            result["all_inputs"] = evaluate_all_inputs(ensemble, eps=args.eps, on_chunk=tick)
    return result


def _human_train(result: dict[str, Any]) -> str:
    c, s = result["config"], result["schedule"]
    lines = [
        f"{c['n_members']} members, k = {c['k']}, n = {c['width']}, {c['parametrization']} parametrisation, "
        f"{c['backend']} {c['dtype']}: lr {s.learning_rate:.4g}, {s.steps} steps, max training residual "
        f"{result['max_residual']:.3g}"
    ]
    if "m2" in result:
        ours = result["m2"]["ours"]
        lines.append(f"{'m = 2':>10} {'mu_on':>10} {'mu_off':>10} {'variance':>10}")
        lines.append(
            f"{'ours':>10} {ours.mu_on:>10.5f} {ours.mu_off:>10.5f} {ours.variance:>10.3e}   "
            f"(se {ours.se_on:.1e} / {ours.se_off:.1e} / {ours.se_variance:.1e})"
        )
        for kind, row in result["m2"]["theory"].items():
            off = math.nan if row["mu_off"] is None else row["mu_off"]
            lines.append(f"{kind + '-GP':>10} {row['mu_on']:>10.5f} {off:>10.5f} {row['variance']:>10.3e}")
    if "all_inputs" in result:
        a = result["all_inputs"]
        lines.append(
            f"all {a.n_inputs} inputs: {a.n_exact} exact with mean > {a.eps:g}, {a.n_exact_strict} with the "
            f"strict mean > 0 ({a.strict_failures_training} training inputs fail it; largest |off-bit| there "
            f"{a.max_abs_training_off:.2g}); sign margin {a.min_margin:.3g}"
        )
    return "\n".join(lines)


def _experiment(args: argparse.Namespace) -> dict[str, Any]:
    from ntk_permute import experiments

    result: dict[str, Any] = {"experiment": args.name}
    if args.name == "scaling":
        ks = args.k or [2**i for i in range(2, 13)]
        tables = {kind: experiments.scaling_table(ks, delta=args.delta, kind=kind) for kind in _kinds(args.gp)}
        result["rows"] = [
            {"kind": kind, "k": r.k, "single": r.single, "all": r.all, "crude": r.crude, **r.ratios()}
            for kind, rows in tables.items()
            for r in rows
        ]
        if args.out is not None:
            result["figure"] = experiments.plot_scaling(tables, args.out / "scaling.png")
        return result
    if args.name == "p-all":
        from ntk_permute.montecarlo import joint_exact_probability

        members = args.members or [50, 100, 200, 500, 1000]
        rows = []
        for k in args.k or [8]:
            for kind in _kinds(args.gp):
                with progress(total=args.draws, desc=f"P_all {kind}-GP k={k}", unit="draw") as bar:
                    seen = [0]

                    def tick(n: int, bar: Any = bar, seen: list[int] = seen) -> None:
                        bar.update(n - seen[0])
                        seen[0] = n

                    est = joint_exact_probability(
                        k,
                        members,
                        kind=kind,
                        draws=args.draws,  # type: ignore[arg-type]
                        rng=numpy_rng(args.seed, "ntk-permute", "p_all", k, kind),
                        on_chunk=tick,
                    )
                rows += [
                    {"k": k, "kind": kind, "M": int(m), "p_all": float(p), "se": float(e)}
                    for m, p, e in zip(est.members, est.probability, est.standard_error, strict=True)
                ]
        result["rows"] = rows
        return result
    ks = args.k or [5, 10, 15]
    if args.members is not None:
        raise ConfigError("--members: not used by figure1; use --pool for the members trained per k")
    config = _train_config(args, ks[0], 16, standard=True)
    with progress(total=len(ks), desc="figure1", unit="k") as bar:
        outcome = experiments.figure1(
            ks,
            config,
            level=args.level,
            num_tests=args.num_tests,
            max_members=args.pool,
            seed=args.seed,
            on_k=lambda _k, _c: bar.update(1),
        )
    result["level"] = outcome.level
    result["config"] = outcome.config
    result["rows"] = outcome.rows()
    if args.out is not None:
        result["figure"] = experiments.plot_figure1(outcome, args.out / "figure1.png")
    return result


def _human_experiment(result: dict[str, Any]) -> str:
    rows = result["rows"]
    if not rows:
        return "no rows"
    keys = [key for key in rows[0] if key not in ("max_residual",)]
    lines = ["  ".join(f"{key:>14}" for key in keys)]
    for row in rows:
        cells = []
        for key in keys:
            value = row[key]
            cells.append(f"{value:>14.4g}" if isinstance(value, float) else f"{'-' if value is None else value!s:>14}")
        lines.append("  ".join(cells))
    if "figure" in result:
        lines.append(f"figure: {result['figure']}")
    return "\n".join(lines)


def _analytic(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"k": args.k, "w_std": args.w_std, "b_std": args.b_std, "t": args.t}
    if not args.exhaustive:
        for kind in _kinds(args.kind):
            form = m_form(
                args.k, args.m, kind=kind, t=args.t, learning_rate=args.lr, w_std=args.w_std, b_std=args.b_std
            )
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

            outcome = exhaustive_check(
                args.k,
                perms,
                kind=kind,
                eps=args.eps,
                mode=args.mode,
                t=args.t,
                learning_rate=args.lr,
                w_std=args.w_std,
                b_std=args.b_std,
                chunk_size=args.chunk_size,
                on_chunk=advance,
            )
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
            lines.append(
                f"{kind}-GP, k = {result['k']}, {result['n_perms']} permutation(s), eps = {result['eps']:g}: "
                f"exact on {min(n_exact)}..{max(n_exact)} of {block['n_inputs']} inputs "
                f"({'all exact' if block['all_exact'] else 'NOT all exact'}); min on-bit mean "
                f"{block['min_on']:.4g}, max off-bit mean {block['max_off']:.3g}"
            )
    return "\n".join(lines)


def _complexity(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    for k in args.k:
        for kind in _kinds(args.kind):
            ratio, level, bit = worst_ratio(k, kind=kind, w_std=args.w_std, b_std=args.b_std)
            for delta in args.delta:
                for bound in args.bound:
                    size = ensemble_size(
                        k,
                        delta,
                        bound=bound,
                        m=args.m if bound == "single" else None,
                        kind=kind,
                        w_std=args.w_std,
                        b_std=args.b_std,
                    )
                    rows.append(
                        {
                            "k": k,
                            "kind": kind,
                            "delta": delta,
                            "bound": bound,
                            "m": args.m if bound == "single" else None,
                            "M": size,
                            "worst_ratio": ratio,
                            "worst_m": level,
                            "worst_bit": bit,
                        }
                    )
    return rows


def _human_complexity(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'k':>8} {'kind':>5} {'delta':>8} {'bound':>7} {'M':>14} {'max s2/mu2':>12}"]
    for r in rows:
        lines.append(
            f"{r['k']:>8} {r['kind']:>5} {r['delta']:>8g} {r['bound']:>7} {r['M']:>14} {r['worst_ratio']:>12.2f}"
        )
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
        if args.command == "train":
            emit_result(_train(args), as_json=args.json, human=_human_train)
            return 0
        if args.command == "experiment":
            emit_result(_experiment(args), as_json=args.json, human=_human_experiment)
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
