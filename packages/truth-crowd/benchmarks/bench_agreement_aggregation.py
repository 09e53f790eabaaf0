"""Speed: Krippendorff's alpha (ours vs the `krippendorff` package) and Dawid-Skene (ours vs crowd-kit, when
installed), side by side in one run on the same simulated data, on two layouts of `--judgments` ratings:

- `dense`: 10 raters x judgments/10 units, every cell rated (the earlier benchmark's layout);
- `crowd`: 2,000 workers x judgments/10 items, 10 distinct workers per item, so the raters x units matrix is 99.5%
  NaN (how crowd data looks).

    python packages/truth-crowd/benchmarks/bench_agreement_aggregation.py [--judgments 1000000]
        [--layouts dense crowd] [--repeat 3] [--ds-iterations 20] [--skip-ds] [--json]

Alpha, for each level, with and without `value_domain` (the 5-level scale), from three inputs:
`matrix` (ours and krippendorff's on the same NaN-padded float matrix), `long` (ours from the long table with string
worker and item ids, `krippendorff_alpha(answers=...)`: no matrix is built). A `long -> matrix` row times what a
user of the krippendorff package must do first (pandas `pivot`) and our `to_reliability_matrix`. The `ratio`
column is ours / krippendorff's time on the ready matrix (the strictest comparison: it charges our long-table path
for the id hashing that krippendorff never does); `r+pivot`, for the long rows, is ours / (pandas pivot +
krippendorff), what the same user pays with the package. Every value is checked against krippendorff's (|diff|).

Dawid-Skene: the same labels (3 classes, workers of mixed reliability), `--ds-iterations` forced EM iterations on
both sides (ours `tol=0`, crowd-kit `tol=-inf`), so the time per iteration is compared, not the stopping rules.

Times are the best of `--repeat` runs (krippendorff and crowd-kit: best of min(repeat, 2) on the crowd layout, where
one run takes seconds). Run it on a quiet machine: a shared machine's load moves every figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from truth_crowd.aggregation import DawidSkene
from truth_crowd.agreement import LEVELS, krippendorff_alpha
from truth_crowd.schema import to_reliability_matrix

DOMAIN = [-2, -1, 0, 1, 2]


def _best(fn: Callable[[], Any], repeat: int) -> tuple[Any, float]:
    """(value, best wall time of `repeat` runs)."""
    best, value = float("inf"), None
    for _ in range(max(repeat, 1)):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return value, best


def make_layout(name: str, n_judgments: int, seed: int) -> tuple[np.ndarray, pd.DataFrame]:
    """`(matrix [raters, units] with NaN, long table worker/task/label with string ids)` of one layout."""
    rng = np.random.default_rng(seed)
    per_unit = 10
    n_units = n_judgments // per_unit
    n_raters = per_unit if name == "dense" else 2000
    truth = rng.integers(-2, 3, n_units)
    values = np.clip(truth[:, None] + rng.integers(-1, 2, (n_units, per_unit)), -2, 2)
    if name == "dense":
        raters = np.tile(np.arange(per_unit), (n_units, 1))
    else:  # 10 distinct workers per item: a random start and strides of 197 (coprime with 2,000)
        raters = (rng.integers(0, n_raters, n_units)[:, None] + np.arange(per_unit) * 197) % n_raters
    matrix = np.full((n_raters, n_units), np.nan)
    matrix[raters, np.arange(n_units)[:, None]] = values
    worker_names = np.array([f"w{i}" for i in range(n_raters)], dtype=object)
    unit_names = np.array([f"item{j}" for j in range(n_units)], dtype=object)
    long = pd.DataFrame(
        {
            "worker": worker_names[raters.ravel()],
            "task": unit_names[np.repeat(np.arange(n_units), per_unit)],
            "label": values.ravel().astype(np.int64),
        }
    )
    return matrix, long


def make_ds_answers(name: str, n_judgments: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    """Dawid-Skene input: 3 classes; 60% good workers (accuracy 0.7-0.95), 25% noisy (0.4-0.6), 15% spammers."""
    rng = np.random.default_rng(seed + 1)
    per_task = 5 if name == "dense" else 10
    n_workers = 200 if name == "dense" else 2000
    n_tasks = n_judgments // per_task
    kind = rng.choice(3, n_workers, p=[0.6, 0.25, 0.15])
    accuracy = np.where(kind == 0, rng.uniform(0.7, 0.95, n_workers), rng.uniform(0.4, 0.6, n_workers))
    constant = rng.integers(0, 3, n_workers)
    truth = rng.integers(0, 3, n_tasks)
    workers = (rng.integers(0, n_workers, n_tasks)[:, None] + np.arange(per_task) * 37) % n_workers
    right = rng.random((n_tasks, per_task)) < accuracy[workers]
    wrong = (truth[:, None] + rng.integers(1, 3, (n_tasks, per_task))) % 3
    labels = np.where(right, truth[:, None], wrong)
    labels = np.where(kind[workers] == 2, constant[workers], labels)
    names = np.array([f"w{i}" for i in range(n_workers)], dtype=object)
    tasks = np.array([f"t{j}" for j in range(n_tasks)], dtype=object)
    answers = pd.DataFrame(
        {
            "worker": names[workers.ravel()],
            "task": tasks[np.repeat(np.arange(n_tasks), per_task)],
            "label": labels.ravel(),
        }
    )
    return answers, pd.Series(truth, index=tasks)


def bench_alpha(layout: str, args: argparse.Namespace, rows: list[dict[str, Any]]) -> None:
    matrix, long = make_layout(layout, args.judgments, args.seed)
    heavy = layout == "crowd"
    ref_repeat = min(args.repeat, 2) if heavy else args.repeat
    try:
        import krippendorff
    except ImportError:
        krippendorff = None
    _, pivot_t = _best(lambda: long.pivot(index="worker", columns="task", values="label"), 1)
    _, ours_t = _best(lambda: to_reliability_matrix(long), 1)
    rows.append({"layout": layout, "task": "long -> matrix", "ours_s": ours_t, "ref_s": pivot_t, "note": "pivot"})
    for level in LEVELS:
        for domain in (DOMAIN, None):
            task = f"alpha {level} {'domain' if domain else 'no domain'}"
            ref_value, ref_t = None, None
            if krippendorff is not None:
                ref_value, ref_t = _best(
                    lambda level=level, domain=domain: float(
                        krippendorff.alpha(matrix, level_of_measurement=level, value_domain=domain)
                    ),
                    ref_repeat,
                )
            for source in ("matrix", "long"):
                if source == "matrix":
                    value, t = _best(
                        lambda level=level, domain=domain: krippendorff_alpha(matrix, level=level, value_domain=domain),
                        args.repeat,
                    )
                else:
                    value, t = _best(
                        lambda level=level, domain=domain: krippendorff_alpha(
                            answers=long, level=level, value_domain=domain
                        ),
                        args.repeat,
                    )
                rows.append(
                    {
                        "layout": layout,
                        "task": f"{task} from {source}",
                        "ours_s": t,
                        "ref_s": ref_t,
                        "ratio": None if ref_t is None else t / ref_t,
                        # from a long table the krippendorff user must pivot first: ours / (pivot + krippendorff)
                        "ratio_vs_pivot": None if ref_t is None or source == "matrix" else t / (ref_t + pivot_t),
                        "max_abs_diff": None if ref_value is None else abs(value - ref_value),
                        "value": value,
                    }
                )


def bench_dawid_skene(layout: str, args: argparse.Namespace, rows: list[dict[str, Any]]) -> None:
    answers, truth = make_ds_answers(layout, args.judgments, args.seed)
    iterations = args.ds_iterations
    model, t = _best(lambda: DawidSkene(n_iter=iterations, tol=0).fit(answers), 1)
    accuracy = float((model.labels_.reindex(truth.index) == truth).mean())
    row: dict[str, Any] = {
        "layout": layout,
        "task": f"dawid-skene, {iterations} iterations",
        "ours_s": t,
        "ref_s": None,
        "note": f"ours: {model.n_iter_} iterations, accuracy {accuracy:.4f}",
    }
    try:
        from crowdkit.aggregation import DawidSkene as CrowdKitDS
    except ImportError:
        row["note"] += "; crowd-kit not installed"
    else:
        theirs, ref_t = _best(lambda: CrowdKitDS(n_iter=iterations, tol=-np.inf).fit(answers), 1)
        their_acc = float((theirs.labels_.reindex(truth.index) == truth).mean())
        agree = float((model.labels_.reindex(theirs.labels_.index) == theirs.labels_).mean())
        row.update(
            ref_s=ref_t,
            ratio=t / ref_t,
            note=row["note"] + f"; crowd-kit: {len(theirs.loss_history_)} iterations, accuracy {their_acc:.4f}"
            f"; labels agree {agree:.4f}",
        )
    rows.append(row)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--judgments", type=int, default=1_000_000)
    parser.add_argument("--layouts", nargs="+", choices=("dense", "crowd"), default=["dense", "crowd"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="best of N timed runs")
    parser.add_argument("--ds-iterations", type=int, default=20)
    parser.add_argument("--skip-ds", action="store_true")
    parser.add_argument("--skip-alpha", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    for layout in args.layouts:
        if not args.skip_alpha:
            bench_alpha(layout, args, rows)
        if not args.skip_ds:
            bench_dawid_skene(layout, args, rows)
        print(f"{layout} done", file=sys.stderr)
    if args.json:
        json.dump({"judgments": args.judgments, "rows": rows}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    print(f"{args.judgments:,} judgments; times in seconds; ratio = ours / reference")
    print(f"{'layout':<6} {'task':<44} {'ours':>8} {'ref':>8} {'ratio':>6} {'r+pivot':>7} {'|diff|':>8}  note")
    for r in rows:
        ref = "-" if r.get("ref_s") is None else f"{r['ref_s']:.3f}"
        ratio = "-" if r.get("ratio") is None else f"{r['ratio']:.3f}"
        diff = "-" if r.get("max_abs_diff") is None else f"{r['max_abs_diff']:.0e}"
        pivot = "-" if r.get("ratio_vs_pivot") is None else f"{r['ratio_vs_pivot']:.3f}"
        line = f"{r['layout']:<6} {r['task']:<44} {r['ours_s']:>8.3f} {ref:>8} {ratio:>6} {pivot:>7} {diff:>8}"
        print(f"{line}  {r.get('note', '')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
