"""The `bt2-compat` command line: train the old and new models, evaluate cross-model retrieval, run experiments."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from bt2_compat.__about__ import __version__
from bt2_compat.data import Dataset, check_old_classes, class_subset, load_dataset
from bt2_compat.evaluate import METRICS, TIES, check_embeddings, compatibility, embed
from bt2_compat.experiment import NEW_METHODS, ExperimentConfig, run_experiment
from bt2_compat.io import check_model_data, load_model, save_model
from bt2_compat.models import BACKBONES, ModelConfig, build_model
from bt2_compat.reproduction import quick
from bt2_compat.series import SeriesConfig, plot_series, run_series
from bt2_compat.train import SCHEDULES, TrainConfig, train_model
from repro_core.cli import (
    Bounded,
    InputPath,
    add_command,
    add_device_option,
    add_seed_option,
    emit,
    make_parser,
    non_negative_int,
    positive_float,
    positive_int,
    run_main,
    value_errors_as_config_errors,
)
from repro_core.device import pick_device
from repro_core.distributed import init_from_env, is_main_process, shutdown, write_on_main
from repro_core.errors import ConfigError, InputError, MissingExtraError
from repro_core.optional import has_module
from repro_core.umbrella import add_reproduce_command, reproduce_package

__all__ = ["build_parser", "main"]

#: Presets of the `series` subcommand.
SERIES_PRESETS = ("mlp", "resnet18-cifar")
#: Commands that train or embed on a device: `--device` is checked (`pick_device`) before anything else.
DEVICE_COMMANDS = ("train-old", "train-new", "evaluate", "train", "series")

#: Seeds of data generators and experiments: the range every RNG accepts (as `--seed`).
SEED = Bounded(int, low=0, high=2**32 - 1)
#: Torch CPU threads: at least one; the cap only stops a typo from spawning a million threads.
THREADS = Bounded(int, low=1, high=1024)
#: Loss weights, weight decay: finite and non-negative (a negative weight would reward the penalty).
NON_NEGATIVE = Bounded(float, low=0)
#: A class count that leaves a model something to tell apart: at least two classes.
CLASS_COUNT = Bounded(int, low=2)
#: Model files read by train-new and evaluate.
MODEL_FILE = InputPath(suffixes=(".pt",))

DESCRIPTION = """BT^2: backward-compatible embedding training with an orthonormal basis transformation
(arXiv 2211.03989), with the independent, BCT and L2-regression baselines.

commands:
  train-old    train the old model on the first --old-classes classes
  train-new    train a new model on all classes: --method independent | bct | l2 | bt2
  evaluate     leave-one-out retrieval: query model vs gallery model (first min(d) dims), and the criterion
  train        the whole experiment (old, independent, BCT, L2, BT^2) and the compatibility table
  series       old -> new -> newer models and the all-pairs compatibility matrix (--run-dir: resumable)
  reproduce    this package's quick reproduction on digits (also run by `repro reproduce`)

Typical session:
  bt2-compat train-old --out old.pt
  bt2-compat train-new --method independent --old old.pt --out ind.pt
  bt2-compat train-new --method bt2 --old old.pt --new-prime ind.pt --out bt2.pt
  bt2-compat evaluate --query bt2.pt --gallery old.pt"""


def _data_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data")
    group.add_argument(
        "--data",
        default="digits",
        help="digits (bundled in scikit-learn), synthetic[:<classes>], synthetic-images[:<classes>] (32x32), "
        "cifar100-python:<dir> or imagefolder:<dir>",
    )
    group.add_argument(
        "--data-seed", type=SEED, default=0, help="seed of the synthetic task, 0 to 2**32 - 1 (default: 0)"
    )
    group.add_argument(
        "--threads",
        type=THREADS,
        default=1,
        help="torch CPU threads, 1 to 1024 (default: 1, the fastest for these small models)",
    )
    add_device_option(parser)


def _train_options(parser: argparse.ArgumentParser, *, run_dir: bool = True) -> None:
    group = parser.add_argument_group("training")
    add_seed_option(parser, help="init and data-order seed, 0 to 2**32 - 1 (default: 0)")
    group.add_argument("--epochs", type=positive_int, default=60, help="at least 1 (default: 60)")
    group.add_argument("--batch-size", type=positive_int, default=64, help="at least 1 (default: 64)")
    group.add_argument("--lr", type=positive_float, default=1e-3, help="Adam learning rate, > 0 (default: 1e-3)")
    group.add_argument("--weight-decay", type=NON_NEGATIVE, default=3e-5, help=">= 0 (default: 3e-5)")
    group.add_argument("--schedule", choices=SCHEDULES, default="cosine", help="LR schedule (default: cosine)")
    group.add_argument(
        "--warmup-epochs", type=non_negative_int, default=0, help="linear warm-up epochs, 0 .. epochs - 1 (default: 0)"
    )
    group.add_argument(
        "--augment",
        action="store_true",
        help="random crop (zero padding --crop-padding) + horizontal flip of image batches, seeded "
        "(image data only, e.g. synthetic-images or cifar100-python; off by default)",
    )
    group.add_argument(
        "--crop-padding", type=non_negative_int, default=4, help="padding of the random crop, >= 0 (default: 4)"
    )
    if run_dir:
        group.add_argument(
            "--run-dir",
            type=Path,
            default=None,
            help="checkpoint every epoch here and resume from the latest checkpoint found",
        )


def _model_options(parser: argparse.ArgumentParser, hidden: list[int]) -> None:
    group = parser.add_argument_group("model")
    group.add_argument("--backbone", choices=BACKBONES, default="mlp", help="default: mlp")
    group.add_argument(
        "--hidden", type=positive_int, nargs="+", default=hidden, help=f"MLP hidden widths, >= 1 (default: {hidden})"
    )
    group.add_argument(
        "--embedding-dim", type=positive_int, default=32, help="embedding dim / BT^2's d_new, >= 1 (default: 32)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser("bt2-compat", DESCRIPTION, __version__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    old = add_command(
        commands,
        "train-old",
        help="train the old model",
        description="Train the old model on the training samples of the first --old-classes "
        "classes (its classifier keeps all classes, as in the paper).",
    )
    old.add_argument("--out", type=Path, required=True, help="model file to write")
    old.add_argument(
        "--old-classes",
        type=CLASS_COUNT,
        default=5,
        help="labels below this are old: 2 .. classes - 1 (default: 5)",
    )
    _data_options(old)
    _train_options(old)
    _model_options(old, [128])

    new = add_command(
        commands,
        "train-new",
        help="train a new model by one method",
        description="Train a new model on all classes. independent: classification only; "
        "bct: + alpha x influence loss with the old class means; l2: + weight x "
        "||phi_new[:d_old] - phi_old||^2; bt2: BT^2 stage 2 with the old model "
        "and an independent new model (--new-prime) as teachers.",
    )
    new.add_argument("--method", choices=NEW_METHODS, required=True)
    new.add_argument("--old", type=MODEL_FILE, default=None, help="old model file (bct, l2, bt2)")
    new.add_argument("--new-prime", type=MODEL_FILE, default=None, help="independent new model file (bt2)")
    new.add_argument("--out", type=Path, required=True, help="model file to write")
    _data_options(new)
    _train_options(new)
    _model_options(new, [256, 256])
    losses = new.add_argument_group("losses")
    losses.add_argument(
        "--alpha", type=NON_NEGATIVE, default=1.0, help="BCT influence weight, >= 0 (default: 1; paper: 10)"
    )
    losses.add_argument("--l2-weight", type=NON_NEGATIVE, default=10.0, help="L2 regression weight, >= 0 (default: 10)")
    losses.add_argument(
        "--lambdas",
        type=NON_NEGATIVE,
        nargs=3,
        default=[1.0, 10.0, 5.0],
        metavar=("L1", "L2", "L3"),
        help="BT^2: new' match, influence, old match, each >= 0 (default: 1 10 5)",
    )
    losses.add_argument(
        "--influence-scale",
        type=positive_float,
        default=16.0,
        help="logit scale of the influence CE, > 0 (default: 16; BT-2: 1)",
    )
    losses.add_argument("--extra-dims", type=non_negative_int, default=8, help="BT^2's k, >= 0 (default: 8)")
    losses.add_argument(
        "--C", dest="scale_c", type=positive_float, default=2.0, help="BT^2's constant C, > 0 (default: 2)"
    )

    ev = add_command(
        commands,
        "evaluate",
        help="cross-model retrieval and the criterion",
        description="Leave-one-out retrieval on the test split: query embeddings from --query, "
        "gallery embeddings from --gallery, both cut to their first min(d) dims. "
        "Reports query/gallery, gallery/gallery and query/query, and the criterion "
        "M(query/gallery) > M(gallery/gallery).\n\n"
        "Both models must come from the data set given by --data (checked against the data-set fingerprint "
        "stored in the model files, and the input size).\n\n"
        "Ties: mAP groups tied scores (as scikit-learn), so it does not depend on their order. Top-k (CMC) "
        "orders equal scores by --ties: pessimistic (default; a correct match tied with wrong ones ranks "
        "after them, so ties never inflate top-k), optimistic (before them) or index (gallery order).\n\n"
        "Metrics (after truncation): cosine = <q, g> / (|q|_2 |g|_2); dot = <q, g>; l2 = Euclidean "
        "distance; cosine-l1 = <q / |q|_1, g / |g|_1>, what ml-fct's evaluation calls cosine (it "
        "normalises by the L1 norm), to compare with numbers from that code base. Zero embeddings "
        "(cosine, cosine-l1) and NaN/inf embeddings are refused.",
    )
    ev.add_argument("--query", type=MODEL_FILE, required=True, help="new model file")
    ev.add_argument("--gallery", type=MODEL_FILE, required=True, help="old model file")
    ev.add_argument(
        "--metric",
        choices=METRICS,
        default="cosine",
        help="similarity after truncation (default: cosine; cosine-l1: ml-fct's L1-normalised 'cosine')",
    )
    ev.add_argument(
        "--ties",
        choices=TIES,
        default="pessimistic",
        help="order of equal scores for top-k (default: pessimistic, correct matches after wrong ones)",
    )
    _data_options(ev)

    run = add_command(
        commands,
        "train",
        help="the whole experiment and its table",
        description="Train the old model and every --methods new model, for each seed, then "
        "print the compatibility table (mAP, top-1, top-5) and the criteria.",
    )
    run.add_argument("--data", default="digits", help="digits or synthetic[:<classes>]")
    run.add_argument("--old-classes", type=CLASS_COUNT, default=5, help="2 .. classes - 1 (default: 5)")
    run.add_argument("--methods", nargs="+", choices=NEW_METHODS, default=list(NEW_METHODS))
    run.add_argument(
        "--seeds", type=SEED, nargs="+", default=[0], help="experiment seeds, each 0 to 2**32 - 1 (default: 0)"
    )
    run.add_argument(
        "--preset",
        choices=["digits", "paper"],
        default="digits",
        help="digits: spec 6.4's small-scale settings; paper: BCT alpha 10, influence scale 1",
    )
    run.add_argument("--epochs", type=positive_int, default=None, help="override the preset's epochs (>= 1)")
    run.add_argument("--threads", type=THREADS, default=1, help="torch CPU threads, 1 to 1024 (default: 1)")
    add_device_option(run)

    series = add_command(
        commands,
        "series",
        help="a multi-step series and its compatibility matrix",
        description="Train models m0, m1, ... on the classes below each --classes value; m0 "
        "independently, every later model by --method with the previous model as old model. "
        "Prints the matrix of all (query, gallery) pairs and the criteria M(i/j) > M(j/j).",
    )
    series.add_argument(
        "--preset",
        choices=SERIES_PRESETS,
        default="mlp",
        help="mlp: MLPs on digits, classes 3 6 10, 60 epochs; resnet18-cifar: ResNet-18 on 32x32 synthetic "
        "images (synthetic-images:20), classes 10 15 20, d 128, k 32, batch 128, 15 epochs, crop+flip "
        "augmentation (default: mlp)",
    )
    series.add_argument("--data", default=None, help="a --data spec as for train-old (default: the preset's)")
    series.add_argument(
        "--classes",
        type=CLASS_COUNT,
        nargs="+",
        default=None,
        help="class count of each step: at least two steps, strictly increasing, each >= 2 (default: the preset's)",
    )
    series.add_argument("--method", choices=NEW_METHODS, default="bt2", help="default: bt2")
    add_seed_option(series, help="series seed, 0 to 2**32 - 1 (default: 0)")
    series.add_argument("--epochs", type=positive_int, default=None, help="epochs per model (default: the preset's)")
    series.add_argument("--batch-size", type=positive_int, default=None, help="at least 1 (default: the preset's)")
    series.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="random crop (padding 4) + horizontal flip of image batches (default: on for resnet18-cifar only)",
    )
    series.add_argument("--metric", choices=METRICS, default="cosine", help="default: cosine (after truncation)")
    series.add_argument(
        "--plot",
        type=Path,
        default=None,
        help="write a PNG heatmap of the mAP matrix here (needs matplotlib: repro-core[plot]; checked before training)",
    )
    series.add_argument(
        "--run-dir",
        type=Path,
        default=None,
        help="keep finished models and per-epoch checkpoints here; a killed series restarted with the same "
        "options resumes from the last finished model and checkpoint",
    )
    series.add_argument("--threads", type=THREADS, default=1, help="torch CPU threads, 1 to 1024 (default: 1)")
    add_device_option(series)

    add_reproduce_command(commands)
    return parser


def _train_config(args: argparse.Namespace, method: str, **extra: Any) -> TrainConfig:
    return TrainConfig(
        method=method,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        schedule=args.schedule,
        warmup_epochs=args.warmup_epochs,
        seed=args.seed,
        augment=args.augment,
        crop_padding=args.crop_padding,
        **extra,
    )


def _check_backbone(args: argparse.Namespace, x: Any) -> None:
    if args.backbone.startswith("resnet") and x.ndim != 4:
        raise ConfigError(
            f"--backbone {args.backbone}: needs image data [n, C, H, W]; {args.data} is {x.ndim - 1}-D vectors"
        )


def _train_old(args: argparse.Namespace) -> dict[str, Any]:
    train_cfg = _train_config(args, "independent")
    data = load_dataset(args.data, seed=args.data_seed)
    check_old_classes(args.old_classes, data.num_classes, name="--old-classes", data=args.data)
    _check_backbone(args, data.x_train)
    x, y = class_subset(data.x_train, data.y_train, args.old_classes)
    config = ModelConfig(
        backbone=args.backbone,
        in_features=data.in_features,
        hidden=tuple(args.hidden),
        embedding_dim=args.embedding_dim,
        num_classes=data.num_classes,
        in_channels=data.x_train.shape[1] if data.x_train.ndim == 4 else 3,
    )
    result = train_model(
        build_model(config, args.seed),
        x,
        y,
        train_cfg,
        run_dir=args.run_dir,
        device=args.device,
        show_progress=True,
        desc="old",
    )
    meta = {
        "role": "old",
        "method": "independent",
        "data": args.data,
        "data_seed": args.data_seed,
        "old_classes": args.old_classes,
        "train_config": train_cfg.to_dict(),
    }
    write_on_main(save_model, args.out, result.model, config, meta, dataset=data)
    return {"out": args.out, "final_loss": result.losses[-1], "n_train": len(y), **meta}


def _train_new(args: argparse.Namespace) -> dict[str, Any]:
    train_cfg = _train_config(
        args,
        args.method,
        bct_alpha=args.alpha,
        l2_weight=args.l2_weight,
        lambdas=tuple(args.lambdas),
        influence_scale=args.influence_scale,
    )
    data = load_dataset(args.data, seed=args.data_seed)
    _check_backbone(args, data.x_train)
    old_model = new_prime = None
    if args.method != "independent":
        if args.old is None:
            raise ConfigError(f"--old: required by --method {args.method}")
        old_model, old_config, old_meta = load_model(args.old)
        check_model_data(args.old, old_config, old_meta, data, role="--old")
        if args.method in ("bct", "l2") and old_model.embedding_dim > args.embedding_dim:
            raise InputError(
                f"--old model's embedding dim {old_model.embedding_dim} exceeds the new model's "
                f"--embedding-dim {args.embedding_dim}",
                path=args.old,
            )
    if args.method == "bt2":
        if args.new_prime is None:
            raise ConfigError("--new-prime: required by --method bt2 (train one with --method independent)")
        new_prime, prime_config, prime_meta = load_model(args.new_prime)
        _check_new_prime(args, prime_config, prime_meta, data)
    kind = "bt2" if args.method == "bt2" else "embedding"
    config = ModelConfig(
        kind=kind,
        backbone=args.backbone,
        in_features=data.in_features,
        in_channels=data.x_train.shape[1] if data.x_train.ndim == 4 else 3,
        hidden=tuple(args.hidden),
        embedding_dim=args.embedding_dim,
        num_classes=data.num_classes,
        old_dim=old_model.embedding_dim if old_model is not None else args.embedding_dim,
        extra_dims=args.extra_dims,
        scale_c=args.scale_c,
    )
    result = train_model(
        build_model(config, args.seed),
        data.x_train,
        data.y_train,
        train_cfg,
        old_model=old_model,
        new_prime_model=new_prime,
        num_classes=data.num_classes,
        run_dir=args.run_dir,
        device=args.device,
        show_progress=True,
        desc=args.method,
    )
    meta = {
        "role": "new",
        "method": args.method,
        "data": args.data,
        "data_seed": args.data_seed,
        "train_config": train_cfg.to_dict(),
    }
    write_on_main(save_model, args.out, result.model, config, meta, dataset=data)
    return {"out": args.out, "final_loss": result.losses[-1], "n_train": len(data.y_train), **meta}


def _human_trained(result: dict[str, Any]) -> str:
    return (
        f"{result['role']} model ({result['method']}) written to {result['out']}: "
        f"final loss {result['final_loss']:.4f}, {result['n_train']} training samples of {result['data']}"
    )


def _check_new_prime(args: argparse.Namespace, config: ModelConfig, meta: dict[str, Any], data: Dataset) -> None:
    """--new-prime must be an independently trained new model on all classes, of width --embedding-dim (d_new)."""
    path = args.new_prime
    check_model_data(path, config, meta, data, role="--new-prime")
    need = "BT^2's new' teacher must be a new model trained on all classes by train-new --method independent"
    if meta.get("role") == "old":
        classes = meta.get("old_classes")
        trained = f"on the classes below {classes} " if classes is not None else ""
        raise InputError(f"--new-prime is an old model (trained {trained}by train-old); {need}", path=path)
    method = meta.get("method")
    if config.kind != "embedding" or (method is not None and method != "independent"):
        raise InputError(f"--new-prime is a {method or config.kind} model; {need}", path=path)
    if config.output_dim != args.embedding_dim:
        raise InputError(
            f"--new-prime has embedding dim {config.output_dim}, but the BT^2 model's d_new (--embedding-dim) is "
            f"{args.embedding_dim}; {need} with the same --embedding-dim",
            path=path,
        )


def _evaluate(args: argparse.Namespace) -> dict[str, Any]:
    data = load_dataset(args.data, seed=args.data_seed)
    query, query_config, query_meta = load_model(args.query)
    gallery, gallery_config, gallery_meta = load_model(args.gallery)
    check_model_data(args.query, query_config, query_meta, data, role="--query")
    check_model_data(args.gallery, gallery_config, gallery_meta, data, role="--gallery")
    embeddings = {
        "query": embed(query, data.x_test, device=args.device, show_progress=True),
        "gallery": embed(gallery, data.x_test, device=args.device, show_progress=True),
    }
    common = min(query.embedding_dim, gallery.embedding_dim)
    for side, path in (("query", args.query), ("gallery", args.gallery)):
        check_embeddings(embeddings[side], f"--{side} {path}", metric=args.metric, dims=common)
    pairs = [("gallery", "gallery"), ("query", "gallery"), ("query", "query")]
    table = compatibility(embeddings, data.y_test, pairs, metric=args.metric, ties=args.ties, show_progress=True)
    criterion = {k: table.criterion("query", "gallery", k) for k in ("top1", "top5", "mAP")}
    return {
        "query": args.query,
        "gallery": args.gallery,
        "metric": args.metric,
        "ties": args.ties,
        "n_test": len(data.y_test),
        "cells": table.cells,
        "dims": {"query": embeddings["query"].shape[1], "gallery": embeddings["gallery"].shape[1]},
        "criterion": criterion,
    }


def _human_cells(cells: dict[str, dict[str, float]]) -> list[str]:
    lines = [f"{'query/gallery':<26} {'top1':>6} {'top5':>6} {'mAP':>6}"]
    for name, cell in cells.items():
        lines.append(f"{name:<26} {cell['top1']:>6.1f} {cell['top5']:>6.1f} {cell['mAP']:>6.1f}")
    return lines


def _human_evaluate(result: dict[str, Any]) -> str:
    lines = _human_cells(result["cells"])
    crit = result["criterion"]
    lines.append(
        "criterion M(query/gallery) > M(gallery/gallery): "
        + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in crit.items())
    )
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every seed's data and config are checked before the first model trains."""
    planned = []
    for seed in args.seeds:
        data = load_dataset(args.data, seed=seed)
        check_old_classes(args.old_classes, data.num_classes, name="--old-classes", data=args.data)
        config = getattr(ExperimentConfig, args.preset)(seed=seed)
        config = replace(config, data=args.data, old_classes=args.old_classes, methods=tuple(args.methods))
        if args.epochs is not None:
            config = replace(config, train=replace(config.train, epochs=args.epochs))
        planned.append((config, data))
    return [
        run_experiment(config, dataset=data, show_progress=True, device=args.device).to_dict()
        for config, data in planned
    ]


def _human_run(rows: list[dict[str, Any]]) -> str:
    lines: list[str] = []
    for row in rows:
        lines.append(f"seed {row['config']['seed']} ({row['seconds']:.0f} s)")
        lines += _human_cells(row["cells"])
        for method, crit in row["criteria"].items():
            lines.append(
                f"  {method}/old > old/old: " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in crit.items())
            )
    return "\n".join(lines)


def _check_extras(args: argparse.Namespace) -> None:
    """Refuse, before any work, options whose optional dependency is missing (series --plot: matplotlib)."""
    if getattr(args, "plot", None) is not None and not has_module("matplotlib"):
        raise MissingExtraError("matplotlib", "plot", "--plot (the heatmap)", distribution="repro-core")


def _series(args: argparse.Namespace) -> dict[str, Any]:
    config = SeriesConfig.resnet18_cifar() if args.preset == "resnet18-cifar" else SeriesConfig()
    train = config.train
    if args.epochs is not None:  # the preset's warm-up shrinks to fit a short run
        train = replace(train, epochs=args.epochs, warmup_epochs=max(0, min(train.warmup_epochs, args.epochs - 1)))
    if args.batch_size is not None:
        train = replace(train, batch_size=args.batch_size)
    if args.augment is not None:
        train = replace(train, augment=args.augment)
    config = replace(
        config,
        data=args.data if args.data is not None else config.data,
        class_steps=tuple(args.classes) if args.classes is not None else config.class_steps,
        method=args.method,
        seed=args.seed,
        metric=args.metric,
        train=train,
    )
    out = run_series(config, show_progress=True, run_dir=args.run_dir, device=args.device).to_dict()
    if args.plot is not None:
        out["plot"] = str(plot_series(out, args.plot))
    return out


def _human_series(result: dict[str, Any]) -> str:
    names = result["names"]
    config = result["config"]
    lines = [f"{config['method']} series, classes {config['class_steps']} ({result['seconds']:.0f} s)"]
    if result.get("resumed"):
        lines.append(f"resumed: {', '.join(result['resumed'])} loaded from the run directory")
    for metric in ("mAP", "top1"):
        lines.append(f"{metric} (%), rows: query model, columns: gallery model")
        lines.append("      " + "".join(f"{name:>8}" for name in names))
        for name, row in zip(names, result["matrix"][metric], strict=True):
            lines.append(f"  {name:<4}" + "".join(f"{value:8.1f}" for value in row))
    for pair, ok in result["criteria"]["mAP"].items():
        top1 = result["criteria"]["top1"][pair]
        old = pair.split("/")[1]
        lines.append(f"  {pair} > {old}/{old}: mAP {'yes' if ok else 'NO'}, top1 {'yes' if top1 else 'NO'}")
    if "plot" in result:
        lines.append(f"plot: {result['plot']}")
    return "\n".join(lines)


def _train_distributable(args: argparse.Namespace) -> None:
    """train-old/train-new, data parallel when started by torchrun with more than one process (rank 0 writes)."""
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    started_here = distributed and not torch.distributed.is_initialized()
    if distributed:
        ctx = init_from_env()
        if str(args.device).startswith("cuda"):
            args.device = f"cuda:{ctx.local_rank}"
    try:
        result = _train_old(args) if args.command == "train-old" else _train_new(args)
        if is_main_process():
            emit(result, as_json=args.json, human=_human_trained)
    except BaseException:
        if started_here:  # the other ranks may never arrive: do not wait for them
            shutdown(wait=False)
        raise
    if started_here:  # a caller's own process group stays up
        shutdown()


def _main(args: argparse.Namespace) -> int:
    if args.command == "reproduce":
        return reproduce_package("bt2-compat", quick, args)
    if args.command in DEVICE_COMMANDS:  # an unavailable device (--device cuda without CUDA) stops here, exit 2
        args.device = str(pick_device(args.device))
    _check_extras(args)
    torch.set_num_threads(args.threads)
    with value_errors_as_config_errors():  # library argument checks name the argument
        if args.command in ("train-old", "train-new"):
            _train_distributable(args)
        elif args.command == "evaluate":
            emit(_evaluate(args), as_json=args.json, human=_human_evaluate)
        elif args.command == "train":
            emit(_run(args), as_json=args.json, human=_human_run)
        elif args.command == "series":
            emit(_series(args), as_json=args.json, human=_human_series)
        else:
            raise AssertionError(f"unhandled command {args.command!r}")  # argparse rejects unknown commands first
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(_main, build_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
