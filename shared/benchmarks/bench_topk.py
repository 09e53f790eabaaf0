"""Benchmark: streaming `topk_similarity` against the full score matrix + `torch.topk` (time and peak memory).

Each measurement runs in a fresh subprocess so that peak memory is not polluted by earlier variants: the worker
creates the inputs (seeded), warms torch up on a tiny problem, reads its peak RSS (`ru_maxrss`), runs the variant
`--runs` times under a timer, and reports the growth of the peak RSS over the first call, i.e. the peak *extra*
memory of one call. Processes are interleaved (a, b, c, a, b, c, ...) so slow phases of a shared machine hit all
variants alike; the median over all timed calls is reported.

`--mode few-queries` instead compares, for 1, 8 and 32 numpy queries against large numpy galleries (float32, and
float16 galleries), `topk_similarity(metric="dot")` with the plain numpy search `gallery @ queries.T` +
`np.argpartition` + a sort of the k winners (time only; same fresh-process, interleaved, median scheme).

    python shared/benchmarks/bench_topk.py                      # 1,000 x 200,000 x 128 float32, k=10, CPU
    python shared/benchmarks/bench_topk.py --repeats 7 --json   # machine-readable results on stdout
    python shared/benchmarks/bench_topk.py --mode few-queries   # 1/8/32 queries, 100,000 x 512 and 1e6 x 256

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

__all__ = ["FEW_QUERY_GALLERIES", "FEW_QUERY_VARIANTS", "VARIANTS", "main", "run_few_queries_worker", "run_worker"]

logger = logging.getLogger("bench_topk")

#: Variant name -> (what it runs, which baseline its ratios are taken against).
VARIANTS = {
    "full_dot": ("queries @ gallery.T, then torch.topk", "full_dot"),
    "stream_dot": ("topk_similarity(metric='dot')", "full_dot"),
    "full_cosine": ("normalise both, queries @ gallery.T, then torch.topk", "full_cosine"),
    "stream_cosine": ("topk_similarity(metric='cosine')", "full_cosine"),
}


#: `--mode few-queries`: variant name -> what it runs (ratios are taken against "numpy").
FEW_QUERY_VARIANTS = {
    "numpy": "scores = gallery @ queries.T; np.argpartition; sort the k winners (float32 scores)",
    "topk": "topk_similarity(queries, gallery, k, metric='dot') on the same numpy arrays",
}
#: `--mode few-queries`: (n_gallery, dim, gallery dtype) rows of the table; queries are always float32.
FEW_QUERY_GALLERIES = (
    (100_000, 512, "float32"),
    (1_000_000, 256, "float32"),
    (100_000, 512, "float16"),
    (1_000_000, 256, "float16"),
)


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


def _numpy_topk(queries: Any, gallery: Any, k: int) -> tuple[Any, Any]:
    """The plain numpy search: one BLAS product, `argpartition` per query, then a sort of the k winners.

    A float16 gallery is widened with `astype` first (numpy's mixed float16/float32 `matmul` does not use BLAS and
    is several times slower still); ties at the cut go wherever `argpartition` puts them.
    """
    import numpy as np

    if gallery.dtype != np.float32:
        gallery = gallery.astype(np.float32)
    scores = (gallery @ queries.T).T  # [n_queries, n_gallery], a view of the [n_gallery, n_queries] product
    n = scores.shape[1]
    part = np.argpartition(scores, n - k, axis=1)[:, n - k :]
    values = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-values, axis=1, kind="stable")
    return np.take_along_axis(values, order, axis=1), np.take_along_axis(part, order, axis=1)


def run_few_queries_worker(args: argparse.Namespace) -> dict[str, Any]:
    """Time one few-queries variant for every `--query-counts` value on one gallery, in this (fresh) process."""
    import numpy as np
    import torch

    from repro_core.kernels import topk_similarity

    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(args.seed)
    gallery = torch.randn(args.n_gallery, args.dim, generator=gen).numpy()
    if args.gallery_dtype != "float32":
        gallery = gallery.astype(args.gallery_dtype)
    variant = args.worker

    def run(q: Any) -> tuple[Any, Any]:
        if variant == "numpy":
            return _numpy_topk(q, gallery, args.k)
        return topk_similarity(q, gallery, args.k, metric="dot")

    results = {}
    for n_queries in args.query_counts:
        queries = torch.randn(n_queries, args.dim, generator=gen).numpy()
        run(queries)  # first touch of the gallery's pages, thread pools, lazy imports
        seconds = []
        for _ in range(args.runs):
            start = time.perf_counter()
            indices = run(queries)[1]
            seconds.append(time.perf_counter() - start)
        results[str(n_queries)] = {"seconds": seconds, "indices": np.asarray(indices).tolist()}
    return {"variant": variant, "by_n_queries": results}


def _few_queries_command(args: argparse.Namespace, variant: str, n_gallery: int, dim: int, dtype: str) -> list[str]:
    cmd = [sys.executable, os.path.abspath(__file__), "--mode", "few-queries", "--worker", variant]
    cmd += ["--n-gallery", str(n_gallery), "--dim", str(dim), "--gallery-dtype", dtype]
    cmd += ["--query-counts", *map(str, args.query_counts)]
    for name in ("k", "threads", "seed", "runs"):
        cmd += [f"--{name}", str(getattr(args, name))]
    return cmd


def _few_queries_main(args: argparse.Namespace) -> int:
    """`--mode few-queries`: interleaved fresh processes per (gallery, variant), medians, ratio topk / numpy."""
    galleries = [g for g in FEW_QUERY_GALLERIES if args.gallery_dtypes is None or g[2] in args.gallery_dtypes]
    load_before = os.getloadavg()
    runs: dict[tuple[int, int, str], dict[str, list[dict[str, Any]]]] = {
        g: {v: [] for v in FEW_QUERY_VARIANTS} for g in galleries
    }
    for rep in range(args.repeats):
        for gallery in galleries:
            for variant in FEW_QUERY_VARIANTS:
                cmd = _few_queries_command(args, variant, *gallery)
                out = subprocess.run(cmd, capture_output=True, text=True, check=True)
                result = json.loads(out.stdout.strip().splitlines()[-1])["by_n_queries"]
                runs[gallery][variant].append(result)
                logger.info(
                    "repeat %d %9d x %d %s %-6s %s",
                    rep,
                    gallery[0],
                    gallery[1],
                    gallery[2],
                    variant,
                    "  ".join(f"{n}q: " + " ".join(f"{t * 1e3:.1f}" for t in r["seconds"]) for n, r in result.items()),
                )
    load_after = os.getloadavg()
    rows = []
    for (n_gallery, dim, dtype), by_variant in runs.items():
        for n_queries in map(str, args.query_counts):
            row: dict[str, Any] = {"n_gallery": n_gallery, "dim": dim, "gallery_dtype": dtype, "n_queries": n_queries}
            for variant, results in by_variant.items():
                seconds = [t for r in results for t in r[n_queries]["seconds"]]
                row[variant] = {"median_ms": statistics.median(seconds) * 1e3, "ms": [t * 1e3 for t in seconds]}
            row["ratio"] = row["topk"]["median_ms"] / row["numpy"]["median_ms"]
            # Same inputs in every process: compare the first repeat's answers. Both orders are by score, but the
            # two BLAS calls may round a score differently and numpy breaks ties arbitrarily, so report the order
            # and the overlap of the top-k sets separately.
            ours, theirs = by_variant["topk"][0][n_queries]["indices"], by_variant["numpy"][0][n_queries]["indices"]
            row["same_order"] = ours == theirs
            overlaps = [len(set(a) & set(b)) / args.k for a, b in zip(ours, theirs, strict=True)]
            row["topk_overlap"] = statistics.mean(overlaps)
            rows.append(row)
    float32_numpy = {
        (r["n_gallery"], r["dim"], r["n_queries"]): r["numpy"]["median_ms"]
        for r in rows
        if r["gallery_dtype"] == "float32"
    }
    for row in rows:  # what storing the gallery in float16 costs against the float32 numpy search
        base = float32_numpy.get((row["n_gallery"], row["dim"], row["n_queries"]))
        if row["gallery_dtype"] != "float32" and base is not None:
            row["ratio_vs_float32_numpy"] = row["topk"]["median_ms"] / base
    summary = {
        "config": {
            "mode": "few-queries",
            **{k: getattr(args, k) for k in ("query_counts", "k", "threads", "repeats", "runs")},
            "loadavg_before": load_before,
            "loadavg_after": load_after,
            "cpu_count": os.cpu_count(),
        },
        "variants": FEW_QUERY_VARIANTS,
        "rows": rows,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    lines = [
        f"load average (1/5/15 min) before {' '.join(f'{x:.2f}' for x in load_before)}, "
        f"after {' '.join(f'{x:.2f}' for x in load_after)}; {os.cpu_count()} CPUs",
        "| gallery | dtype | queries | numpy (ms) | topk_similarity (ms) | ratio | vs float32 numpy | same order "
        "| top-k overlap |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | :---: | ---: |",
    ]
    for row in rows:
        vs32 = f"{row['ratio_vs_float32_numpy']:.2f}" if "ratio_vs_float32_numpy" in row else "-"
        lines.append(
            f"| {row['n_gallery']:,} x {row['dim']} | {row['gallery_dtype']} | {row['n_queries']} "
            f"| {row['numpy']['median_ms']:.1f} | {row['topk']['median_ms']:.1f} | {row['ratio']:.2f} | {vs32} "
            f"| {'yes' if row['same_order'] else 'no'} | {row['topk_overlap']:.4f} |"
        )
    logger.info("\n".join(lines))
    return 0


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
    parser.add_argument(
        "--mode",
        choices=["stream", "few-queries"],
        default="stream",
        help="stream: streamed vs. full matrix (default); few-queries: topk_similarity vs. plain numpy",
    )
    parser.add_argument("--n-queries", type=int, default=1000)
    parser.add_argument("--n-gallery", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("-k", "--k", type=int, default=None, help="default: 10 (stream), 100 (few-queries)")
    parser.add_argument("--chunk-size", type=int, default=None, help="default: topk_similarity's automatic choice")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads in every worker")
    parser.add_argument("--repeats", type=int, default=7, help="fresh processes per variant")
    parser.add_argument("--runs", type=int, default=3, help="timed calls per process (median over all reported)")
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    few = parser.add_argument_group("--mode few-queries (--k, --threads, --repeats, --runs, --seed, --json apply)")
    few.add_argument("--query-counts", type=int, nargs="+", default=[1, 8, 32], help="default: 1 8 32")
    few.add_argument(
        "--gallery-dtypes", nargs="+", choices=["float32", "float16"], help="default: both (table rows of each)"
    )
    parser.add_argument("--gallery-dtype", default="float32", help=argparse.SUPPRESS)
    parser.add_argument("--worker", choices=sorted({*VARIANTS, *FEW_QUERY_VARIANTS}), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.k is None:
        args.k = 100 if args.mode == "few-queries" else 10
    if args.worker:
        worker = run_few_queries_worker if args.mode == "few-queries" else run_worker
        print(json.dumps(worker(args)))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    if args.mode == "few-queries":
        return _few_queries_main(args)

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
