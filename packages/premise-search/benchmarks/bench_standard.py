"""Standard-mode latency over all of Mathlib (p50/p95 per query), index open time, and `rank_bm25` side by side.

The default index (all of Mathlib, `open_default_index()`; `--index DIR` for another) is opened in this process
(timed: the start-up a user waits for), then MathlibQR fair-slice queries are searched one at a time with k = 10,
as a user or a prover loop would, in every mode: bm25, name, dense, semantic (when the index has one), hybrid,
and hybrid + feature rerank (the default standard mode; every default channel). MiniLM's remembered query vectors
are forgotten before each mode, so every query pays its forward pass. In the same run, the reference:
plain `rank_bm25.BM25Okapi` over each declaration's name, signature and docstring (whitespace tokens, lowercased),
scoring all 256k declarations per query, on the first `--reference-queries` queries (it takes ~0.5 s each).

    python packages/premise-search/benchmarks/bench_standard.py [--queries 810] [--reference-queries 50]
        [--index DIR] [--threads N] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from premise_search.evaluation import load_mathlib_qr
from premise_search.index import load_index, open_default_index


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.array(seconds) * 1e3
    return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)), "mean_ms": float(ms.mean())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=810, help="fair-slice queries to time per mode (810)")
    parser.add_argument("--reference-queries", type=int, default=50, help="queries for rank_bm25 (50; 0 skips it)")
    parser.add_argument("--index", help="load this saved index instead of the default one")
    parser.add_argument("--threads", type=int, help="BLAS/torch threads (default: the library's own)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    engine = load_index(args.index) if args.index else open_default_index()
    open_s = time.perf_counter() - t0
    queries = [r.query for r in load_mathlib_qr() if r.fair][: args.queries]
    engine.search(queries[0], 10, rerank=True)  # first call: torch and page cache
    modes = [(c, c, False) for c in engine.channels] + [("hybrid", "hybrid", False), ("hybrid+rerank", "hybrid", True)]
    timings: dict[str, dict[str, float]] = {}
    forget = getattr(engine.semantic, "forget_queries", None)  # MiniLM remembers query vectors: time cold ones
    for label, mode, rerank in modes:
        if forget is not None:
            forget()
        seconds = []
        for q in queries:
            start = time.perf_counter()
            engine.search(q, 10, mode=mode, rerank=rerank)  # type: ignore[arg-type]
            seconds.append(time.perf_counter() - start)
        timings[label] = percentiles(seconds)
    result = {
        "n_docs": len(engine),
        "n_queries": len(queries),
        "open_s": open_s,
        "channels": list(engine.channels),
        "load_average": os.getloadavg(),
        "modes": timings,
    }
    if args.reference_queries:
        from rank_bm25 import BM25Okapi

        t0 = time.perf_counter()
        docs = [f"{d.name} {d.signature} {d.docstring or ''}".lower().split() for d in engine.corpus]
        reference = BM25Okapi(docs)
        del docs
        build_s = time.perf_counter() - t0
        seconds = []
        for q in queries[: args.reference_queries]:
            start = time.perf_counter()
            scores = reference.get_scores(q.lower().split())
            np.argpartition(-scores, 10)[:10]
            seconds.append(time.perf_counter() - start)
        result["rank_bm25"] = {"build_s": build_s, "n_queries": len(seconds), **percentiles(seconds)}
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
        return 0
    print(f"{len(engine):,} declarations, index opened in {open_s:.2f} s; load average {result['load_average']}")
    print(f"{len(queries)} MathlibQR fair-slice queries, k = 10, one at a time")
    print("| mode | p50 ms | p95 ms | mean ms |")
    print("|---|---|---|---|")
    for label, row in timings.items():
        print(f"| {label} | {row['p50_ms']:.1f} | {row['p95_ms']:.1f} | {row['mean_ms']:.1f} |")
    if "rank_bm25" in result:
        ref = result["rank_bm25"]
        print(
            f"| rank_bm25 (name + signature + docstring, {ref['n_queries']} queries; built in {ref['build_s']:.0f} s) "
            f"| {ref['p50_ms']:.1f} | {ref['p95_ms']:.1f} | {ref['mean_ms']:.1f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
