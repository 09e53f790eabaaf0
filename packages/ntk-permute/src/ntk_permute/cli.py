"""The `ntk-permute` command line: analytic GP predictions, ensemble sizes and the quick reproduction."""

from __future__ import annotations

import argparse
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ntk_permute.__about__ import __version__
from ntk_permute.closed_form import m_form
from ntk_permute.complexity import BOUNDS, MAX_K, ensemble_size, worst_ratio
from ntk_permute.exhaustive import DEFAULT_EPS, MAX_EXHAUSTIVE_K, MODES, exhaustive_check
from ntk_permute.gp import random_permutation
from ntk_permute.montecarlo import MAX_MC_K
from ntk_permute.reproduction import quick
from ntk_permute.training import BACKENDS, DTYPES, LOSSES, TrainConfig, training_devices
from repro_core.cli import (
    Bounded,
    InputPath,
    add_command,
    add_device_option,
    add_seed_option,
    make_parser,
    positive_float,
    positive_int,
    progress,
    run_main,
    value_errors_as_config_errors,
)
from repro_core.cli import emit as emit_result
from repro_core.errors import ConfigError, InputError
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
#: Largest k whose per-level table `analytic` lists without --m (one row per level).
MAX_LISTED_K = 100_000
#: Largest k for training: the default schedule diagonalises the k x k analytic training kernel.
MAX_TRAIN_K = 4096


#: Option types (repro-core's, so that the bad-input harness can attack them): a value outside the range is a usage
#: error naming the option and the range, exit 2, before any work.
NON_NEGATIVE = Bounded(float, low=0)
PROBABILITY = Bounded(float, low=0, high=1, low_open=True, high_open=True)


def _check_k_limit(values: Sequence[int], limit: int, name: str, reason: str, *, low: int = 1) -> None:
    """A ConfigError naming --k and the range for the first k outside low..limit, before any work starts."""
    for k in values:
        if k < low:
            raise ConfigError(f"--k {k}: {name} needs k >= {low}")
        if k > limit:
            raise ConfigError(f"--k {k}: above the limit {limit} of {name} ({reason})")


def _check_levels(levels: Sequence[int], k: int) -> None:
    for m in levels:
        if not 1 <= m <= k:
            raise ConfigError(f"--m {m}: must be a number of ones in 1..k = 1..{k}")


def _kinds(value: str) -> list[str]:
    return list(KINDS) if value == "both" else [value]


def _add_gp_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kind", choices=[*KINDS, "both"], default="both", help="ntk = NTK-GP, nngp = NNGP-GP (default: both)"
    )
    parser.add_argument(
        "--w-std", type=positive_float, default=1.0, help="weight standard deviation sigma_w > 0 (default: 1)"
    )
    parser.add_argument(
        "--b-std", type=NON_NEGATIVE, default=0.0, help="bias standard deviation sigma_b >= 0 (default: 0)"
    )


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
    analytic.add_argument(
        "--k",
        type=positive_int,
        required=True,
        help=f"input dimension k (<= {MAX_LISTED_K:,} without --m, <= {MAX_EXHAUSTIVE_K} with --exhaustive)",
    )
    analytic.add_argument(
        "--m", type=positive_int, nargs="+", help=f"numbers of ones to report (default: 1..k, for k <= {MAX_LISTED_K})"
    )
    analytic.add_argument("--t", type=NON_NEGATIVE, default=None, help="training time >= 0 (default: t = infinity)")
    analytic.add_argument(
        "--lr", type=positive_float, default=1.0, help="learning rate eta for finite --t (default: 1)"
    )
    _add_gp_options(analytic)
    group = analytic.add_argument_group("exhaustive check")
    group.add_argument("--exhaustive", action="store_true", help="check every nonzero input")
    group.add_argument("--perms", type=positive_int, default=1, help="number of random permutations (default: 1)")
    add_seed_option(group, help="seed of the permutations, 0 to 2**32 - 1 (default: 0)")
    group.add_argument(
        "--eps",
        type=NON_NEGATIVE,
        default=DEFAULT_EPS,
        help=f"rounding tolerance >= 0 (default: {DEFAULT_EPS:g}; 0 = the fragile strict rule)",
    )
    group.add_argument(
        "--mode",
        choices=MODES,
        default="kernel",
        help="kernel = full Gram matrices, mform = closed form (default: kernel)",
    )
    group.add_argument("--chunk-size", type=positive_int, default=65536, help="inputs per chunk (default: 65536)")

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
    complexity.add_argument(
        "--k", type=Bounded(int, low=1, high=MAX_K), nargs="+", required=True, help=f"input dimensions (<= {MAX_K:,})"
    )
    complexity.add_argument(
        "--delta", type=PROBABILITY, nargs="+", default=[0.01], help="failure budgets in (0, 1) (default: 0.01)"
    )
    complexity.add_argument(
        "--bound", choices=BOUNDS, nargs="+", default=list(BOUNDS), help="which sizes (default: all three)"
    )
    complexity.add_argument(
        "--m", type=positive_int, default=None, help="level of the single input, 1..k (default: the worst)"
    )
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
    train.add_argument(
        "--eps", type=NON_NEGATIVE, default=1e-6, help="rounding tolerance >= 0 for trained nets (default: 1e-6)"
    )
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
    experiment.add_argument(
        "--level", type=PROBABILITY, default=0.9, help="figure1: target accuracy in (0, 1) (default: 0.9)"
    )
    experiment.add_argument(
        "--num-tests", type=positive_int, default=1000, help="figure1: m = 2 test inputs (default: 1000)"
    )
    experiment.add_argument(
        "--pool", type=positive_int, default=None, help="figure1: members per k (default: 2x the NNGP-GP prediction)"
    )
    experiment.add_argument(
        "--delta", type=PROBABILITY, default=0.01, help="scaling: failure budget in (0, 1) (default: 0.01)"
    )
    experiment.add_argument("--gp", choices=[*KINDS, "both"], default="both", help="scaling / p-all: which GP")
    experiment.add_argument(
        "--draws", type=positive_int, default=20000, help="p-all: Monte-Carlo draws (default: 20000)"
    )
    experiment.add_argument("--out", type=Path, default=None, help="folder for PNG figures (default: none)")

    add_reproduce_command(commands)
    return parser


def _add_train_options(parser: argparse.ArgumentParser, *, single_k: bool = True) -> None:
    group = parser.add_argument_group("ensemble")
    if single_k:
        group.add_argument(
            "--k",
            type=Bounded(int, low=1, high=MAX_TRAIN_K),
            default=None,
            help=f"permutation size k, 1 to {MAX_TRAIN_K:,} (default: 8)",
        )
    else:
        group.add_argument(
            "--k",
            type=Bounded(int, low=2, high=MAX_K),
            nargs="+",
            default=None,
            help=f"permutation sizes (figure1: <= {MAX_TRAIN_K:,}, scaling: <= {MAX_K:,}, p-all: <= {MAX_MC_K})",
        )
    group.add_argument(
        "--members",
        type=positive_int,
        nargs="+" if not single_k else None,
        default=None,
        help="ensemble size M (p-all: several)",
    )
    group.add_argument("--width", type=positive_int, default=None, help="hidden width n (default: 1024)")
    group.add_argument(
        "--parametrization",
        choices=("ntk", "standard"),
        default=None,
        help="ntk (-> NTK-GP) or standard (-> NNGP-GP, the official code) (default: ntk; figure1: standard)",
    )
    group.add_argument("--backend", choices=BACKENDS, default=None, help="jax (default) or torch")
    group.add_argument("--dtype", choices=DTYPES, default=None, help="float64 (default) or float32")
    group.add_argument("--lr", type=positive_float, default=None, help="learning rate > 0 (default: 1/lambda_max)")
    group.add_argument("--steps", type=positive_int, default=None, help="GD steps (default: 30 e-folds of lambda_min)")
    group.add_argument("--loss", choices=LOSSES, default=None, help="sum (1/2 sum) or mean (F.mse_loss)")
    group.add_argument("--bias", action="store_true", default=None, help="train biases")
    group.add_argument(
        "--member-chunk",
        type=positive_int,
        default=None,
        help="members trained at once (default: automatic, cache-sized on a CPU)",
    )
    add_device_option(
        group,
        help="auto, cpu, cuda, cuda:N or mps (torch only), checked before any work (default: auto: the config's "
        "device, else $REPRO_DEVICE, else torch: cuda > mps > cpu, JAX: its default devices)",
    )
    add_seed_option(group, default=None, help="random seed, 0 to 2**32 - 1 (default: the config's, else 0)")
    group.add_argument(
        "--paper",
        action="store_true",
        help="the official recipe: standard, width 50,000, lr 1e-3 on F.mse_loss, 10,000 epochs",
    )
    group.add_argument(
        "--config",
        type=InputPath(suffixes=(".json",)),
        default=None,
        help="a TrainConfig JSON file (flags override it; the same checks apply to its values)",
    )


def _load_config(path: Path) -> TrainConfig:
    """The `TrainConfig` in JSON file `path`; every error is an `InputError` naming the file, line and field."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(f"not a UTF-8 text file (byte {exc.start}: {exc.reason})", path=path, line=line) from None
    try:
        values = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON ({exc.msg}, column {exc.colno})", path=path, line=exc.lineno) from None
    if not isinstance(values, dict):
        raise InputError(f"expected a JSON object of TrainConfig fields, got {type(values).__name__}", path=path)
    known = set(TrainConfig.__dataclass_fields__)
    for key in values:
        if key not in known:
            raise InputError(
                f"unknown field; known: {', '.join(sorted(known))}", path=path, line=_line_of(text, key), field=key
            )
    for key, value in values.items():  # one field at a time, so that the error names the field at fault
        try:
            TrainConfig(**{key: value})
        except (ConfigError, TypeError) as exc:
            message = str(exc).removeprefix(f"{key}: ")
            raise InputError(message, path=path, line=_line_of(text, key), field=key) from None
    try:
        return TrainConfig(**values)
    except (ConfigError, TypeError) as exc:
        raise InputError(str(exc), path=path) from None


def _line_of(text: str, key: str) -> int | None:
    """The 1-based line of the first `"key"` in JSON `text` (None if not found)."""
    at = text.find(json.dumps(key))
    return None if at < 0 else text.count("\n", 0, at) + 1


def _train_config(args: argparse.Namespace, k: int, members: int | None, *, standard: bool = False) -> TrainConfig:
    if args.config is not None:
        config = _load_config(args.config)
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
        "seed": args.seed,
    }
    config = config.replace(**{name: value for name, value in overrides.items() if value is not None})
    return _with_device(config, args)


def _source(args: argparse.Namespace, option: str, field: str) -> str:
    """Who set a training value: the option, or the config file's field when the option was not given."""
    if args.config is not None and getattr(args, option.lstrip("-").replace("-", "_")) in (None, "auto"):
        return f"{args.config} field {field!r}"
    return option


def _with_device(config: TrainConfig, args: argparse.Namespace) -> TrainConfig:
    """`config` with `--device` (or the config's device) resolved for its backend; an unknown or unavailable device
    is a ConfigError naming it, before any work."""
    from repro_core.device import DEVICE_ENV

    request = args.device if args.device != "auto" else (config.device or "auto")
    where = _source(args, "--device", "device")
    if request == "auto" and config.backend == "jax" and not os.environ.get(DEVICE_ENV):
        config = config.replace(device=None)  # JAX's default devices
    else:
        config = config.replace(device=None if request == "auto" else request)
    try:
        devices = training_devices(config)
    except ConfigError as exc:
        raise ConfigError(f"{where} {request}: {exc}") from None
    if config.backend == "torch":
        config = config.replace(device=str(devices[0]))
    return config


def _on_cpu(config: TrainConfig) -> bool:
    return all(
        getattr(device, "platform", getattr(device, "type", "cpu")) == "cpu" for device in training_devices(config)
    )


def _check_train_k(config: TrainConfig, args: argparse.Namespace, name: str) -> None:
    """The k limit of training, for a k from --k or from the config file alike."""
    if config.k > MAX_TRAIN_K:
        raise ConfigError(
            f"{_source(args, '--k', 'k')} {config.k}: above the limit {MAX_TRAIN_K} of {name} (the schedule "
            "diagonalises the k x k training kernel)"
        )


def _check_finite(residual: float, config: TrainConfig) -> None:
    """Refuse a diverged training instead of reporting NaN statistics."""
    if not math.isfinite(residual):
        raise ConfigError(
            f"--lr {config.learning_rate}: training diverged (non-finite outputs); lower the learning rate or leave "
            "it to the default 1/lambda_max of the analytic kernel"
        )


def _train(args: argparse.Namespace) -> dict[str, Any]:
    from ntk_permute.evaluation import evaluate_all_inputs, level_statistics
    from ntk_permute.memory import check_fits, train_needs
    from ntk_permute.training import train_ensemble

    config = _train_config(args, args.k if args.k is not None else 8, args.members)
    if args.config is None and args.members is None and not args.paper:
        config = config.replace(n_members=256)
    _check_train_k(config, args, "train")
    check_fits(train_needs(config, on_cpu=_on_cpu(config)))
    perm = random_permutation(config.k, numpy_rng(config.seed, "ntk-permute", "train", "permutation"))
    with progress(total=config.n_members, desc=f"training k={config.k}", unit="member") as bar:
        done = [0]

        def advance(n: int) -> None:
            bar.update(n - done[0])
            done[0] = n

        ensemble = train_ensemble(config, perm, on_chunk=advance)
    _check_finite(float(ensemble.residual_.max()), config)
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


def _check_out(folder: Path | None) -> None:
    """An output folder that cannot hold the figure, or a missing matplotlib, is refused before any work."""
    if folder is None:
        return
    from repro_core.optional import require

    require("matplotlib", "ntk-permute experiment --out", extra="plot")
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--out {folder}: exists and is not a folder")


def _experiment(args: argparse.Namespace) -> dict[str, Any]:
    from ntk_permute import experiments
    from ntk_permute.memory import check_fits, figure1_needs, p_all_needs

    _check_out(args.out)
    if args.name != "figure1" and args.device != "auto":  # figure1 resolves it for its backend
        from repro_core.device import pick_device

        try:
            pick_device(args.device)  # scaling and p-all compute on the CPU; an unavailable device is still an error
        except ConfigError as exc:
            raise ConfigError(f"--device {args.device}: {exc}") from None
    result: dict[str, Any] = {"experiment": args.name}
    if args.name == "scaling":
        ks = args.k or [2**i for i in range(2, 13)]
        tables: dict[str, list[experiments.ScalingRow]] = {kind: [] for kind in _kinds(args.gp)}
        with progress(total=len(ks) * len(tables), desc="scaling", unit="k") as bar:
            for kind, rows in tables.items():
                for k in ks:
                    rows += experiments.scaling_table([k], delta=args.delta, kind=kind)
                    bar.update(1)
        result["rows"] = [
            {"kind": kind, "k": r.k, "single": r.single, "all": r.all, "crude": r.crude, **r.ratios()}
            for kind, rows in tables.items()
            for r in rows
        ]
        if args.out is not None:
            result["figure"] = experiments.plot_scaling(tables, args.out / "scaling.png")
        return result
    seed = args.seed if args.seed is not None else 0
    if args.name == "p-all":
        from ntk_permute.montecarlo import joint_exact_probability

        members = args.members or [50, 100, 200, 500, 1000]
        ks = args.k or [8]
        _check_k_limit(ks, MAX_MC_K, "p-all", "a Cholesky of the [2^k - 1 - k]^2 covariance", low=2)
        check_fits(p_all_needs(max(ks), draws=args.draws, n_members=len(members)))
        rows = []
        for k in ks:
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
                        rng=numpy_rng(seed, "ntk-permute", "p_all", k, kind),
                        on_chunk=tick,
                    )
                rows += [
                    {"k": k, "kind": kind, "M": int(m), "p_all": float(p), "se": float(e)}
                    for m, p, e in zip(est.members, est.probability, est.standard_error, strict=True)
                ]
        result["rows"] = rows
        return result
    ks = args.k or [5, 10, 15]
    _check_k_limit(ks, MAX_TRAIN_K, "figure1", "the schedule diagonalises the k x k training kernel", low=2)
    if args.members is not None:
        raise ConfigError("--members: not used by figure1; use --pool for the members trained per k")
    config = _train_config(args, ks[0], 16, standard=True)
    on_cpu = _on_cpu(config)
    for k in ks:
        pool = args.pool if args.pool is not None else experiments.default_pool(k, args.level)
        check_fits(figure1_needs(config.replace(k=k), pool=pool, num_tests=args.num_tests, on_cpu=on_cpu))
    with progress(total=len(ks), desc="figure1", unit="k") as bar:
        outcome = experiments.figure1(
            ks,
            config,
            level=args.level,
            num_tests=args.num_tests,
            max_members=args.pool,
            seed=config.seed,
            on_k=lambda _k, _c: bar.update(1),
        )
    for curve in outcome.curves:
        _check_finite(curve.max_residual, config)
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
    if args.m is not None:
        _check_levels(args.m, args.k)
    if args.exhaustive:
        from ntk_permute.memory import check_fits, exhaustive_needs

        _check_k_limit([args.k], MAX_EXHAUSTIVE_K, "--exhaustive", "2^k - 1 inputs")
        check_fits(exhaustive_needs(args.k, perms=args.perms, chunk_size=args.chunk_size))
    elif args.m is None and args.k > MAX_LISTED_K:
        raise ConfigError(
            f"--k {args.k}: above the limit {MAX_LISTED_K} of the per-level table (one row per m = 1..k); "
            "choose levels with --m"
        )
    result: dict[str, Any] = {"k": args.k, "w_std": args.w_std, "b_std": args.b_std, "t": args.t}
    if not args.exhaustive:
        for kind in _kinds(args.kind):
            form = m_form(
                args.k, args.m, kind=kind, t=args.t, learning_rate=args.lr, w_std=args.w_std, b_std=args.b_std
            )
            result[kind] = form.as_rows()
        return result
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
    _check_k_limit(args.k, MAX_K, "complexity", "every bound needs all k levels: O(k) time and memory")
    if args.m is not None:
        if "single" not in args.bound:
            raise ConfigError("--m: only used by --bound single")
        _check_levels([args.m], min(args.k))
    rows = []
    kinds = _kinds(args.kind)
    bar = progress(total=len(args.k) * len(kinds), desc="ensemble sizes", unit="k")
    for k in args.k:
        for kind in kinds:
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
            bar.update(1)
    bar.close()
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
    with value_errors_as_config_errors():  # the library's argument checks name the argument
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
    raise AssertionError(f"unhandled command {args.command!r}")  # argparse rejects unknown commands first


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(_main, build_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
