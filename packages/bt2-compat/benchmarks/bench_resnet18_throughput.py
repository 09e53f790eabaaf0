"""Training throughput of the CIFAR-style ResNet-18 on 32x32 inputs (images/s), a few steps of `train_model`'s step.

One step = forward, the classification loss, backward, Adam update, on a random `[batch, 3, 32, 32]` batch; the
first `--warmup` steps are not timed.

    .venv/bin/python packages/bt2-compat/benchmarks/bench_resnet18_throughput.py [--batch 64] [--steps 5] \\
        [--width 64] [--threads 2] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from bt2_compat.losses import classification_loss
from bt2_compat.models import ModelConfig, build_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    config = ModelConfig(backbone="resnet18", width=args.width, embedding_dim=128, num_classes=100)
    model = build_model(config, 0).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(args.batch, 3, 32, 32, generator=gen).to(device)
    y = torch.randint(0, 100, (args.batch,), generator=gen).to(device)
    times = []
    for step in range(args.warmup + args.steps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        loss = classification_loss(model(x).logits, y, 0.1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if step >= args.warmup:
            times.append(time.perf_counter() - start)
    per_step = sum(times) / len(times)
    print(
        json.dumps(
            {
                "device": str(device),
                "threads": args.threads,
                "batch": args.batch,
                "width": args.width,
                "steps": args.steps,
                "seconds_per_step": per_step,
                "images_per_s": args.batch / per_step,
                "torch": torch.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
