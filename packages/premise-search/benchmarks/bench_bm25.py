"""BM25 per-query latency and build time: our `SparseBM25` against `rank_bm25.BM25Okapi`, side by side.

Synthetic corpora as in the spec (§7.1): 60-token documents drawn from a Zipf(1.1) vocabulary of 20,000 words,
8-term queries drawn the same way, all from `numpy.random.default_rng(seed)`. Each run checks that both scorers
agree to 1e-9 on every query before it reports times.

    python packages/premise-search/benchmarks/bench_bm25.py [--sizes 1000 10000 50000] [--queries 20] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np
from rank_bm25 import BM25Okapi

from premise_search.bm25 import SparseBM25


def synthetic(n_docs: int, n_queries: int, seed: int, vocab: int = 20_000, doc_len: int = 60, q_len: int = 8):
    """`n_docs` token lists and `n_queries` queries over a Zipf-distributed vocabulary."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, vocab + 1) ** 1.1
    weights /= weights.sum()
    words = np.array([f"w{i}" for i in range(vocab)])
    docs = words[rng.choice(vocab, size=(n_docs, doc_len), p=weights)].tolist()
    queries = words[rng.choice(vocab, size=(n_queries, q_len), p=weights)].tolist()
    return docs, queries


def bench(n_docs: int, n_queries: int, seed: int) -> dict[str, float]:
    docs, queries = synthetic(n_docs, n_queries, seed)
    t0 = time.perf_counter()
    reference = BM25Okapi(docs)
    ref_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours = SparseBM25().fit(docs)
    our_build = time.perf_counter() - t0
    ref_times, our_times = [], []
    for q in queries:
        t0 = time.perf_counter()
        expected = reference.get_scores(q)
        ref_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        got = ours.get_scores(q)
        our_times.append(time.perf_counter() - t0)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
    ref_ms, our_ms = statistics.median(ref_times) * 1e3, statistics.median(our_times) * 1e3
    return {
        "n_docs": n_docs,
        "rank_bm25_build_s": ref_build,
        "ours_build_s": our_build,
        "rank_bm25_query_ms": ref_ms,
        "ours_query_ms": our_ms,
        "speedup": ref_ms / our_ms,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 50_000])
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = [bench(n, args.queries, args.seed) for n in args.sizes]
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        print()
        return 0
    print("| docs | rank_bm25 build s | ours build s | rank_bm25 ms/query | ours ms/query | speed-up |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['n_docs']:,} | {r['rank_bm25_build_s']:.2f} | {r['ours_build_s']:.2f} | "
            f"{r['rank_bm25_query_ms']:.2f} | {r['ours_query_ms']:.3f} | {r['speedup']:.0f}x |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
