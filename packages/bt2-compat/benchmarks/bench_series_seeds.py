"""Multi-seed multi-step series on digits (classes 3 -> 6 -> 10, spec acceptance A6): the all-pairs matrix per seed.

For each seed and method, `run_series` trains m0 (3 classes, independent), m1 (6 classes) and m2 (10 classes) by
the method, with the previous model as old model, and evaluates every (query, gallery) pair. Printed: one Markdown
row per (method, seed) with mAP (top-1) of every cell and how many of the criteria M(i/j) > M(j/j) hold.

    .venv/bin/python packages/bt2-compat/benchmarks/bench_series_seeds.py [--seeds 0 1 2 3] \\
        [--methods bt2 bct independent] [--epochs 60] [--json out.json]

Pinned to one torch thread (spec 6.4: one thread is faster for these small MLPs on a busy machine).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace

import torch

from bt2_compat.experiment import NEW_METHODS
from bt2_compat.series import SeriesConfig, run_series
from bt2_compat.train import TrainConfig

CELLS = [("m0", "m0"), ("m1", "m0"), ("m2", "m0"), ("m1", "m1"), ("m2", "m1"), ("m2", "m2")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--methods", nargs="+", choices=NEW_METHODS, default=["bt2", "bct"])
    parser.add_argument("--classes", type=int, nargs="+", default=[3, 6, 10])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--json", default=None, help="also write every series result as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    names = [f"m{t}" for t in range(len(args.classes))]
    index = {name: i for i, name in enumerate(names)}
    cells = [(q, g) for q, g in CELLS if q in index and g in index]
    print("| method | seed | " + " | ".join(f"{q}/{g}" for q, g in cells) + " | criteria mAP / top-1 | s |")
    print("|" + "---|" * (len(cells) + 4))
    rows = []
    for method in args.methods:
        for seed in args.seeds:
            config = SeriesConfig(
                class_steps=tuple(args.classes),
                method=method,
                seed=seed,
                train=replace(TrainConfig(), epochs=args.epochs),
            )
            result = run_series(config)
            mat = result.matrix
            crit = {m: result.criteria(m) for m in ("mAP", "top1")}
            text = " | ".join(
                f"{mat['mAP'][index[q]][index[g]]:.1f} ({mat['top1'][index[q]][index[g]]:.1f})" for q, g in cells
            )
            passed = " / ".join(f"{sum(crit[m].values())}/{len(crit[m])}" for m in ("mAP", "top1"))
            print(f"| {method} | {seed} | {text} | {passed} | {result.seconds:.0f} |", flush=True)
            rows.append(result.to_dict())
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(rows, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
