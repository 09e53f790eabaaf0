"""Index build time and standard-mode query latency (p50/p95) on the embedded Mathlib subset.

Queries are MathlibQR's fair slice (810 rows, the shipped LeanSearch v2 file), searched one at a time as a user
or a prover loop would, with k = 10. Modes: bm25, dense, semantic (with `--semantic`), hybrid, and hybrid +
feature rerank (top 50), the default standard mode. Build times: the whole embedded corpus (22,936
declarations) and its first 1,000 rows, with the chosen semantic model (`none` = built-in channels only).
`--index DIR` loads a saved index for the latency part instead of building the full corpus again (the build
time is then the load time, and the 1k build still runs).

    python packages/premise-search/benchmarks/bench_standard.py [--queries 810] [--semantic none|minilm]
        [--index DIR] [--torch-threads N] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from premise_search.corpus import load_default_corpus
from premise_search.evaluation import load_mathlib_qr
from premise_search.index import load_index
from premise_search.retrieval import IndexConfig, SearchEngine


def timed_build(corpus: list, semantic: str = "none") -> tuple[SearchEngine, float]:
    t0 = time.perf_counter()
    engine = SearchEngine.build(corpus, IndexConfig(semantic=semantic))
    return engine, time.perf_counter() - t0


def latencies(engine: SearchEngine, queries: list[str], mode: str, rerank: bool) -> dict[str, float]:
    times = []
    for q in queries:
        t0 = time.perf_counter()
        engine.search(q, 10, mode=mode, rerank=rerank)  # type: ignore[arg-type]
        times.append(time.perf_counter() - t0)
    ms = np.array(times) * 1e3
    return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)), "mean_ms": float(ms.mean())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=810, help="how many fair-slice queries to time")
    parser.add_argument("--semantic", default="none", help="semantic model (none|auto|minilm|wordllama)")
    parser.add_argument("--index", help="load this saved index for the latency runs instead of building")
    parser.add_argument(
        "--torch-threads", type=int, help="torch.set_num_threads(N) first (1 avoids thread contention on 2 cores)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
    corpus = load_default_corpus()
    _, build_1k = timed_build(corpus[:1000], args.semantic)
    if args.index:
        t0 = time.perf_counter()
        engine = load_index(args.index)
        build_full = time.perf_counter() - t0
    else:
        engine, build_full = timed_build(corpus, args.semantic)
    queries = [r.query for r in load_mathlib_qr() if r.fair][: args.queries]
    engine.search(queries[0], 10, rerank=True)  # warm-up: first torch call, caches
    modes = ["bm25", "dense"] + (["semantic"] if engine.semantic is not None else []) + ["hybrid"]
    result = {
        "n_docs": len(engine),
        "n_queries": len(queries),
        "semantic": engine.semantic.id if engine.semantic is not None else "none",
        "build_s_1k": build_1k,
        "build_s_full": build_full,
        "full_from_index": bool(args.index),
        "modes": {
            **{mode: latencies(engine, queries, mode, False) for mode in modes},
            "hybrid+rerank": latencies(engine, queries, "hybrid", True),
        },
    }
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
        return 0
    full = "loaded from the index" if args.index else "built"
    print(f"semantic: {result['semantic']}")
    print(f"build: 1,000 declarations {build_1k:.2f} s; {len(engine):,} declarations {full} in {build_full:.2f} s")
    print(f"{len(queries)} MathlibQR fair-slice queries, k = 10, one at a time")
    print("| mode | p50 ms | p95 ms | mean ms |")
    print("|---|---|---|---|")
    for mode, row in result["modes"].items():
        print(f"| {mode} | {row['p50_ms']:.1f} | {row['p95_ms']:.1f} | {row['mean_ms']:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
