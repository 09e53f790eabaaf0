"""Benchmarks (b) exhaustive analytic evaluation at k = 20 and (c) trained-ensemble evaluation at k = 16.

(b) `exhaustive_check` over all 1,048,575 nonzero inputs at k = 20, closed-form ("mform") and full-kernel ("kernel")
    modes: wall time and peak traced memory (tracemalloc, numpy allocations; the torch kernel's buffers are not
    traced by tracemalloc, so the kernel mode also reports the peak RSS growth).
(c) the rounded mean of a trained ensemble at all 65,535 nonzero inputs at k = 16 (`evaluate_all_inputs`):
    time per member·input.

    python packages/ntk-permute/benchmarks/bench_evaluation.py [--members 64] [--width 512] [--json]
"""

from __future__ import annotations

import argparse
import json
import resource
import time
import tracemalloc

import numpy as np

from ntk_permute.evaluation import evaluate_all_inputs
from ntk_permute.exhaustive import exhaustive_check
from ntk_permute.training import TrainConfig, train_ensemble


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=64)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results: dict[str, float | int] = {}
    perms = [np.random.default_rng(0).permutation(20)]
    for mode in ("mform", "kernel"):
        rss_before = _rss_mb()
        tracemalloc.start()
        start = time.perf_counter()
        outcome = exhaustive_check(20, perms, mode=mode)  # type: ignore[arg-type]
        results[f"k20_{mode}_s"] = time.perf_counter() - start
        results[f"k20_{mode}_peak_traced_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        results[f"k20_{mode}_rss_growth_mb"] = _rss_mb() - rss_before
        results[f"k20_{mode}_all_exact"] = int(outcome.all_exact)
    config = TrainConfig(k=16, width=args.width, n_members=args.members, parametrization="standard")
    start = time.perf_counter()
    ensemble = train_ensemble(config)
    results["k16_train_s"] = time.perf_counter() - start
    start = time.perf_counter()
    evaluated = evaluate_all_inputs(ensemble)
    seconds = time.perf_counter() - start
    results.update(
        {
            "k16_members": args.members,
            "k16_width": args.width,
            "k16_eval_s": seconds,
            "k16_inputs": evaluated.n_inputs,
            "k16_exact": evaluated.n_exact,
            "k16_ns_per_member_input": seconds / (args.members * evaluated.n_inputs) * 1e9,
        }
    )
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for key, value in results.items():
            print(f"{key:>28}: {value:.4g}" if isinstance(value, float) else f"{key:>28}: {value}")


if __name__ == "__main__":
    main()
