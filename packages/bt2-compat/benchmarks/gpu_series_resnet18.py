"""GPU check (at most ~8 minutes on one H200): a short CIFAR-like series old -> new -> newer on ResNet-18.

Data: `make_synthetic_images` (seeded 3x32x32 gratings, blobs and clutter, 20 classes, `--per-class` images each,
70/30 split). Series: classes 10 -> 15 -> 20 (`--classes`), the `SeriesConfig.resnet18_cifar()` preset (ResNet-18
with a 3x3 stem, d = 128, k = 32, C = 2, Adam 1e-3, batch 128, cosine LR, random crop + flip), once with BT^2 and
once with independently trained models for contrast. Every (query, gallery) pair is evaluated (leave-one-out on
the test split, first min(d) dims).

Epochs: unless `--epochs` is given, the script times 10 BT^2 training steps on the device first and picks the
number of epochs (10 to 40) that fits `--budget-s` (default 300 s) of training for all 8 models (BT^2: m0, m1',
m1, m2', m2; independent: m0, m1, m2), with a 25% margin; startup, data and evaluation come on top (well under a
minute on a GPU). The chosen epochs and the timing are in `results.json`.

Written to `--out`: `results.json` (both matrices, mAP and top-1 and top-5, the criteria M(i/j) > M(j/j), timings,
epochs, device, peak GPU memory, config) and `<method>_<metric>.png` heatmaps for mAP and top-1; a summary and one
line per trained model (with the elapsed time) go to stdout.

    .venv/bin/python packages/bt2-compat/benchmarks/gpu_series_resnet18.py --out gpu_out          # CUDA, <= 8 min
    .venv/bin/python packages/bt2-compat/benchmarks/gpu_series_resnet18.py --out /tmp/s --smoke   # CPU, seconds

`--smoke` shrinks everything (width 4, 12 images per class, 4 classes 2 -> 3 -> 4, 1 epoch, d = 16, k = 4) so the
whole path runs on CPU in seconds; the test suite runs it.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

METRICS = ("mAP", "top1")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="output folder (results.json, PNG heatmaps)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, CPU, seconds (the test runs this)")
    parser.add_argument("--device", default=None, help="default: cuda when available (cpu with --smoke)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--classes", type=int, nargs="+", default=None, help="class steps (default: 10 15 20)")
    parser.add_argument("--per-class", type=int, default=None, help="images per class (default: 500)")
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="epochs per model (default: as many as --budget-s allows on this device, 10 to 40; 1 with --smoke)",
    )
    parser.add_argument(
        "--budget-s",
        type=float,
        default=300.0,
        help="training time to aim for when choosing the epochs, from a short timing of BT^2 steps (default: 300)",
    )
    parser.add_argument("--width", type=int, default=None, help="ResNet base width (default: 64)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: 128 (16 with --smoke)")
    parser.add_argument("--methods", nargs="+", default=["bt2", "independent"], choices=["bt2", "independent", "bct"])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    import torch

    from bt2_compat.data import make_synthetic_images
    from bt2_compat.series import SeriesConfig, plot_series, run_series

    torch.set_num_threads(args.threads)
    device = args.device or ("cpu" if args.smoke or not torch.cuda.is_available() else "cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        print(f"--device {device}: CUDA is not available", file=sys.stderr)
        return 2
    if device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick the fastest convolutions
    smoke = {"classes": [2, 3, 4], "per_class": 12, "width": 4, "batch_size": 16}
    full = {"classes": [10, 15, 20], "per_class": 500, "width": 64, "batch_size": 128}
    sizes = smoke if args.smoke else full
    classes = args.classes or sizes["classes"]
    per_class = args.per_class or sizes["per_class"]
    width = args.width or sizes["width"]
    batch_size = args.batch_size or sizes["batch_size"]
    start = time.perf_counter()
    data = make_synthetic_images(num_classes=classes[-1], per_class=per_class, seed=args.seed)
    base = SeriesConfig.resnet18_cifar(data=data.name, class_steps=tuple(classes), seed=args.seed, width=width)
    if args.smoke:
        base = replace(base, embedding_dim=16, extra_dims=4)
    timing: dict[str, Any] = {}
    if args.epochs is not None or args.smoke:
        epochs = args.epochs or 1
    else:  # fit the budget: time a few BT^2 steps, count the images every model sees per epoch
        seconds_per_image = _seconds_per_image(base, data, device, batch_size)
        train_sizes = [int((data.y_train < c).sum()) for c in classes]
        per_epoch = sum(
            train_sizes[0] + sum(n * (2 if method == "bt2" else 1) for n in train_sizes[1:]) for method in args.methods
        )
        epochs = max(10, min(40, int(args.budget_s / (1.25 * per_epoch * seconds_per_image))))
        timing = {"seconds_per_image": seconds_per_image, "images_per_epoch": per_epoch, "budget_s": args.budget_s}
        print(f"timing: {1 / seconds_per_image:.0f} images/s, {per_epoch} images per epoch -> {epochs} epochs")
    warmup = min(base.train.warmup_epochs, epochs - 1)
    base = replace(base, train=replace(base.train, epochs=epochs, warmup_epochs=warmup, batch_size=batch_size))
    args.out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "script": "gpu_series_resnet18",
        "smoke": args.smoke,
        "device": device,
        "gpu": torch.cuda.get_device_name(device) if device.startswith("cuda") else None,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "data": {"name": data.name, "per_class": per_class, "n_train": len(data.y_train), "n_test": len(data.y_test)},
        "epochs": epochs,
        "timing": timing,
        "series": {},
    }

    def log_epoch(name: str, epoch: int, loss: float) -> None:
        if epoch + 1 == epochs:  # one line per trained model, to follow the time budget
            print(f"  {name}: {epochs} epochs done, loss {loss:.3f}, {time.perf_counter() - start:.0f} s", flush=True)

    for method in args.methods:
        print(f"{method} series on {device} ...", flush=True)
        result = run_series(replace(base, method=method), dataset=data, device=device, on_epoch_end=log_epoch)
        entry = result.to_dict()
        entry["plots"] = {
            metric: str(plot_series(entry, args.out / f"{method}_{metric}.png", metric=metric)) for metric in METRICS
        }
        report["series"][method] = entry
        print(_summary(method, entry), flush=True)
    report["seconds"] = time.perf_counter() - start
    if device.startswith("cuda"):
        report["peak_memory_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    (args.out / "results.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"total {report['seconds']:.0f} s on {device}; wrote {args.out / 'results.json'}", flush=True)
    return 0


def _seconds_per_image(base: Any, data: Any, device: str, batch_size: int, steps: int = 10) -> float:
    """Seconds per training image of a BT^2 ResNet-18 step (augmentation, forward, loss, backward, Adam) here."""
    import torch
    import torch.nn.functional as F

    from bt2_compat.augment import augment_batch
    from bt2_compat.losses import bt2_loss
    from bt2_compat.models import ModelConfig, build_model

    arch = ModelConfig(
        kind="bt2",
        backbone="resnet18",
        width=base.width,
        in_channels=int(data.x_train.shape[1]),
        embedding_dim=base.embedding_dim,
        old_dim=base.embedding_dim,
        extra_dims=base.extra_dims,
        num_classes=data.num_classes,
    )
    model = build_model(arch, 0).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    x = torch.as_tensor(data.x_train[:batch_size]).to(device)
    y = torch.as_tensor(data.y_train[:batch_size]).to(device)
    old = F.normalize(torch.rand(len(y), base.embedding_dim, generator=gen), dim=1).to(device)
    classifier = F.normalize(torch.rand(data.num_classes, base.embedding_dim, generator=gen), dim=1).to(device)
    elapsed = 0.0
    for step in range(3 + steps):  # 3 untimed warm-up steps (cuDNN autotuning, allocator)
        tic = time.perf_counter()
        loss, _ = bt2_loss(model(augment_batch(x, gen)), y, old, old, classifier, (1.0, 10.0, 5.0), 16.0)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        float(loss.detach())  # the training loop reads the loss every step (a device sync)
        if step >= 3:
            elapsed += time.perf_counter() - tic
    return elapsed / (steps * len(y))


def _summary(method: str, entry: dict[str, Any]) -> str:
    names = entry["names"]
    lines = [f"{method} series ({entry['seconds']:.0f} s), rows: query model, columns: gallery model"]
    for metric in METRICS:
        lines.append(f"  {metric:<5}" + "".join(f"{name:>8}" for name in names))
        for name, row in zip(names, entry["matrix"][metric], strict=True):
            lines.append(f"  {name:<5}" + "".join(f"{value:8.1f}" for value in row))
        passed = entry["criteria"][metric]
        lines.append(f"  criteria M(i/j) > M(j/j) on {metric}: {sum(passed.values())}/{len(passed)} {passed}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
