"""Leave-one-out retrieval evaluation: the chunked path against one full n x n score matrix, side by side.

Both use `bt2_compat.evaluate.retrieval` (so the same `similarity_blocks` scores and `retrieval_metrics`), once
with its default query blocks (about 4M score entries each) and once with `query_block=n`, a single `[n, n]`
block: the full-matrix implementation. Each measurement runs in a fresh subprocess so that its peak resident
memory (`ru_maxrss`) is its own. Embeddings: seeded Gaussian class clusters, `[n, dim]` float32.

    .venv/bin/python packages/bt2-compat/benchmarks/bench_retrieval.py --sizes 10000 50000 \\
        [--full-max 50000] [--dim 64] [--classes 100] [--threads 2] [--json out.json]

`--full-max` caps the full-matrix runs: the single block holds the float32 scores and the boolean leave-one-out
mask, about 5 bytes per entry, so 50,000 needs about 12.5 GB.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def _measure(n: int, dim: int, classes: int, mode: str, threads: int) -> dict[str, float]:
    import numpy as np
    import torch

    from bt2_compat.evaluate import retrieval

    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, classes, size=n)
    centres = rng.standard_normal((classes, dim)).astype(np.float32)
    x = torch.from_numpy(centres[labels] + 1.5 * rng.standard_normal((n, dim)).astype(np.float32))
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    result = retrieval(x, x, labels, query_block=n if mode == "full" else None)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "n": n,
        "mode": mode,
        "seconds": seconds,
        "peak_rss_mib": peak,
        "rss_before_mib": base,
        "mAP": 100 * result.mean_ap,
        "top1": 100 * result.top_k(1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10000, 50000])
    parser.add_argument("--full-max", type=int, default=50000, help="largest n for the full-matrix run")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None)
    parser.add_argument("--one", nargs=2, metavar=("N", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(_measure(int(args.one[0]), args.dim, args.classes, args.one[1], args.threads)))
        return
    rows = []
    for n in args.sizes:
        for mode in ("chunked", "full"):
            if mode == "full" and n > args.full_max:
                continue
            cmd = [sys.executable, __file__, "--one", str(n), mode, "--dim", str(args.dim)]
            cmd += ["--classes", str(args.classes), "--threads", str(args.threads)]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                row = {"n": n, "mode": mode, "error": proc.stderr.strip().splitlines()[-1:]}
            else:
                row = json.loads(proc.stdout)
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    print(f"{'n':>7} {'mode':>8} {'seconds':>9} {'peak MiB':>9} {'mAP':>7} {'top1':>7}", file=sys.stderr)
    for row in rows:
        if "error" in row:
            print(f"{row['n']:>7} {row['mode']:>8} failed: {row['error']}", file=sys.stderr)
        else:
            print(
                f"{row['n']:>7} {row['mode']:>8} {row['seconds']:9.1f} {row['peak_rss_mib']:9.0f} "
                f"{row['mAP']:7.2f} {row['top1']:7.2f}",
                file=sys.stderr,
            )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=1)


if __name__ == "__main__":
    main()
