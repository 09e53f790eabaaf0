"""Benchmark (a): vectorised ensemble training against a loop over members, each one torch.nn model.

Same M = 256, k = 10, n = 1024, same number of full-batch steps, float32, NTK parametrisation, measured side by side
in one run. The loop baseline is what one would write without vectorisation: per member an `nn.Sequential(Linear,
ReLU, Linear)` (no bias, NTK multipliers applied to the weights' outputs), `torch.optim.SGD`, `F.mse_loss`-free
½Σ loss, `steps` steps. To keep the baseline's run time bearable it trains `--loop-members` members and the time is
scaled to M (it is linear in the number of members).

Each vectorised backend is timed twice in a fresh process: **cold**, the first call (JAX traces and compiles the
training loop for each chunk shape, the analytic schedule is computed for the first time), and **warm**, the same
call again (JAX reuses the compilation). The speed-ups are reported for both.

    python packages/ntk-permute/benchmarks/bench_training.py [--steps 100] [--loop-members 32] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch

from ntk_permute.training import TrainConfig, train_ensemble


def loop_baseline(members: int, k: int, width: int, steps: int, lr: float) -> float:
    """Seconds to train `members` torch.nn models one after the other."""
    y = torch.eye(k)[torch.randperm(k, generator=torch.Generator().manual_seed(0))]
    x = torch.eye(k)
    a_w, a_v = 1.0 / math.sqrt(k), 1.0 / math.sqrt(width)
    start = time.perf_counter()
    for member in range(members):
        torch.manual_seed(member)
        first = torch.nn.Linear(k, width, bias=False)
        last = torch.nn.Linear(width, k, bias=False)
        torch.nn.init.normal_(first.weight)
        torch.nn.init.normal_(last.weight)
        optimiser = torch.optim.SGD([first.weight, last.weight], lr=lr)
        for _ in range(steps):
            optimiser.zero_grad()
            out = a_v * last(torch.relu(a_w * first(x)))
            loss = 0.5 * ((out - y) ** 2).sum()
            loss.backward()
            optimiser.step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=256)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--loop-members", type=int, default=32)
    parser.add_argument("--member-chunk", type=int, default=None, help="members per chunk (default: automatic)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    config = TrainConfig(
        k=args.k,
        width=args.width,
        n_members=args.members,
        steps=args.steps,
        dtype="float32",
        member_chunk=args.member_chunk,
    )
    results = {"M": args.members, "k": args.k, "n": args.width, "steps": args.steps, "threads": torch.get_num_threads()}
    for backend in ("jax", "torch"):
        cfg = config.replace(backend=backend, device="cpu" if backend == "torch" else None)
        for phase in ("cold", "warm"):  # cold: the first call, with JAX's tracing and compilation
            start = time.perf_counter()
            ensemble = train_ensemble(cfg)
            results[f"{backend}_{phase}_s"] = time.perf_counter() - start
        results[f"{backend}_max_residual"] = float(ensemble.residual_.max())
    lr = train_ensemble(config.replace(n_members=1)).schedule.learning_rate
    loop = loop_baseline(args.loop_members, args.k, args.width, args.steps, lr)
    results["loop_s_measured"] = loop
    results["loop_members_measured"] = args.loop_members
    results["loop_s_for_M"] = loop * args.members / args.loop_members
    for backend in ("jax", "torch"):
        for phase in ("cold", "warm"):
            results[f"speedup_{backend}_{phase}"] = results["loop_s_for_M"] / results[f"{backend}_{phase}_s"]
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for key, value in results.items():
            print(f"{key:>24}: {value:.4g}" if isinstance(value, float) else f"{key:>24}: {value}")


if __name__ == "__main__":
    main()
