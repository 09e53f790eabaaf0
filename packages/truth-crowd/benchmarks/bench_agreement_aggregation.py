"""Speed and peak memory: Krippendorff's alpha (ours vs the `krippendorff` package) and Dawid-Skene (ours vs
crowd-kit, when installed), side by side in one run on the same simulated data.

    python packages/truth-crowd/benchmarks/bench_agreement_aggregation.py [--judgments 1000000] [--json]

Alpha: `--judgments` ratings on the 5-level scale, 10 per unit, as a [10, n_units] reliability matrix (rater slots:
alpha ignores rater identity). Dawid-Skene: `--judgments` labels, 5 per task, 3 classes, 200 workers of mixed
reliability. Alpha times are the best of `--repeat` runs per implementation; Dawid-Skene runs once each. Peak memory
is the extra traced by `tracemalloc` during one more (traced) call, numpy allocations included.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

from truth_crowd.aggregation import DawidSkene
from truth_crowd.agreement import krippendorff_alpha
from truth_crowd.simulate import simulate_answers


def _measure(fn: Callable[[], Any], repeat: int = 1) -> tuple[Any, float, float]:
    """(value, best wall time of `repeat` untraced runs, peak traced MiB of one extra traced run)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return value, best, peak / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--judgments", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="alpha: best of N timed runs per implementation")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    rows: list[dict[str, Any]] = []

    n_units = args.judgments // 10
    truth = rng.integers(-2, 3, n_units)
    matrix = np.clip(truth[None, :] + rng.integers(-1, 2, (10, n_units)), -2, 2).astype(float)
    for level in ("nominal", "ordinal", "interval", "ratio"):
        ours, t, mem = _measure(
            lambda level=level: krippendorff_alpha(matrix, level=level, value_domain=[-2, -1, 0, 1, 2]), args.repeat
        )
        rows.append({"task": f"alpha {level}", "impl": "truth-crowd", "seconds": t, "peak_mib": mem, "value": ours})
        try:
            import krippendorff
        except ImportError:
            rows.append(
                {
                    "task": f"alpha {level}",
                    "impl": "krippendorff",
                    "seconds": None,
                    "peak_mib": None,
                    "value": "not installed",
                }
            )
        else:
            ref, t, mem = _measure(
                lambda level=level: krippendorff.alpha(
                    matrix, level_of_measurement=level, value_domain=[-2, -1, 0, 1, 2]
                ),
                args.repeat,
            )
            rows.append(
                {"task": f"alpha {level}", "impl": "krippendorff", "seconds": t, "peak_mib": mem, "value": float(ref)}
            )

    sim = simulate_answers(n_tasks=args.judgments // 5, n_workers=200, n_labels=3, answers_per_task=5, seed=args.seed)
    model, t, mem = _measure(lambda: DawidSkene(n_iter=100, tol=1e-5).fit(sim.answers))
    accuracy = float((model.labels_.reindex(sim.truth.index) == sim.truth).mean())
    rows.append(
        {
            "task": "dawid-skene",
            "impl": "truth-crowd",
            "seconds": t,
            "peak_mib": mem,
            "value": f"acc {accuracy:.4f}, {model.n_iter_} iter",
        }
    )
    try:
        from crowdkit.aggregation import DawidSkene as CrowdKitDS
    except ImportError:
        rows.append(
            {"task": "dawid-skene", "impl": "crowd-kit", "seconds": None, "peak_mib": None, "value": "not installed"}
        )
    else:
        labels, t, mem = _measure(lambda: CrowdKitDS(n_iter=100, tol=1e-5).fit_predict(sim.answers))
        accuracy = float((labels.reindex(sim.truth.index) == sim.truth).mean())
        rows.append(
            {"task": "dawid-skene", "impl": "crowd-kit", "seconds": t, "peak_mib": mem, "value": f"acc {accuracy:.4f}"}
        )

    if args.json:
        json.dump({"judgments": args.judgments, "rows": rows}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(f"{args.judgments:,} judgments")
        for r in rows:
            secs = "-" if r["seconds"] is None else f"{r['seconds']:.3f}"
            mem = "-" if r["peak_mib"] is None else f"{r['peak_mib']:.1f}"
            print(f"{r['task']:<18} {r['impl']:<13} {secs:>9} s {mem:>9} MiB  {r['value']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
