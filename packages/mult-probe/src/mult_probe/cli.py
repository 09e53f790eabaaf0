"""The `mult-probe` command line: data generation, training (SFT / auxiliary loss), evaluation, quick reproduction."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mult_probe.__about__ import __version__
from mult_probe.reproduction import quick
from repro_core.cli import add_command, make_parser, progress, run_main
from repro_core.cli import emit as emit_result
from repro_core.errors import ConfigError, InputError
from repro_core.umbrella import add_reproduce_command, reproduce_package

__all__ = ["build_parser", "main"]

DESCRIPTION = """Why transformers fail at multi-digit multiplication (arXiv 2510.00184): data in Deng et al.'s
format, a small hookable transformer, standard fine-tuning and the running-sum auxiliary loss.

commands:
  data        generate seeded k-by-l lines (CoT or no-CoT), or --check a Deng file byte for byte
  train       train a model without CoT (--method sft | aux); checkpoints and resume in --run-dir
  eval        greedy exact match and per-digit accuracy of a trained run on held-out pairs
  reproduce   this package's quick reproduction (also run by `repro reproduce`)

Running-sum probes are a library function (mult_probe.probes). Not implemented yet: ICoT stepwise
internalisation and the paper's other analyses."""


def _operands(paths: Sequence[Path]) -> list[tuple[int, int]]:
    from mult_probe.data import read_examples

    return [(e.a, e.b) for path in paths for e in read_examples(path)]


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser("mult-probe", DESCRIPTION, __version__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = add_command(
        commands,
        "data",
        help="generate Deng-format lines, or check a file against the rule",
        description="Seeded k-by-l multiplication lines 'input||cot #### answer' (digits least significant first), "
        "excluding the operands of --exclude files; or --check FILE: rebuild FILE from its operands "
        "and compare byte for byte.",
        epilog="examples:\n  mult-probe data --k 4 --n 808000 --exclude valid.txt test.txt --out train.txt\n"
        "  mult-probe data --k 3 --n 1000 --no-cot --out valid3.txt\n  mult-probe data --check valid.txt --json",
    )
    data.add_argument("--k", type=int, default=4, help="digits of the first operand (default: 4)")
    data.add_argument("--l", type=int, default=None, help="digits of the second operand (default: k)")
    data.add_argument("--n", type=int, default=1000, help="number of lines (default: 1000)")
    data.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    data.add_argument("--no-cot", action="store_true", help="write 'input|| #### answer' lines")
    data.add_argument("--exclude", type=Path, nargs="*", default=[], help="Deng-format files whose operands to skip")
    data.add_argument("--out", type=Path, help="output file (required unless --check)")
    data.add_argument("--check", type=Path, help="verify that this file follows the rule byte for byte")

    train = add_command(
        commands,
        "train",
        help="train without CoT: standard fine-tuning or the running-sum auxiliary loss",
        description="Train a transformer on 'a * b <eos> <eos> #### answer <eos>' (no CoT). --method aux adds "
        "linear regression heads on the last layer's hook_z predicting c_hat at every answer step.",
        epilog="examples:\n  mult-probe train --k 3 --steps 1500 --method sft --run-dir runs/sft3\n"
        "  mult-probe train --k 4 --preset paper_sft --lr 5e-5 --batch-size 32 --method aux --device cuda",
    )
    train.add_argument("--method", choices=["sft", "aux"], default="sft", help="objective (default: sft)")
    train.add_argument("--k", type=int, default=3, help="digits of the first operand (default: 3)")
    train.add_argument("--l", type=int, default=None, help="digits of the second operand (default: k)")
    train.add_argument("--preset", default="tiny", help="model preset: tiny, small, paper, paper_sft, paper_12l8h")
    train.add_argument("--steps", type=int, default=1500, help="optimiser steps (default: 1500)")
    train.add_argument("--batch-size", type=int, default=128, help="sequences per step (default: 128)")
    train.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate (default: 1e-3)")
    train.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    train.add_argument("--train-size", type=int, default=None, help="fixed training split (default: fresh pairs)")
    train.add_argument("--eval-size", type=int, default=1000, help="held-out pairs when no --valid (default: 1000)")
    train.add_argument("--eval-every", type=int, default=0, help="evaluate every N steps (default: at the end)")
    train.add_argument("--checkpoint-every", type=int, default=0, help="checkpoint every N steps (default: at end)")
    train.add_argument("--aux-lambda", type=float, default=1.0, help="auxiliary loss weight (default: 1)")
    train.add_argument("--aux-heads", type=int, nargs="+", default=[0, 1], help="heads with probes (default: 0 1)")
    train.add_argument("--aux-layer", type=int, default=-1, help="layer of those heads (default: last)")
    train.add_argument("--aux-target-scale", type=float, default=100.0, help="c_hat divisor (default: 100)")
    train.add_argument("--valid", type=Path, help="Deng-format evaluation file (its operands are never trained on)")
    train.add_argument("--exclude", type=Path, nargs="*", default=[], help="more files whose operands to skip")
    train.add_argument("--run-dir", type=Path, help="checkpoint directory; an existing run resumes")
    train.add_argument("--device", default="cpu", help="cpu, cuda, mps or auto (default: cpu)")

    evaluate = add_command(
        commands,
        "eval",
        help="evaluate a trained run",
        description="Greedy exact match and per-digit accuracy (plus the labelled "
        "teacher-forced figures) of the latest checkpoint in --run-dir.",
        epilog="example:\n  mult-probe eval --run-dir runs/sft3 --n 2000 --json",
    )
    evaluate.add_argument("--run-dir", type=Path, required=True, help="a `mult-probe train` run directory")
    evaluate.add_argument("--data", type=Path, help="Deng-format file to evaluate on (default: seeded pairs)")
    evaluate.add_argument("--n", type=int, default=1000, help="seeded pairs when no --data (default: 1000)")
    evaluate.add_argument("--seed", type=int, default=12345, help="seed of those pairs (default: 12345)")
    evaluate.add_argument("--device", default="cpu", help="cpu, cuda, mps or auto (default: cpu)")

    add_reproduce_command(commands)
    return parser


def _data(args: argparse.Namespace) -> dict[str, Any]:
    from mult_probe.data import cot_line, generate_split, nocot_line, read_examples, write_lines

    if args.check is not None:
        examples = read_examples(args.check)  # raises InputError naming the first bad line
        text = "".join((cot_line if e.has_cot else nocot_line)(e.a, e.b, e.k, e.l) + "\n" for e in examples)
        identical = text.encode("utf-8") == args.check.read_bytes()
        return {"path": args.check, "lines": len(examples), "byte_identical": identical}
    if args.out is None:
        raise ConfigError("--out: required unless --check is given")
    lines = generate_split(
        args.k, args.l, n=args.n, seed=args.seed, exclude=_operands(args.exclude), cot=not args.no_cot
    )
    write_lines(args.out, lines)
    return {
        "path": args.out,
        "lines": len(lines),
        "k": args.k,
        "l": args.k if args.l is None else args.l,
        "cot": not args.no_cot,
        "seed": args.seed,
    }


def _device(name: str) -> Any:
    from repro_core.device import pick_device

    return pick_device(None if name == "auto" else name)


def _eval_dict(result: Any) -> dict[str, Any]:
    out = dataclasses.asdict(result)
    out["mean_digit_accuracy"] = result.mean_digit_accuracy
    return out


def _train(args: argparse.Namespace) -> dict[str, Any]:
    from mult_probe.model import ModelConfig
    from mult_probe.train import TrainConfig, train

    l = args.k if args.l is None else args.l
    model = ModelConfig.preset(args.preset, n_ctx=max(32, 2 * (args.k + l) + 5))
    eval_pairs = None
    if args.valid is not None:
        eval_pairs = np.array(_operands([args.valid]), dtype=np.int64)
        if eval_pairs.size == 0:
            raise InputError("no examples", path=args.valid)
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
    )
    with progress(total=config.steps, desc=f"{config.method} {config.k}x{config.n_digits_b}", unit="step") as bar:

        def on_step(step: int, logs: dict[str, Any]) -> None:
            bar.n = step
            shown = {"loss": f"{logs['loss']:.3f}"}
            if "eval" in logs:
                shown["acc"] = f"{np.mean(logs['eval']['digit_accuracy']):.3f}"
            bar.set_postfix(shown, refresh=False)
            bar.refresh()

        result = train(
            config,
            run_dir=args.run_dir,
            eval_pairs=eval_pairs,
            exclude=_operands(args.exclude),
            device=_device(args.device),
            on_step=on_step,
        )
    return {
        "config": config.to_dict(),
        "run_dir": args.run_dir,
        "resumed_from": result.resumed_from,
        "final": _eval_dict(result.final),
    }


def _eval(args: argparse.Namespace) -> dict[str, Any]:
    from mult_probe.data import generate_operands
    from mult_probe.model import Transformer
    from mult_probe.train import TrainConfig, evaluate
    from repro_core.checkpoint import CheckpointManager

    state = CheckpointManager(args.run_dir, keep=None).load_latest()
    if state is None:
        raise InputError("no checkpoint found (run `mult-probe train --run-dir` first)", path=args.run_dir)
    config = TrainConfig.from_json(state["config"])
    model = Transformer(config.model)
    model.load_state_dict(state["model"])
    model.to(_device(args.device))
    if args.data is not None:
        pairs = np.array(_operands([args.data]), dtype=np.int64)
        if pairs.size == 0:
            raise InputError("no examples", path=args.data)
    else:
        pairs = generate_operands(config.k, config.n_digits_b, n=args.n, seed=args.seed)
    if (pairs[:, 0] >= 10**config.k).any() or (pairs[:, 1] >= 10**config.n_digits_b).any():
        raise InputError(f"operands do not fit the run's {config.k}x{config.n_digits_b} layout", path=args.data)
    result = evaluate(model, pairs, config.k, config.n_digits_b)
    return {
        "run_dir": args.run_dir,
        "step": int(state["step"]),
        "method": config.method,
        "k": config.k,
        "l": config.n_digits_b,
        **_eval_dict(result),
    }


def _human_eval(result: dict[str, Any]) -> str:
    final = result.get("final", result)
    digits = " ".join(f"c{i}={v:.3f}" for i, v in enumerate(final["digit_accuracy"]))
    forced = " ".join(f"{v:.3f}" for v in final["teacher_forced_digit_accuracy"])
    return (
        f"exact match (greedy) {final['exact_match']:.4f} on {final['n']} pairs\n"
        f"per-digit accuracy (greedy): {digits}\nteacher-forced per-digit: {forced}"
    )


def _human_data(result: dict[str, Any]) -> str:
    if "byte_identical" in result:
        verdict = "follows the rule byte for byte" if result["byte_identical"] else "DIFFERS from the rule"
        return f"{result['path']}: {result['lines']} lines, {verdict}"
    return f"wrote {result['lines']} lines to {result['path']}"


def _main(args: argparse.Namespace) -> int:
    if args.command == "reproduce":
        return reproduce_package("mult-probe", quick, args)
    try:
        if args.command == "data":
            result = _data(args)
            emit_result(result, as_json=args.json, human=_human_data)
            return 0 if result.get("byte_identical", True) else 1
        if args.command == "train":
            emit_result(_train(args), as_json=args.json, human=_human_eval)
            return 0
        if args.command == "eval":
            emit_result(_eval(args), as_json=args.json, human=_human_eval)
            return 0
    except (ConfigError, InputError):
        raise
    except ValueError as exc:  # library argument checks name the argument
        raise ConfigError(str(exc)) from exc
    raise AssertionError(f"unhandled command {args.command!r}")  # argparse rejects unknown commands first


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(_main, build_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
