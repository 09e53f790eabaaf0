"""The 4-seed digits table (spec 6.4 / issue 6 acceptance): every method, mAP (top-1), and the criterion checks.

Run from the repository root (about 20-45 s per seed on one thread, depending on machine load):

    .venv/bin/python packages/bt2-compat/benchmarks/bench_digits_seeds.py [--seeds 0 1 2 3] [--json out.json]

Pinned to one torch thread (spec 6.4: one thread is ~3x faster per step than two for these small MLPs).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from bt2_compat.experiment import ExperimentConfig, run_experiment

COLUMNS = [
    "old/old",
    "independent/old",
    "independent/independent",
    "bct/old",
    "bct/bct",
    "l2/old",
    "l2/l2",
    "bt2/old",
    "bt2/bt2",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--preset", choices=["digits", "paper"], default="digits")
    parser.add_argument("--json", default=None, help="also write the rows as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    header = "| seed | " + " | ".join(COLUMNS) + " | BT^2 criterion mAP/top-1 | bt2/bt2 - ind/ind mAP | s |"
    print(header)
    print("|" + "---|" * (len(COLUMNS) + 4))
    for seed in args.seeds:
        config = getattr(ExperimentConfig, args.preset)(seed=seed)
        t0 = time.perf_counter()
        result = run_experiment(config)
        cells = result.table.cells
        crit = result.criteria()["bt2"]
        gap = cells["bt2/bt2"]["mAP"] - cells["independent/independent"]["mAP"]
        print(
            f"| {seed} | "
            + " | ".join(f"{cells[c]['mAP']:.1f} ({cells[c]['top1']:.1f})" for c in COLUMNS)
            + f" | {'yes' if crit['mAP'] else 'NO'}/{'yes' if crit['top1'] else 'NO'} | {gap:+.2f} | "
            f"{time.perf_counter() - t0:.0f} |",
            flush=True,
        )
        rows.append(result.to_dict())
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(rows, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
