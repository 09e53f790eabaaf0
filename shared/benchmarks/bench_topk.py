"""Benchmark: streaming `topk_similarity` against the full score matrix + `torch.topk` (time and peak memory).

Each measurement runs in a fresh subprocess so that peak memory is not polluted by earlier variants: the worker
creates the inputs (seeded), warms torch up on a tiny problem, reads its peak RSS (`ru_maxrss`), runs the variant
`--runs` times under a timer, and reports the growth of the peak RSS over the first call, i.e. the peak *extra*
memory of one call. Processes are interleaved (a, b, c, a, b, c, ...) so slow phases of a shared machine hit all
variants alike; the median over all timed calls is reported.

    python shared/benchmarks/bench_topk.py                      # 1,000 x 200,000 x 128 float32, k=10, CPU
    python shared/benchmarks/bench_topk.py --repeats 7 --json   # machine-readable results on stdout

Not a test: nothing here asserts; the table goes to stderr (`--json`: JSON to stdout).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

__all__ = ["VARIANTS", "main", "run_worker"]

logger = logging.getLogger("bench_topk")

#: Variant name -> (what it runs, which baseline its ratios are taken against).
VARIANTS = {
    "full_dot": ("queries @ gallery.T, then torch.topk", "full_dot"),
    "stream_dot": ("topk_similarity(metric='dot')", "full_dot"),
    "full_cosine": ("normalise both, queries @ gallery.T, then torch.topk", "full_cosine"),
    "stream_cosine": ("topk_similarity(metric='cosine')", "full_cosine"),
}


def _peak_rss_bytes() -> int:
    """Peak resident set size of this process so far (Linux reports ru_maxrss in KiB, macOS in bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def run_worker(args: argparse.Namespace) -> dict[str, Any]:
    """Run one variant once in this (fresh) process; return its seconds and peak extra bytes."""
    import torch

    from repro_core.kernels import topk_similarity

    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(args.seed)
    queries = torch.randn(args.n_queries, args.dim, generator=gen)
    gallery = torch.randn(args.n_gallery, args.dim, generator=gen)
    variant = args.worker
    kwargs = {"chunk_size": args.chunk_size, "backend": "torch"}

    def run(q: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if variant == "full_dot":
            return torch.topk(q @ g.T, args.k, dim=1)
        if variant == "full_cosine":
            qn = torch.nn.functional.normalize(q, dim=1)
            gn = torch.nn.functional.normalize(g, dim=1)
            return torch.topk(qn @ gn.T, args.k, dim=1)
        return topk_similarity(q, g, args.k, metric=variant.split("_", 1)[1], **kwargs)

    run(queries[:8], gallery[: max(args.k, 64)])  # thread pool, lazy imports
    base = _peak_rss_bytes()
    seconds, extra = [], 0
    for i in range(args.runs):
        start = time.perf_counter()
        indices = run(queries, gallery)[1]
        seconds.append(time.perf_counter() - start)
        if i == 0:  # later calls also see malloc's adapted thresholds and cached heap: not the variant's own peak
            extra = _peak_rss_bytes() - base
    digest = hashlib.sha256(indices.numpy().tobytes()).hexdigest()[:16]
    return {"variant": variant, "seconds": seconds, "peak_extra_bytes": extra, "indices_sha256": digest}


def _worker_command(args: argparse.Namespace, variant: str) -> list[str]:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", variant]
    for name in ("n_queries", "n_gallery", "dim", "k", "threads", "seed", "runs"):
        cmd += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    if args.chunk_size is not None:
        cmd += ["--chunk-size", str(args.chunk_size)]
    return cmd


def main(argv: list[str] | None = None) -> int:
    """Parse options, run the interleaved repeats in subprocesses and print the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-queries", type=int, default=1000)
    parser.add_argument("--n-gallery", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("-k", "--k", type=int, default=10)
    parser.add_argument("--chunk-size", type=int, default=None, help="default: topk_similarity's automatic choice")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads in every worker")
    parser.add_argument("--repeats", type=int, default=7, help="fresh processes per variant")
    parser.add_argument("--runs", type=int, default=3, help="timed calls per process (median over all reported)")
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    parser.add_argument("--worker", choices=sorted(VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(run_worker(args)))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)

    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in args.variants}
    for rep in range(args.repeats):
        for variant in args.variants:
            out = subprocess.run(_worker_command(args, variant), capture_output=True, text=True, check=True)
            result = json.loads(out.stdout.strip().splitlines()[-1])
            runs[variant].append(result)
            logger.info(
                "repeat %d %-14s %s s  %7.1f MiB",
                rep,
                variant,
                " ".join(f"{t:.3f}" for t in result["seconds"]),
                result["peak_extra_bytes"] / 2**20,
            )
    summary: dict[str, Any] = {
        "config": {
            k: getattr(args, k)
            for k in ("n_queries", "n_gallery", "dim", "k", "chunk_size", "threads", "repeats", "runs")
        },
        "variants": {},
    }
    for variant, results in runs.items():
        digests = {r["indices_sha256"] for r in results}
        summary["variants"][variant] = {
            "what": VARIANTS[variant][0],
            "median_seconds": statistics.median(t for r in results for t in r["seconds"]),
            "median_peak_extra_mib": statistics.median(r["peak_extra_bytes"] for r in results) / 2**20,
            "seconds": [t for r in results for t in r["seconds"]],
            "indices_sha256": sorted(digests),
        }
    for variant, stats in summary["variants"].items():
        base = summary["variants"].get(VARIANTS[variant][1])
        if base is not None and variant != VARIANTS[variant][1]:
            stats["time_ratio"] = stats["median_seconds"] / base["median_seconds"]
            stats["memory_ratio"] = stats["median_peak_extra_mib"] / max(base["median_peak_extra_mib"], 1e-9)
            stats["same_indices_as_baseline"] = stats["indices_sha256"] == base["indices_sha256"]
    if args.json:
        print(json.dumps(summary, indent=2))
    lines = [
        "| variant | median time (s) | peak extra memory (MiB) | time ratio | memory ratio | same top-k |",
        "| --- | ---: | ---: | ---: | ---: | :---: |",
    ]
    for variant, stats in summary["variants"].items():
        ratio_t = f"{stats['time_ratio']:.2f}" if "time_ratio" in stats else "1 (baseline)"
        ratio_m = f"{stats['memory_ratio']:.3f}" if "memory_ratio" in stats else "1 (baseline)"
        seconds, mib = stats["median_seconds"], stats["median_peak_extra_mib"]
        same = {True: "yes", False: "NO"}.get(stats.get("same_indices_as_baseline"), "-")
        lines.append(f"| {variant} | {seconds:.3f} | {mib:.1f} | {ratio_t} | {ratio_m} | {same} |")
    logger.info("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
