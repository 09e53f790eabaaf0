"""HTTP load on loopback: N requests from C keep-alive clients against `premise-search serve` on the embedded corpus.

Each request is `POST /search {"query": [q], "num_results": 10}` (hybrid + rerank, the server's default) with q
cycling over MathlibQR fair-slice queries. Reports errors, p50/p95 latency and throughput.

    python packages/premise-search/benchmarks/bench_server.py [--requests 2000] [--clients 16] [--json]
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from premise_search.corpus import load_default_corpus
from premise_search.evaluation import load_mathlib_qr
from premise_search.retrieval import SearchEngine
from premise_search.server import make_server, serve_in_thread


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--no-rerank", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    engine = SearchEngine.build(load_default_corpus())
    queries = [r.query for r in load_mathlib_qr() if r.fair]
    server = make_server(engine, port=0)
    serve_in_thread(server)
    host, port = server.server_address[:2]
    per_client = args.requests // args.clients

    def client(worker: int) -> tuple[list[float], int]:
        times, errors = [], 0
        conn = http.client.HTTPConnection(str(host), port, timeout=120)
        for i in range(per_client):
            q = queries[(worker * per_client + i) % len(queries)]
            body = json.dumps({"query": [q], "num_results": 10, "rerank": not args.no_rerank}).encode()
            t0 = time.perf_counter()
            conn.request("POST", "/search", body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            times.append(time.perf_counter() - t0)
            errors += response.status != 200
        conn.close()
        return times, errors

    t0 = time.perf_counter()
    with ThreadPoolExecutor(args.clients) as pool:
        outcomes = list(pool.map(client, range(args.clients)))
    wall = time.perf_counter() - t0
    server.shutdown()
    server.server_close()
    ms = np.array([t for times, _ in outcomes for t in times]) * 1e3
    result = {
        "n_docs": len(engine),
        "requests": int(ms.size),
        "clients": args.clients,
        "rerank": not args.no_rerank,
        "errors": sum(e for _, e in outcomes),
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "throughput_rps": ms.size / wall,
        "wall_s": wall,
    }
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
    else:
        print(", ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in result.items()))
    return 0 if result["errors"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
