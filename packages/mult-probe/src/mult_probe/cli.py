"""The `mult-probe` command line: data generation, training (SFT / auxiliary loss), evaluation, quick reproduction."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mult_probe.__about__ import __version__
from mult_probe.reproduction import quick
from repro_core.cli import (
    Bounded,
    InputPath,
    add_command,
    add_device_option,
    add_seed_option,
    make_parser,
    non_negative_int,
    positive_float,
    positive_int,
    progress,
    run_main,
    value_errors_as_config_errors,
)
from repro_core.cli import emit as emit_result
from repro_core.errors import ConfigError, InputError
from repro_core.umbrella import add_reproduce_command, reproduce_package

__all__ = ["build_parser", "main"]

_log = logging.getLogger("mult_probe.cli")

DESCRIPTION = """Why transformers fail at multi-digit multiplication (arXiv 2510.00184): data in Deng et al.'s
format, a small hookable transformer, standard fine-tuning and the running-sum auxiliary loss.

commands:
  data        generate seeded k-by-l lines (CoT or no-CoT), or --check a Deng file byte for byte
  train       train a model (--method sft | aux | icot); checkpoints, resume in --run-dir, torchrun
  eval        greedy exact match and per-digit accuracy of a trained run on held-out pairs
  probe       linear (ridge) probes for the running sums c_hat: MAE and R^2 per hook and answer position
  analyze     the paper's analyses of a trained run (attrib, dla, probe, dag, fourier, prism, minkowski)
  dynamics    plot a run's per-position training dynamics (train --dynamics-every) beside the authors' log
  reproduce   this package's quick reproduction (also run by `repro reproduce`)

Not implemented yet: the paper's other
analyses."""


#: Operands of up to 18 digits: generation draws them as int64 and the products, running sums and answers of a
#: training run (k + l <= 18, checked by `TrainConfig`) stay within int64 too.
DIGITS = Bounded(int, low=1, high=18)
#: Operand pairs are drawn and held in memory (with a set of those seen), so counts are capped well below RAM limits.
MAX_PAIRS = 10**8
PAIR_COUNT = Bounded(int, low=1, high=MAX_PAIRS)
#: A seed that is not `--seed` (the counterfactual digits of `analyze attrib`): the range every RNG accepts.
EXTRA_SEED = Bounded(int, low=0, high=2**32 - 1)
#: AdamW learning rate: positive, and above 1 every preset diverges on the first steps.
LEARNING_RATE = Bounded(float, low=0, high=1, low_open=True)
DENG_FILE = InputPath(suffixes=(".txt",))
#: The analyses need a few pairs (probes split them into training and validation pairs).
MIN_ANALYSIS_PAIRS = 5
PRESETS = ("tiny", "small", "paper", "paper_sft", "paper_12l8h")


@dataclasses.dataclass(frozen=True)
class _SmoothingLambda(Bounded):
    """`--smoothing-lambda`: a positive number, or `inf` (Deng et al.'s spelling of "no removal smoothing")."""

    def describe(self) -> str:
        return "a finite number > 0, or inf (no smoothing)"

    def __call__(self, text: str) -> int | float:
        if text.strip().lower() in ("inf", "+inf", "infinity", "+infinity"):
            return math.inf
        return super().__call__(text)


@dataclasses.dataclass(frozen=True)
class _RunOrCheckpoint(InputPath):
    """`--checkpoint`: a `train --run-dir` folder or one checkpoint file, either must exist and be readable."""

    def __call__(self, text: str) -> Path:
        path = Path(text)
        if text and path.is_dir():
            if not os.access(path, os.R_OK | os.X_OK):
                raise argparse.ArgumentTypeError(f"{text}: permission denied")
            return path
        return super().__call__(text)


def _read_pairs(path: Path, *, fits: tuple[int, int] | None = None, exact: bool = False) -> np.ndarray:
    """`[n, 2]` operand pairs of a Deng-format file; an empty file, or a line that does not fit the run, is an error.

    `fits=(k, l)` requires lines written in the run's k x l layout (k and l digits; a 3x3 line is not zero-padded
    into a 4x4 run), `exact` also operands with exactly k and l significant digits; checked line by line so the
    error names the line, before any model is trained or evaluated.
    """
    from mult_probe.data import read_numbered_examples

    rows = read_numbered_examples(path)
    if not rows:
        raise InputError("no examples (an empty file?)", path=path)
    if fits is not None:
        k, l = fits
        for line_no, e in rows:
            too_short = exact and (e.a < 10 ** (k - 1) or e.b < 10 ** (l - 1))
            if (e.k, e.l) != (k, l) or too_short:
                raise InputError(
                    f"{e.a} * {e.b} (a {e.k}x{e.l} line) does not fit the run's {k}x{l} layout",
                    path=path,
                    line=line_no,
                    field="input",
                )
    return np.array([(e.a, e.b) for _, e in rows], dtype=np.int64)


def _operands(paths: Sequence[Path]) -> list[tuple[int, int]]:
    """Operand pairs of files to exclude (any layout: pairs of another layout simply never occur)."""
    return [(int(a), int(b)) for path in paths for a, b in _read_pairs(path)]


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser("mult-probe", DESCRIPTION, __version__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = add_command(
        commands,
        "data",
        help="generate Deng-format lines, or check a file against the rule",
        description="Seeded k-by-l multiplication lines 'input||cot #### answer' (digits least significant first), "
        "excluding the operands of --exclude files; or --check FILE: rebuild FILE from its operands "
        "and compare byte for byte (with --exclude: and report lines whose operands those files hold).",
        epilog="examples:\n  mult-probe data --k 4 --n 808000 --exclude valid.txt test.txt --out train.txt\n"
        "  mult-probe data --k 3 --n 1000 --no-cot --out valid3.txt\n  mult-probe data --check valid.txt --json",
    )
    data.add_argument("--k", type=DIGITS, default=4, help="digits of the first operand, 1 to 18 (default: 4)")
    data.add_argument("--l", type=DIGITS, default=None, help="digits of the second operand, 1 to 18 (default: k)")
    data.add_argument("--n", type=PAIR_COUNT, default=1000, help=f"number of lines, 1 to {MAX_PAIRS:.0e} (1000)")
    add_seed_option(data)
    data.add_argument("--no-cot", action="store_true", help="write 'input|| #### answer' lines")
    data.add_argument(
        "--exclude", type=DENG_FILE, nargs="*", default=[], help="Deng-format files whose operands to skip"
    )
    data.add_argument("--out", type=Path, help="output file (required unless --check)")
    data.add_argument("--check", type=DENG_FILE, help="verify that this file follows the rule byte for byte")

    train = add_command(
        commands,
        "train",
        help="train: standard fine-tuning, the running-sum auxiliary loss, or ICoT",
        description="Train a transformer on 'a * b <eos> <eos> #### answer <eos>' (no CoT). --method aux adds "
        "linear regression heads on the last layer's hook_z predicting c_hat at every answer step. --method icot "
        "starts from 'a * b <eos> cot <eos> #### answer <eos>' and removes CoT tokens from the left on Deng et "
        "al.'s schedule (removal smoothing, optimizer reset). Under torchrun every rank trains its share of "
        "each global batch (gloo on CPU, nccl on GPU); rank 0 writes and prints.",
        epilog="examples:\n  mult-probe train --k 3 --steps 1500 --method sft --run-dir runs/sft3\n"
        "  mult-probe train --k 4 --preset paper_sft --lr 5e-5 --batch-size 32 --method aux --device cuda\n"
        "  mult-probe train --k 4 --preset paper --method icot --train-size 808000 --batch-size 32 --lr 5e-5 "
        "--steps 328250 --device cuda\n"
        "  mult-probe train --resume runs/sft3 --steps 3000\n"
        "  mult-probe train --k 3 --run-dir runs/sft3 --dynamics-every 25 --log-every 100\n"
        "  torchrun --nproc_per_node 2 -m mult_probe.cli train --k 3 --steps 200 --batch-size 64",
    )
    train.add_argument("--method", choices=["sft", "aux", "icot"], default="sft", help="objective (default: sft)")
    train.add_argument("--k", type=DIGITS, default=3, help="digits of the first operand (default: 3; k + l <= 18)")
    train.add_argument("--l", type=DIGITS, default=None, help="digits of the second operand (default: k)")
    train.add_argument("--preset", choices=PRESETS, default="tiny", help="model preset (default: tiny)")
    train.add_argument("--steps", type=positive_int, default=1500, help="optimiser steps (default: 1500)")
    train.add_argument("--batch-size", type=positive_int, default=128, help="sequences per step (default: 128)")
    train.add_argument("--lr", type=LEARNING_RATE, default=1e-3, help="AdamW learning rate in (0, 1] (default: 1e-3)")
    add_seed_option(train)
    train.add_argument("--train-size", type=PAIR_COUNT, default=None, help="fixed training split (default: fresh)")
    train.add_argument("--eval-size", type=PAIR_COUNT, default=1000, help="held-out pairs when no --valid (1000)")
    train.add_argument("--eval-every", type=non_negative_int, default=0, help="evaluate every N steps (0: at the end)")
    train.add_argument("--checkpoint-every", type=non_negative_int, default=0, help="checkpoint every N steps (0: end)")
    train.add_argument("--aux-lambda", type=Bounded(float, low=0), default=1.0, help="aux loss weight >= 0 (1)")
    train.add_argument(
        "--aux-heads", type=non_negative_int, nargs="+", default=[0, 1], help="heads with probes (default: 0 1)"
    )
    train.add_argument("--aux-layer", type=Bounded(int), default=-1, help="layer of those heads (default: -1, last)")
    train.add_argument("--aux-target-scale", type=positive_float, default=100.0, help="c_hat divisor (default: 100)")
    train.add_argument(
        "--remove-per-epoch", type=positive_float, default=8.0, help="icot: CoT tokens removed per epoch (8)"
    )
    train.add_argument("--removal-side", choices=["left", "right"], default="left", help="icot: cut side (left)")
    train.add_argument(
        "--smoothing-lambda",
        type=_SmoothingLambda(float, low=0, low_open=True),
        default=4.0,
        help="icot: removal smoothing, > 0; inf: off (default: 4)",
    )
    train.add_argument("--no-reset-optimizer", action="store_true", help="icot: keep AdamW state across removals")
    train.add_argument(
        "--remove-start-from", type=non_negative_int, default=0, help="icot: tokens removed from step 0 (0)"
    )
    train.add_argument("--pretrain-epochs", type=non_negative_int, default=0, help="icot: full-CoT epochs first (0)")
    train.add_argument(
        "--steps-per-epoch", type=positive_int, default=None, help="icot: epoch length (ceil(train/batch))"
    )
    train.add_argument("--valid", type=DENG_FILE, help="Deng-format evaluation file (never trained on)")
    train.add_argument("--exclude", type=DENG_FILE, nargs="*", default=[], help="more files whose operands to skip")
    train.add_argument(
        "--run-dir", type=Path, help="checkpoint directory; an existing run resumes (a larger --steps grows it)"
    )
    train.add_argument(
        "--resume",
        type=InputPath(directory=True),
        metavar="RUN",
        help="continue the run in RUN with its own settings; with --steps M, grow it to M steps (bit-identical to "
        "asking for M at first); only --steps, --eval-every, --checkpoint-every, --dynamics-every, --log-every, "
        "--valid, --exclude and --device may be given",
    )
    train.add_argument(
        "--dynamics-every",
        type=non_negative_int,
        default=0,
        help="log per-position loss and gradient statistics every N steps to RUN/dynamics.csv (the authors' "
        "grad_probe_log.csv layout; needs --run-dir; 0: off)",
    )
    train.add_argument(
        "--log-every",
        type=non_negative_int,
        default=0,
        help="print a line on stderr every N steps: loss, steps/s, tokens/s (0: the progress bar or, off a "
        "terminal, a line every $REPRO_PROGRESS_INTERVAL s)",
    )
    add_device_option(train)

    evaluate = add_command(
        commands,
        "eval",
        help="evaluate a trained run",
        description="Greedy exact match and per-digit accuracy (plus the labelled "
        "teacher-forced figures) of the latest checkpoint in --run-dir. For an ICoT run the main score is "
        "CoT-aware: the model greedily writes the CoT it was last trained on (the schedule's removal count at "
        "the checkpoint's step), then `<eos> ####` and the answer; the no-CoT score follows.",
        epilog="example:\n  mult-probe eval --run-dir runs/sft3 --n 2000 --json\n"
        "  mult-probe eval --run-dir runs/icot3 --cot-removed 10",
    )
    evaluate.add_argument(
        "--run-dir", type=InputPath(directory=True), required=True, help="a `mult-probe train` run directory"
    )
    evaluate.add_argument("--data", type=DENG_FILE, help="Deng-format file to evaluate on (default: seeded pairs)")
    evaluate.add_argument("--n", type=PAIR_COUNT, default=1000, help="seeded pairs when no --data (default: 1000)")
    add_seed_option(evaluate, default=12345, help="seed of those pairs, 0 to 2**32 - 1 (default: 12345)")
    add_device_option(evaluate)
    evaluate.add_argument(
        "--cot-removed",
        type=non_negative_int,
        help="ICoT runs: CoT tokens removed in the CoT-aware evaluation (default: the schedule at the checkpoint)",
    )

    _add_analysis_commands(commands)
    _add_dynamics_commands(commands)
    add_reproduce_command(commands)
    return parser


def _add_dynamics_commands(commands: Any) -> None:
    """`dynamics plot RUN [--compare LOG.csv]`: ours beside the authors' training-dynamics log."""
    dynamics = add_command(
        commands,
        "dynamics",
        help="training dynamics per answer position: plot a run's log beside the authors'",
        description="Training dynamics logged by `train --dynamics-every N` (RUN/dynamics.csv, the authors' "
        "grad_probe_log.csv layout: a step column and list-valued per-position columns ordered from the last "
        "digit, c_{K-1} .. c_0).",
    )
    actions = dynamics.add_subparsers(dest="dynamics_command", required=True, metavar="ACTION")
    plot = add_command(
        actions,
        "plot",
        help="per-position loss curves and gradient-norm heatmaps, ours beside --compare",
        description="Per-position loss curves (log scale; the first logged step below --threshold marked) over a "
        "heatmap of the per-position gradient norm x step, one column per log: RUN's, then --compare's. Prints, "
        "per position c0 .. c_{K-1}, the first step below the threshold and the last logged loss.",
        epilog="examples:\n  mult-probe dynamics plot runs/sft3 --out figures/dynamics.png\n"
        "  mult-probe dynamics plot runs/sft3 --compare grad_probe_log.csv --out dynamics.png --json",
    )
    plot.add_argument(
        "run", type=_RunOrCheckpoint(suffixes=(".csv", ".pt")), metavar="RUN", help="a run directory or a dynamics CSV"
    )
    plot.add_argument(
        "--compare",
        type=InputPath(suffixes=(".csv",)),
        metavar="AUTHORS_LOG.csv",
        help="a log in the authors' layout (their grad_probe_log.csv)",
    )
    plot.add_argument(
        "--threshold",
        type=Bounded(float, low=0, low_open=True),
        default=0.05,
        help="'learned' when the position loss falls below this (default: 0.05, as spec 6.2)",
    )
    plot.add_argument("--out", type=Path, help="PNG file for the figure (needs matplotlib: mult-probe[plot])")


def _read_dynamics(path: Path, label: str) -> Any:
    """A dynamics log from a CSV, a run directory's dynamics.csv, or the history in its latest checkpoint."""
    from mult_probe.dynamics import log_from_history, read_dynamics_csv
    from mult_probe.train import DYNAMICS_CSV
    from repro_core.checkpoint import CheckpointManager, load_checkpoint

    if path.is_dir():
        if (path / DYNAMICS_CSV).is_file():
            return read_dynamics_csv(path / DYNAMICS_CSV, label=label)
        latest = CheckpointManager(path, keep=None).latest()
        if latest is None:
            raise InputError(f"no {DYNAMICS_CSV} and no checkpoint (train with --dynamics-every N)", path=path)
        path = latest
    if path.suffix == ".csv":
        return read_dynamics_csv(path, label=label)
    _check_checkpoint_format(path)
    state = load_checkpoint(path)
    if not isinstance(state.get("history"), list):
        raise InputError("not a mult-probe checkpoint (no history)", path=path)
    try:
        return log_from_history(state["history"], label=label)
    except InputError as exc:
        raise InputError(str(exc), path=path) from None


def _dynamics(args: argparse.Namespace) -> dict[str, Any]:
    from mult_probe.dynamics import plot_dynamics, summary

    ours = _read_dynamics(args.run, label=f"ours: {args.run}")
    logs = [ours]
    if args.compare is not None:
        theirs = _read_dynamics(args.compare, label=f"compare: {args.compare.name}")
        if theirs.n_positions != ours.n_positions:  # e.g. our 3x3 CPU run beside the authors' 4x4 log
            _log.info("dynamics: %d positions beside %d (side by side)", ours.n_positions, theirs.n_positions)
        logs.append(theirs)
    result: dict[str, Any] = {
        "threshold": args.threshold,
        "position_order": "c0 first (the CSV files list c_{K-1} first)",
        "ours": summary(ours, args.threshold),
    }
    if args.compare is not None:
        result["compare"] = summary(logs[1], args.threshold)
    if args.out is not None:
        from repro_core.report import save_figure

        result["figure"] = save_figure(plot_dynamics(logs, threshold=args.threshold), args.out)
    return result


def _human_dynamics(result: dict[str, Any]) -> str:
    lines = [f"first logged step with position loss < {result['threshold']:g} (c0 first):"]
    for key in ("ours", "compare"):
        if key not in result:
            continue
        info = result[key]
        steps = " ".join(f"c{t}={'-' if s is None else s}" for t, s in enumerate(info["first_step_below"]))
        final = " ".join(f"{v:.3g}" for v in info["final_loss"])
        lines.append(f"  {key} ({info['source']}, {info['logged_steps']} rows to step {info['last_step']}): {steps}")
        lines.append(f"    loss at step {info['last_step']}: {final}")
    if "figure" in result:
        lines.append(f"figure: {result['figure']}")
    return "\n".join(lines)


def _data(args: argparse.Namespace) -> dict[str, Any]:
    from mult_probe.data import cot_line, generate_operands, nocot_line, write_lines

    exclude = _operands(args.exclude)  # every input file is read and checked before anything else
    if args.check is not None:
        return _check_file(args.check, exclude if args.exclude else None)
    if args.out is None:
        raise ConfigError("--out: required unless --check is given")
    l = args.k if args.l is None else args.l
    pairs = generate_operands(args.k, l, n=args.n, seed=args.seed, exclude=exclude)  # = `generate_split`'s lines
    make = nocot_line if args.no_cot else cot_line
    lines = [make(int(a), int(b), args.k, l) for a, b in progress(pairs, desc="lines", unit="line")]
    write_lines(args.out, lines)
    return {
        "path": args.out,
        "lines": len(lines),
        "k": args.k,
        "l": args.k if args.l is None else args.l,
        "cot": not args.no_cot,
        "seed": args.seed,
    }


def _first_difference(path: Path, expected: list[tuple[int, str]]) -> dict[str, Any] | None:
    """Where the file's bytes first depart from the rule's lines: line number and reason (None: identical)."""
    raw_lines = path.read_bytes().split(b"\n")
    wanted = dict(expected)
    last = expected[-1][0]
    for line_no, raw in enumerate(raw_lines[:last], 1):
        text = wanted.get(line_no)
        if text is None:
            return {"line": line_no, "reason": "a blank line (the rule writes none)"}
        if raw.endswith(b"\r") and raw[:-1] == text.encode("utf-8"):
            return {"line": line_no, "reason": "CRLF line ending (the rule writes LF)"}
        if raw != text.encode("utf-8"):
            return {"line": line_no, "reason": "spacing or characters differ from the rule's line"}
    tail = raw_lines[last:]
    if not tail:
        return {"line": last, "reason": "no newline at the end of the file"}
    if tail != [b""]:
        return {"line": last + 1, "reason": "blank lines or whitespace after the last example"}
    return None


def _check_file(path: Path, exclude: list[tuple[int, int]] | None) -> dict[str, Any]:
    """`data --check`: every line parses and follows the rule, one layout throughout, and the bytes match."""
    from mult_probe.data import cot_line, nocot_line, read_numbered_examples

    rows = read_numbered_examples(path)  # raises InputError naming the first bad line
    if not rows:
        raise InputError("no examples (an empty file?)", path=path)
    first_no, first = rows[0]
    layout = (first.k, first.l, first.has_cot)
    for line_no, e in rows:
        if (e.k, e.l, e.has_cot) != layout:
            kind = "CoT" if e.has_cot else "no-CoT"
            raise InputError(
                f"a {kind} {e.k}x{e.l} line in a file whose line {first_no} is "
                f"{'CoT' if first.has_cot else 'no-CoT'} {first.k}x{first.l} (one layout per file)",
                path=path,
                line=line_no,
                field="input",
            )
    expected = [(no, (cot_line if e.has_cot else nocot_line)(e.a, e.b, e.k, e.l)) for no, e in rows]
    difference = _first_difference(path, expected)
    checked: dict[str, Any] = {
        "path": path,
        "lines": len(rows),
        "k": first.k,
        "l": first.l,
        "cot": first.has_cot,
        "byte_identical": difference is None,
    }
    if difference is not None:
        checked["first_difference"] = difference
    if exclude is not None:  # held-out operands must not occur in the checked file
        banned = set(exclude)
        checked["excluded_pairs_found"] = sum((e.a, e.b) in banned for _, e in rows)
    return checked


def _device(name: str) -> Any:
    """The device of `--device`, checked before any work (`auto` honours $REPRO_DEVICE); unavailable: ConfigError."""
    from repro_core.device import pick_device

    return pick_device(None if name == "auto" else name)


def _eval_dict(result: Any) -> dict[str, Any]:
    out = dataclasses.asdict(result)
    out["mean_digit_accuracy"] = result.mean_digit_accuracy
    return out


def _train(args: argparse.Namespace) -> dict[str, Any]:
    from mult_probe.data import cot_length
    from mult_probe.icot import IcotConfig
    from mult_probe.model import ModelConfig
    from mult_probe.train import TrainConfig

    # everything is checked before training starts: the device, the config, then every input file
    device = _device(args.device)
    if args.resume is not None:
        return _train_with(args, _resumed_config(args), device, run_dir=args.resume)
    l = args.k if args.l is None else args.l
    if args.k + l > 18:
        raise ConfigError(f"--k/--l: {args.k} + {l} digits; products beyond 18 digits overflow int64 (k + l <= 18)")
    length = 2 * (args.k + l) + 5 + (cot_length(args.k, l) if args.method == "icot" else 0)
    model = ModelConfig.preset(args.preset, n_ctx=max(32, length))
    config = TrainConfig(
        method=args.method,
        k=args.k,
        l=args.l,
        model=model,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        train_size=args.train_size,
        eval_size=args.eval_size,
        eval_every=args.eval_every,
        checkpoint_every=args.checkpoint_every,
        aux_layer=args.aux_layer,
        aux_heads=tuple(args.aux_heads),
        aux_lambda=args.aux_lambda,
        aux_target_scale=args.aux_target_scale,
        icot=IcotConfig(
            remove_per_epoch=args.remove_per_epoch,
            removal_side=args.removal_side,
            smoothing_lambda=None if math.isinf(args.smoothing_lambda) else args.smoothing_lambda,
            reset_optimizer=not args.no_reset_optimizer,
            remove_start_from=args.remove_start_from,
            pretrain_epochs=args.pretrain_epochs,
            steps_per_epoch=args.steps_per_epoch,
        ),
    )
    return _train_with(args, config, device, run_dir=args.run_dir)


#: `train` options a `--resume` may give: they change how long the run goes and what it logs, not its steps.
RESUME_OPTIONS = frozenset(
    {"steps", "eval_every", "checkpoint_every", "dynamics_every", "log_every", "valid", "exclude", "device", "resume"}
)


def _explicit_train_options(argv: Sequence[str]) -> set[str]:
    """The `train` options the user typed (argparse fills the rest with defaults, which a resume must not apply)."""
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            sub = action.choices["train"]
            for option in sub._actions:
                option.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(list(argv))))


def _resumed_config(args: argparse.Namespace) -> Any:
    """`--resume RUN`: the run's own config, with --steps / --eval-every / --checkpoint-every if given."""
    from mult_probe.analysis import load_run

    given = _explicit_train_options(getattr(args, "argv", sys.argv[1:])) - {"command", "json", "verbose", "quiet"}
    refused = sorted(given - RESUME_OPTIONS)
    if refused:
        names = ", ".join("--" + name.replace("_", "-") for name in refused)
        raise ConfigError(f"{names}: taken from the run being resumed ({args.resume}); leave it out")
    _check_checkpoint_format(args.resume)
    run = load_run(args.resume)  # a missing or foreign checkpoint is an InputError naming the file
    changes = {name: getattr(args, name) for name in ("steps", "eval_every", "checkpoint_every") if name in given}
    if changes.get("steps", run.step) < run.step:
        raise ConfigError(
            f"--steps: {args.resume} has already trained {run.step} steps; a resumed run can only grow "
            f"(give --steps {run.step} or more)"
        )
    return dataclasses.replace(run.config, **changes)


def _check_run_dir(path: Path) -> None:
    """A run directory must be a directory we can create or write, found out before any training."""
    if path.exists() and not path.is_dir():
        raise InputError("exists and is not a directory (give a new or existing run directory)", path=path)
    parent = path
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"cannot create a directory below the file {parent}", path=path)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError("permission denied (cannot write checkpoints there)", path=path)


class _StepLines:
    """`--log-every N`: one stderr line per N steps with the loss and the throughput since the last line."""

    def __init__(self, every: int, total: int, tokens_per_step: int) -> None:
        self.every, self.total, self.tokens_per_step = every, total, tokens_per_step
        self.quiet = logging.getLogger().getEffectiveLevel() > logging.WARNING
        self.last_step: int | None = None
        self.last_time = time.perf_counter()

    def __call__(self, step: int, logs: dict[str, Any]) -> None:
        if self.last_step is None:  # the first step of this process (a resumed run starts mid-way)
            self.last_step = step - 1
        if self.quiet or not self.every or (step % self.every and step != self.total):
            return
        now = time.perf_counter()
        rate = (step - self.last_step) / max(now - self.last_time, 1e-9)
        parts = [f"step {step}/{self.total}", f"loss {logs['loss']:.4f}"]
        if "aux" in logs:
            parts.append(f"lm {logs['lm']:.4f} aux {logs['aux']:.4f}")
        if "cot_removed" in logs:
            parts.append(f"cot_removed {logs['cot_removed']}")
        parts.append(f"{rate:.2f} steps/s {rate * self.tokens_per_step:,.0f} tokens/s")
        print(" ".join(parts), file=sys.stderr, flush=True)
        self.last_step, self.last_time = step, now


def _train_with(args: argparse.Namespace, config: Any, device: Any, *, run_dir: Path | None) -> dict[str, Any]:
    """Check the files and the run directory, then train `config` with progress on stderr."""
    from mult_probe.train import train
    from repro_core.distributed import init_from_env

    if args.dynamics_every and run_dir is None:
        raise ConfigError("--dynamics-every: needs --run-dir (the log is written to RUN/dynamics.csv)")
    if run_dir is not None:
        _check_run_dir(run_dir)
        _check_checkpoint_format(run_dir)
    eval_pairs = None if args.valid is None else _read_pairs(args.valid, fits=(config.k, config.n_digits_b))
    exclude = _operands(args.exclude)
    context = init_from_env()  # a process group under torchrun, else a single process
    if context.backend == "nccl":
        device = _device(f"cuda:{context.local_rank}")
    desc = f"{config.method} {config.k}x{config.n_digits_b}"
    tokens_per_step = config.batch_size * config.sequence_length  # icot: the full-CoT length, an upper bound
    step_lines = _StepLines(args.log_every if context.is_main else 0, config.steps, tokens_per_step)
    # with --log-every off a terminal the step lines replace the bar's timed lines (one progress stream, not two)
    hide_bar = not context.is_main or (bool(args.log_every) and not sys.stderr.isatty())
    with progress(total=config.steps, desc=desc, unit="step", disable=True if hide_bar else None) as bar:

        def on_step(step: int, logs: dict[str, Any]) -> None:
            """Advance the bar through `update`, so a non-terminal gets a line per interval, not one per step."""
            shown = {"loss": f"{logs['loss']:.3f}"}
            if "cot_removed" in logs:
                shown["cot_removed"] = str(logs["cot_removed"])
            if "eval" in logs:
                shown["acc"] = f"{np.mean(logs['eval']['digit_accuracy']):.3f}"
            if bar.n == 0 and step > 1:  # a resumed run: start the bar where the run is
                bar.update(step - 1)
            bar.set_postfix(shown, refresh=False)
            bar.update(step - bar.n)
            step_lines(step, logs)

        result = train(
            config,
            run_dir=run_dir,
            eval_pairs=eval_pairs,
            exclude=exclude,
            device=device,
            on_step=on_step,
            dynamics_every=args.dynamics_every,
        )
    return {
        "config": config.to_dict(),
        "run_dir": run_dir,
        "resumed_from": result.resumed_from,
        "world_size": context.world_size,
        "is_main": context.is_main,
        "final": _eval_dict(result.final),
    }


def _check_checkpoint_format(path: Path) -> None:
    """Refuse a file that is no torch checkpoint at all, in words (torch's unpickler says `KeyError: 105` for text).

    A workaround for `repro_core.checkpoint.load_checkpoint`, which passes torch's own message on: `torch.save`
    writes a zip archive, older versions a pickle (first byte 0x80). A run directory is checked at its latest file.
    """
    import zipfile

    from repro_core.checkpoint import CheckpointManager

    if path.is_dir():
        latest = CheckpointManager(path, keep=None).latest()
        if latest is None:
            return  # load_run names the missing checkpoint
        path = latest
    if not path.is_file() or path.stat().st_size == 0:
        return  # load_checkpoint's own messages are clear for these
    with path.open("rb") as handle:
        head = handle.read(64)
    if zipfile.is_zipfile(path) or head[:1] == b"\x80":
        return
    try:
        shown = repr(head.decode("utf-8")[:24])
        kind = f"a text file starting {shown}"
    except UnicodeDecodeError:
        kind = "neither a zip archive nor a pickle"
    raise InputError(f"not a torch checkpoint ({kind})", path=path)


def _load_finite_run(path: Path, device: Any) -> Any:
    """`analysis.load_run`, refusing a checkpoint whose weights hold NaN or inf (a diverged run scores nothing)."""
    import torch

    from mult_probe.analysis import load_run

    _check_checkpoint_format(path)
    run = load_run(path, device=device)  # a bad or foreign checkpoint is an InputError naming the file
    with torch.no_grad():
        bad = [name for name, p in run.model.named_parameters() if not bool(torch.isfinite(p).all())]
    if bad:
        message = f"the weights hold NaN or inf ({bad[0]}, ...): a diverged run, nothing to score"
        raise InputError(message, path=run.path)
    return run


def _eval(args: argparse.Namespace) -> dict[str, Any]:
    from mult_probe.data import cot_length, generate_operands
    from mult_probe.icot import removed_at
    from mult_probe.train import evaluate

    device = _device(args.device)
    run = _load_finite_run(args.run_dir, device)
    config = run.config
    removed = None
    if config.method == "icot":
        removed = args.cot_removed
        if removed is None:
            cot_len = cot_length(config.k, config.n_digits_b)
            removed = removed_at(run.step, config.steps_per_epoch, config.icot, cot_len)
    elif args.cot_removed is not None:
        raise ConfigError(f"--cot-removed: only for ICoT runs; {args.run_dir} is a {config.method!r} run")
    if args.data is not None:  # operands with fewer digits are zero-padded into the run's layout
        pairs = _read_pairs(args.data, fits=(config.k, config.n_digits_b))
    else:
        pairs = generate_operands(config.k, config.n_digits_b, n=args.n, seed=args.seed)
    result = evaluate(
        run.model, pairs, config.k, config.n_digits_b, cot_removed=removed, removal_side=config.icot.removal_side
    )
    return {
        "run_dir": args.run_dir,
        "step": run.step,
        "method": config.method,
        "k": config.k,
        "l": config.n_digits_b,
        **_eval_dict(result),
    }


def _human_eval(result: dict[str, Any]) -> str:
    final = result.get("final", result)
    digits = " ".join(f"c{i}={v:.3f}" for i, v in enumerate(final["digit_accuracy"]))
    forced = " ".join(f"{v:.3f}" for v in final["teacher_forced_digit_accuracy"])
    text = ""
    cot = final.get("cot_aware")
    if cot is not None:  # ICoT: the CoT-aware score first (the main one), the no-CoT one labelled as such
        cot_digits = " ".join(f"c{i}={v:.3f}" for i, v in enumerate(cot["digit_accuracy"]))
        tokens = "-" if cot["cot_token_accuracy"] is None else f"{cot['cot_token_accuracy']:.3f}"
        text = (
            f"CoT-aware exact match (greedy CoT, {cot['removed']} CoT tokens removed, {cot['cot_tokens']} left) "
            f"{cot['exact_match']:.4f} on {cot['n']} pairs\nCoT-aware per-digit accuracy: {cot_digits}\n"
            f"CoT token accuracy {tokens}, CoT exact {cot['cot_exact_match']:.3f}\nno-CoT layout: "
        )
    return text + (
        f"exact match (greedy) {final['exact_match']:.4f} on {final['n']} pairs\n"
        f"per-digit accuracy (greedy): {digits}\nteacher-forced per-digit: {forced}"
    )


def _human_data(result: dict[str, Any]) -> str:
    if "byte_identical" in result:
        verdict = "follows the rule byte for byte"
        if not result["byte_identical"]:
            where = result["first_difference"]
            verdict = f"DIFFERS from the rule at line {where['line']}: {where['reason']}"
        found = result.get("excluded_pairs_found")
        overlap = "" if found is None else f", {found} lines with excluded operands"
        layout = f"{'CoT' if result['cot'] else 'no-CoT'} {result['k']}x{result['l']}"
        return f"{result['path']}: {result['lines']} {layout} lines, {verdict}{overlap}"
    return f"wrote {result['lines']} lines to {result['path']}"


def _add_analysis_commands(commands: Any) -> None:
    """The `probe` and `analyze` subcommands (both read a `train --run-dir` checkpoint)."""
    from mult_probe.analysis import ANALYSES

    probe = add_command(
        commands,
        "probe",
        help="ridge probes for the running sums c_hat of a trained run",
        description="Fit one closed-form ridge probe per (hook, answer position) predicting c_hat_t from the "
        "activation at the token of c_t (teacher-forced full answers, as the paper), on seeded pairs; "
        "report validation MAE and R^2. Activations come from the checkpoint's own model.",
        epilog="examples:\n  mult-probe probe --checkpoint runs/aux3 --n 2000 --out figures --json\n"
        "  mult-probe probe --checkpoint runs/aux3/ckpt-1500.pt --hooks blocks.1.hook_resid_mid",
    )
    probe.add_argument("--hooks", nargs="+", help="hook names (default: resid_mid and resid_post of every layer)")
    probe.add_argument("--ridge", type=Bounded(float, low=0), default=1e-2, help="ridge penalty >= 0 (default: 0.01)")
    probe.add_argument(
        "--val-fraction",
        type=Bounded(float, low=0, high=1, low_open=True, high_open=True),
        default=0.2,
        help="validation share in (0, 1) (default: 0.2)",
    )
    analyze = add_command(
        commands,
        "analyze",
        help="the paper's analyses of a trained run, with figures",
        description="Run the paper's analyses on teacher-forced sequences of seeded pairs:\n"
        "  attrib     counterfactual digit-swap logit attribution (operand digit -> answer digit)\n"
        "  dla        direct logit attribution per head and source position (exact decomposition)\n"
        "  probe      ridge probes for c_hat (MAE per hook and position)\n"
        "  dag        attention graph of the answer steps: pair purity, answer mass, coverage of i+j<=t\n"
        "  fourier    Fourier-basis R^2 of digit embeddings, MLP weights, unembeddings, final state\n"
        "  prism      PCA(3) of the final state predicting c2: parity and pentagon scores\n"
        "  minkowski  PCA and Minkowski-sum scores of the first layer's head outputs at c2",
        epilog="examples:\n  mult-probe analyze all --checkpoint runs/aux3 --out figures --json\n"
        "  mult-probe analyze attrib dag --checkpoint runs/sft3 --n 500",
    )
    analyze.add_argument(
        "analyses",
        nargs="+",
        choices=[*ANALYSES, "all"],
        metavar="ANALYSIS",
        help=f"one or more of {', '.join(ANALYSES)}, or all",
    )
    analyze.add_argument(
        "--attrib-seed", type=EXTRA_SEED, default=99, help="seed of the counterfactual digits (default: 99)"
    )
    for sub, n in ((probe, 2000), (analyze, 1000)):
        sub.add_argument(
            "--checkpoint", type=_RunOrCheckpoint(), required=True, help="a `train --run-dir` directory or ckpt file"
        )
        sub.add_argument(
            "--n",
            type=Bounded(int, low=MIN_ANALYSIS_PAIRS, high=MAX_PAIRS),
            default=n,
            help=f"seeded analysis pairs when no --data, at least {MIN_ANALYSIS_PAIRS} (default: {n})",
        )
        add_seed_option(sub, default=12345, help="seed of those pairs, 0 to 2**32 - 1 (default: 12345)")
        sub.add_argument("--data", type=DENG_FILE, help="Deng-format file whose operands to analyse instead")
        sub.add_argument("--out", type=Path, help="folder for <analysis>.png figures and full <analysis>.json")
        add_device_option(sub)


def _analyze(args: argparse.Namespace) -> dict[str, Any]:
    """Load the checkpoint, draw the pairs, run the chosen analyses; write figures and full results to --out."""
    from mult_probe.analysis import ANALYSES, run_analysis
    from mult_probe.data import generate_operands
    from repro_core.report import save_figure, write_json

    run = _load_finite_run(args.checkpoint, _device(args.device))
    if args.data is not None:
        pairs = _read_pairs(args.data, fits=(run.k, run.l), exact=True)
        if len(pairs) < MIN_ANALYSIS_PAIRS:
            raise InputError(f"{len(pairs)} examples; the analyses need at least {MIN_ANALYSIS_PAIRS}", path=args.data)
    else:
        pairs = generate_operands(run.k, run.l, n=args.n, seed=args.seed)
    if args.command == "probe":
        from mult_probe.probes import fit_running_sum_probes, plot_probe_mae

        points = ("hook_resid_mid", "hook_resid_post")
        hooks = args.hooks or [f"blocks.{i}.{p}" for i in range(run.model.cfg.n_layers) for p in points]
        result = fit_running_sum_probes(
            run.model, pairs, run.k, run.l, hooks=hooks, ridge=args.ridge, val_fraction=args.val_fraction
        )
        summaries, full, figures = (
            {"probe": result.to_dict()},
            {"probe": result},
            {"probe": lambda: plot_probe_mae(result)},
        )
    else:
        names = list(ANALYSES) if "all" in args.analyses else list(dict.fromkeys(args.analyses))
        summaries, full, figures = {}, {}, {}
        with progress(total=len(names), desc="analyses", unit="analysis") as bar:
            for name in names:
                bar.set_postfix({"running": name}, refresh=False)  # a forced refresh prints a line off a terminal
                full[name], summaries[name], figures[name] = run_analysis(
                    name, run.model, pairs, run.k, run.l, seed=args.attrib_seed
                )
                bar.update(1)
    written = {}
    if args.out is not None:
        for name, make in figures.items():
            written[name] = save_figure(make(), args.out / f"{name}.png")
            write_json(full[name], args.out / f"{name}.json")
    return {
        "checkpoint": run.path,
        "step": run.step,
        "method": run.config.method,
        "k": run.k,
        "l": run.l,
        "n": len(pairs),
        "analyses": summaries,
        "figures": written,
    }


def _human_analyze(result: dict[str, Any]) -> str:
    lines = [
        f"{result['checkpoint']} (step {result['step']}, {result['method']}, {result['k']}x{result['l']}), "
        f"{result['n']} pairs"
    ]
    for name, summary in result["analyses"].items():
        if name == "probe":
            for hook, values in summary["mae"].items():
                lines.append(f"probe MAE {hook}: " + " ".join(f"{v:.2f}" for v in values))
        elif name == "attrib":
            lines.append(
                f"attrib: mean delta on the band (t >= i) {summary['band_mean']:.3f}, "
                f"below it {summary['below_band_mean']:.3f}"
            )
        elif name == "dla":
            lines.append(
                f"dla: logit difference per step {np.round(summary['logit_diff'], 2).tolist()}, "
                f"decomposition error {summary['max_abs_error']:.1e}"
            )
        elif name == "dag":
            lines.append(
                f"dag: pair purity {summary['pair_purity'].tolist()}, answer mass "
                f"{summary['answer_mass'].tolist()}, coverage {summary['coverage'].tolist()}"
            )
        elif name == "fourier":
            pairs = ", ".join(f"{o} {r:.3f}" for o, r in zip(summary["objects"], summary["r2"], strict=True))
            lines.append(f"fourier median R^2 (basis 0,1,2,5): {pairs}")
        elif name == "prism":
            lines.append(
                f"prism: |corr(PC1, parity)| {summary['parity_corr']:.3f}, "
                f"pentagon alignment {summary['pentagon_alignment']:.3f}"
            )
        elif name == "minkowski":
            best = summary["heads"][summary["best_head"]]
            lines.append(
                f"minkowski L{summary['layer']}H{summary['best_head']} at c{summary['step']}: additive R^2 "
                f"{best.additive_r2:.3f}, procrustes {best.procrustes:.3f}, reconstruction R^2 "
                f"{summary['reconstruction_r2'][summary['best_head']]:.3f}"
            )
    lines += [f"figure: {path}" for path in result["figures"].values()]
    return "\n".join(lines)


def _main(args: argparse.Namespace) -> int:
    if args.command == "reproduce":
        return reproduce_package("mult-probe", quick, args)
    with value_errors_as_config_errors():  # library argument checks name the argument
        if args.command == "data":
            result = _data(args)
            emit_result(result, as_json=args.json, human=_human_data)
            passed = result.get("byte_identical", True) and not result.get("excluded_pairs_found", 0)
            return 0 if passed else 1
        if args.command == "train":
            trained = _train(args)
            if trained.pop("is_main"):  # under torchrun only rank 0 prints
                emit_result(trained, as_json=args.json, human=_human_eval)
            return 0
        if args.command == "eval":
            emit_result(_eval(args), as_json=args.json, human=_human_eval)
            return 0
        if args.command in ("probe", "analyze"):
            emit_result(_analyze(args), as_json=args.json, human=_human_analyze)
            return 0
        if args.command == "dynamics":
            emit_result(_dynamics(args), as_json=args.json, human=_human_dynamics)
            return 0
    raise AssertionError(f"unhandled command {args.command!r}")  # argparse rejects unknown commands first


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)

    def with_argv(args: argparse.Namespace) -> int:
        args.argv = argv  # `train --resume` tells the options typed from argparse's defaults
        return _main(args)

    return run_main(with_argv, build_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
