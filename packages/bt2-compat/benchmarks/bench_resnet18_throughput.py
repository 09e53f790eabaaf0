"""Training throughput and peak memory of the CIFAR-style ResNet-18 on 32x32 inputs, with and without the BT^2 head.

One step = (optional crop+flip augmentation), forward, loss, backward, Adam update on a fixed random
`[batch, 3, 32, 32]` batch; the first `--warmup` steps are not timed.

- `plain`: `EmbeddingModel` (ResNet-18 -> 128-d embedding), label-smoothed CE (the old / independent model).
- `bt2`: `BT2Model` (ResNet-18 emitting d_new + d_old = 256 channels, BT^2 head with d = d_old = 128, k = 32,
  both orthogonal parametrizations), the full stage-2 loss against fixed teacher features (teachers are cached,
  as in training, so their cost is not in the step).

Peak memory: on CUDA `torch.cuda.max_memory_allocated` over the timed steps; on CPU each variant runs in its own
subprocess and reports its peak resident set (`ru_maxrss`) and the growth over the resident set after building
the model and the batch.

    .venv/bin/python packages/bt2-compat/benchmarks/bench_resnet18_throughput.py [--batch 64] [--steps 5] \\
        [--width 64] [--threads 2] [--device cpu|cuda] [--heads plain bt2] [--augment] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from typing import Any


def _measure(head: str, args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from bt2_compat.augment import augment_batch
    from bt2_compat.losses import bt2_loss, classification_loss
    from bt2_compat.models import ModelConfig, build_model

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    kind = "bt2" if head == "bt2" else "embedding"
    config = ModelConfig(
        kind=kind, backbone="resnet18", width=args.width, embedding_dim=128, old_dim=128, extra_dims=32, num_classes=100
    )
    model = build_model(config, 0).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(args.batch, 3, 32, 32, generator=gen).to(device)
    y = torch.randint(0, 100, (args.batch,), generator=gen).to(device)
    old = torch.nn.functional.normalize(torch.rand(args.batch, 128, generator=gen), dim=1).to(device)
    new = torch.nn.functional.normalize(torch.rand(args.batch, 128, generator=gen), dim=1).to(device)
    classifier = torch.nn.functional.normalize(torch.rand(100, 128, generator=gen), dim=1).to(device)
    aug_gen = torch.Generator().manual_seed(1)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for step in range(args.warmup + args.steps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        xb = augment_batch(x, aug_gen) if args.augment else x
        out = model(xb)
        if head == "bt2":
            loss, _ = bt2_loss(out, y, old, new, classifier, (1.0, 10.0, 5.0), 16.0)
        else:
            loss = classification_loss(out.logits, y, 0.1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if step >= args.warmup:
            times.append(time.perf_counter() - start)
    per_step = sum(times) / len(times)
    result: dict[str, Any] = {
        "head": head,
        "device": str(device),
        "threads": args.threads,
        "batch": args.batch,
        "width": args.width,
        "augment": args.augment,
        "steps": args.steps,
        "parameters": sum(p.numel() for p in model.parameters()),
        "seconds_per_step": per_step,
        "images_per_s": args.batch / per_step,
        "torch": torch.__version__,
    }
    if device.type == "cuda":
        result["peak_memory_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
        result["gpu"] = torch.cuda.get_device_name(device)
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        result["peak_rss_mb"] = peak
        result["peak_rss_growth_mb"] = peak - base_rss
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--heads", nargs="+", choices=["plain", "bt2"], default=["plain", "bt2"])
    parser.add_argument("--augment", action="store_true", help="random crop + flip of every batch (in the step)")
    parser.add_argument("--json", default=None, help="also write the results as JSON here")
    parser.add_argument("--child", choices=["plain", "bt2"], default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:  # one measurement, in this (fresh) process
        print(json.dumps(_measure(args.child, args)))
        return 0
    rows = []
    for head in args.heads:
        if args.device.startswith("cuda"):  # the CUDA allocator's peak is per measurement already
            rows.append(_measure(head, args))
        else:  # a fresh process per variant so that ru_maxrss is its own
            options = {"--batch": args.batch, "--steps": args.steps, "--warmup": args.warmup, "--width": args.width}
            options.update({"--threads": args.threads, "--device": args.device, "--child": head})
            cmd = [sys.executable, __file__, *(str(v) for kv in options.items() for v in kv)]
            cmd += ["--augment"] if args.augment else []
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
        row = rows[-1]
        memory = row.get("peak_memory_mb", row.get("peak_rss_mb"))
        print(
            f"{head:>5}: {row['images_per_s']:8.1f} images/s ({row['seconds_per_step']:.3f} s/step, batch "
            f"{row['batch']}), peak memory {memory:.0f} MB",
            file=sys.stderr,
        )
    print(json.dumps(rows))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(rows, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
