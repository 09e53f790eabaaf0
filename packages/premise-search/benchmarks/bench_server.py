"""HTTP load on loopback: N requests from C keep-alive clients against the server on all of Mathlib.

The server runs on the default index (`open_default_index()`, built on first use) or `--index DIR`.

Each request is `POST /search {"query": [q], "num_results": 10}` (hybrid + rerank, the server's default) with q
cycling over MathlibQR fair-slice queries. Reports errors, p50/p95 latency and throughput.

Burst mode (`--burst N`): N clients connect, then all send one request at the same moment. The server runs
`max_in_flight` of them, queues up to `max_waiting`, and refuses the rest at once with 503; the report counts 200s and
503s and gives p50/p95 latency of each. The burst's clients run in a child process, so their 200 threads do not
compete with the server for its GIL. `--max-in-flight 1000 --max-waiting 0` approximates a server without the limit.

    python packages/premise-search/benchmarks/bench_server.py [--requests 2000] [--clients 16] [--json]
    python packages/premise-search/benchmarks/bench_server.py --burst 200 [--max-in-flight 4] [--max-waiting 64]
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import multiprocessing
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from premise_search.evaluation import load_mathlib_qr
from premise_search.index import load_index, open_default_index
from premise_search.server import SearchServer, ServerLimits, make_server, serve_in_thread


def _ms_percentiles(seconds: list[float], prefix: str) -> dict[str, float | None]:
    ms = np.array(seconds) * 1e3
    if ms.size == 0:
        return {f"{prefix}_p50_ms": None, f"{prefix}_p95_ms": None}
    return {f"{prefix}_p50_ms": float(np.percentile(ms, 50)), f"{prefix}_p95_ms": float(np.percentile(ms, 95))}


def burst_clients(host: str, port: int, bodies: list[bytes]) -> tuple[list[tuple[int, float]], float]:
    """One connection per body, all opened first, then one request each released by one barrier: a worst-case
    spike. Returns (status, seconds) per request (status 0: refused or reset) and the burst's wall time."""
    barrier = threading.Barrier(len(bodies))

    def client(body: bytes) -> tuple[int, float]:
        conn = http.client.HTTPConnection(host, port, timeout=300)
        try:
            conn.connect()
            barrier.wait()
            t0 = time.perf_counter()
            conn.request("POST", "/search", body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            return response.status, time.perf_counter() - t0
        except OSError:
            return 0, 0.0
        finally:
            conn.close()

    t0 = time.perf_counter()
    with ThreadPoolExecutor(len(bodies)) as pool:
        outcomes = list(pool.map(client, bodies))
    return outcomes, time.perf_counter() - t0


def burst(server: SearchServer, queries: list[str], n: int, rerank: bool) -> dict[str, Any]:
    """Run `burst_clients` in a spawned child process against `server` and summarise the answers."""
    host, port = server.server_address[:2]
    bodies = [
        json.dumps({"query": [queries[i % len(queries)]], "num_results": 10, "rerank": rerank}).encode()
        for i in range(n)
    ]
    conn = http.client.HTTPConnection(str(host), port, timeout=300)
    for body in bodies[:20]:  # warm up (first-query caches), so the burst measures the steady state
        conn.request("POST", "/search", body=body, headers={"Content-Type": "application/json"})
        conn.getresponse().read()
    conn.close()
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        outcomes, wall = pool.apply(burst_clients, (str(host), port, bodies))
    statuses = Counter(status for status, _ in outcomes)
    return {
        "burst": n,
        "max_in_flight": server.service.limits.max_in_flight,
        "max_waiting": server.service.limits.max_waiting,
        "ok_200": statuses.pop(200, 0),
        "busy_503": statuses.pop(503, 0),
        "other": dict(statuses),
        **_ms_percentiles([t for status, t in outcomes if status == 200], "ok"),
        **_ms_percentiles([t for status, t in outcomes if status == 503], "busy"),
        "wall_s": wall,
    }


def _print(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        json.dump(result, sys.stdout, indent=2)
        print()
    else:
        print(", ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in result.items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", help="serve this saved index (default: all of Mathlib, the default index)")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--no-rerank", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--burst", type=int, default=0, metavar="N", help="N simultaneous requests instead")
    parser.add_argument("--max-in-flight", type=int, default=None, help="ServerLimits.max_in_flight")
    parser.add_argument("--max-waiting", type=int, default=None, help="ServerLimits.max_waiting")
    args = parser.parse_args()
    engine = load_index(args.index) if args.index else open_default_index()
    queries = [r.query for r in load_mathlib_qr() if r.fair]
    overrides = {"max_in_flight": args.max_in_flight, "max_waiting": args.max_waiting}
    limits = ServerLimits(**{k: v for k, v in overrides.items() if v is not None})
    server = make_server(engine, port=0, limits=limits)
    serve_in_thread(server)
    if args.burst:
        logging.getLogger("premise_search.server").setLevel(logging.ERROR)  # one line per 503: counted below
        try:
            result = {"n_docs": len(engine), "rerank": not args.no_rerank}
            result.update(burst(server, queries, args.burst, not args.no_rerank))
        finally:
            server.shutdown()
            server.server_close()
        _print(result, args.json)
        return 0 if not result["other"] else 1
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
    _print(result, args.json)
    return 0 if result["errors"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
