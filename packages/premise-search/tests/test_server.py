"""The HTTP server: leansearch.net's contract, request validation (4xx, never 500), a loopback load test, the CLI."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from premise_search.cli import main
from premise_search.corpus import Declaration, write_jsonl
from premise_search.retrieval import SearchEngine
from premise_search.server import (
    RequestError,
    SearchServer,
    SearchService,
    ServerLimits,
    make_server,
    serve_in_thread,
)

RESULT_KEYS = {
    "module_name",
    "kind",
    "name",
    "signature",
    "type",
    "value",
    "docstring",
    "informal_name",
    "informal_description",
}
LIMITS = ServerLimits(max_body_bytes=16 * 1024, max_queries=8, max_query_chars=512)


@pytest.fixture(scope="module")
def engine(small_corpus: list[Declaration]) -> SearchEngine:
    return SearchEngine.build(small_corpus)


@pytest.fixture(scope="module")
def server(engine: SearchEngine) -> Iterator[SearchServer]:
    srv = make_server(engine, port=0, limits=LIMITS)
    serve_in_thread(srv)
    yield srv
    srv.shutdown()
    srv.server_close()


def _request(
    server: SearchServer, method: str, path: str, body: Any = None, *, raw: bytes | None = None, headers: Any = None
) -> tuple[int, Any, dict[str, str]]:
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(str(host), port, timeout=30)
    try:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        conn.request(method, path, body=data, headers=headers or {"Content-Type": "application/json"})
        response = conn.getresponse()
        payload = response.read()
        kind = response.getheader("Content-Type", "")
        parsed = json.loads(payload) if kind.startswith("application/json") else payload.decode()
        return response.status, parsed, dict(response.getheaders())
    finally:
        conn.close()


def test_binds_to_loopback_by_default(engine: SearchEngine) -> None:
    srv = make_server(engine, port=0)
    try:
        assert srv.server_address[0] == "127.0.0.1" and srv.url.startswith("http://127.0.0.1:")
    finally:
        srv.server_close()
    with pytest.raises(ValueError, match="port"):
        make_server(engine, port=70000)
    with pytest.raises(ValueError, match="max_queries"):
        ServerLimits(max_queries=0)


def test_search_contract(server: SearchServer, engine: SearchEngine) -> None:
    query = "order of an element divides the order of the group"
    status, payload, _ = _request(server, "POST", "/search", {"query": [query, "lattice"], "num_results": 3})
    assert status == 200 and isinstance(payload, list) and len(payload) == 2
    for block in payload:
        assert 1 <= len(block) <= 3
        for item in block:
            assert set(item) == {"result", "distance"} and isinstance(item["distance"], float)
            assert set(item["result"]) == RESULT_KEYS
            assert isinstance(item["result"]["name"], list) and isinstance(item["result"]["module_name"], list)
    assert "orderOf_dvd_card" in [".".join(i["result"]["name"]) for i in payload[0]]
    assert payload[1][0]["result"]["informal_description"] == "A partial order with binary joins and meets."
    library = engine.search_batch([query], 3, rerank=True)[0]
    assert [".".join(i["result"]["name"]) for i in payload[0]] == [h.name for h in library]
    # lean-lsp-mcp sends num_results as a string; defaults apply to missing fields; unknown fields are ignored
    status, payload, _ = _request(server, "POST", "/search", {"num_results": "2", "query": ["lattice"], "x": 1})
    assert status == 200 and len(payload[0]) == 2
    status, payload, _ = _request(
        server, "POST", "/search", {"query": ["sum"], "rerank": False, "mode": "bm25", "retrieve_k": 5}
    )
    assert status == 200 and payload[0][0]["result"]["name"] == ["Finset", "sum_comm"]


def test_other_routes(small_corpus: list[Declaration], server: SearchServer) -> None:
    status, payload, _ = _request(server, "GET", "/health")
    assert status == 200 and payload["status"] == "ok" and payload["num_docs"] == len(small_corpus)
    status, payload, _ = _request(server, "POST", "/search_with_profile", {"query": ["lattice", "prime"]})
    assert status == 200 and set(payload) == {"results", "profiles", "total_request_time"}
    assert len(payload["results"]) == len(payload["profiles"]) == 2
    assert payload["profiles"][0]["search_time"] >= 0 and payload["total_request_time"] >= 0
    status, payload, _ = _request(server, "POST", "/fetch", {"query": ["Lattice", "No.Such"]})
    assert status == 200 and payload[0]["name"] == ["Lattice"] and payload[1] is None
    status, payload, _ = _request(server, "POST", "/fetch", ["Group.order"])
    assert status == 200 and payload[0]["value"] == "0"
    body = {"informal_statement": "the order of an element divides the order of the group", "num_results": 3}
    status, payload, _ = _request(server, "POST", "/reasoning", body)
    assert status == 200 and set(payload) == {"results", "trace", "planner", "attempts", "total_request_time"}
    assert 1 <= len(payload["results"]) <= 3
    assert ["orderOf_dvd_card"] in [item["result"]["name"] for item in payload["results"]]
    assert set(payload["results"][0]) == {"result", "score", "votes"}
    assert payload["trace"]["attempts"][0]["queries"][0]["kept"] and payload["planner"].startswith("offline")
    status, payload, _ = _request(server, "POST", "/reasoning", {**body, "trace": False, "num_results": "2"})
    assert status == 200 and payload["trace"] is None and len(payload["results"]) <= 2
    status, page, headers = _request(server, "GET", "/")
    assert status == 200 and 'id="q"' in page and "/app.js" in page
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    status, script, _ = _request(server, "GET", "/app.js")
    assert status == 200 and "copy name" in script and "textContent" in script


BAD_BODIES: list[tuple[Any, int, str]] = [
    ({"query": ["x"], "num_results": 0}, 422, "num_results"),
    ({"query": ["x"], "num_results": 151}, 422, "num_results"),
    ({"query": ["x"], "num_results": "ten"}, 422, "num_results"),
    ({"query": ["x"], "num_results": True}, 422, "num_results"),
    ({"query": ["x"], "num_results": 2.5}, 422, "num_results"),
    ({"query": ["x"], "num_results": None}, 422, "num_results"),
    ({"query": ["x"], "num_results": [5]}, 422, "num_results"),
    ({"query": "x"}, 422, "query"),
    ({"query": []}, 422, "query"),
    ({"query": [1]}, 422, "query[0]"),
    ({"query": ["ok", None]}, 422, "query[1]"),
    ({"query": ["   "]}, 422, "empty"),
    ({"query": ["x" * 513]}, 422, "longer"),
    ({"query": ["x"] * 9}, 422, "queries"),
    ({"num_results": 5}, 422, "query"),
    ({"query": ["x"], "rerank": "yes"}, 422, "rerank"),
    ({"query": ["x"], "retrieve_k": -1}, 422, "retrieve_k"),
    ({"query": ["x"], "mode": "magic"}, 422, "mode"),
    ({"query": ["x"], "mode": ["hybrid"]}, 422, "mode"),
    ([["x"]], 422, "object"),
    ("x", 422, "object"),
    (None, 422, "object"),
]


@pytest.mark.parametrize(("body", "status", "detail"), BAD_BODIES)
def test_invalid_bodies_get_422(server: SearchServer, body: Any, status: int, detail: str) -> None:
    got, payload, _ = _request(server, "POST", "/search", raw=json.dumps(body).encode())
    assert got == status and detail in payload["detail"], payload
    got, payload, _ = _request(server, "POST", "/search_with_profile", raw=json.dumps(body).encode())
    assert got == status


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"{bad json", 400),
        (b"", 400),
        (b"\xff\xfe{}", 400),
        (b'{"query": ["x"], "num_results": NaN}', 400),
        (b"[" * 5000 + b"]" * 5000, 400),
    ],
)
def test_malformed_json_gets_400(server: SearchServer, raw: bytes, status: int) -> None:
    got, payload, _ = _request(server, "POST", "/search", raw=raw)
    assert got == status and "detail" in payload


def test_oversize_and_framing(server: SearchServer) -> None:
    big = json.dumps({"query": ["x"], "pad": "y" * (LIMITS.max_body_bytes + 1)}).encode()
    status, payload, headers = _request(server, "POST", "/search", raw=big)
    assert status == 413 and "larger" in payload["detail"] and headers.get("Connection") == "close"
    host, port = server.server_address[:2]
    with socket.create_connection((str(host), port), timeout=30) as sock:  # a huge body announced, never sent
        sock.sendall(b"POST /search HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000000\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 413")
    with socket.create_connection((str(host), port), timeout=30) as sock:  # chunked: no Content-Length
        sock.sendall(b"POST /search HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 411")
    status, _, _ = _request(server, "POST", "/search", raw=b"{}", headers={"Content-Length": "abc"})
    assert status == 400
    assert _request(server, "GET", "/nope")[0] == 404
    assert _request(server, "GET", "/search")[0] == 405
    assert _request(server, "POST", "/health", {})[0] == 405
    assert _request(server, "DELETE", "/search")[0] == 405
    assert _request(server, "GET", "/health")[0] == 200  # still serving after all of the above


def test_service_without_sockets(engine: SearchEngine) -> None:
    service = SearchService(engine)
    assert service.search({"query": ["lattice"], "num_results": 1})[0][0]["result"]["name"] == ["Lattice"]
    assert service.parse_search({"query": ["x"], "num_results": 150.0}).num_results == 150


def test_concurrent_load(server: SearchServer, capsys: pytest.CaptureFixture[str]) -> None:
    """2,000 requests from 16 keep-alive clients on loopback: no errors; p50/p95 printed, not asserted."""
    n_clients, per_client = 16, 125
    queries = ["lattice", "order divides card", "sum swap", "2 ≤ p prime", "group order", "∑ x ∈ s, f x"]
    host, port = server.server_address[:2]

    def client(worker: int) -> tuple[list[float], list[str]]:
        latencies, errors = [], []
        conn = http.client.HTTPConnection(str(host), port, timeout=30)
        try:
            for i in range(per_client):
                body = json.dumps({"query": [queries[(worker + i) % len(queries)]], "num_results": 5}).encode()
                start = time.perf_counter()
                conn.request("POST", "/search", body=body, headers={"Content-Type": "application/json"})
                response = conn.getresponse()
                payload = response.read()
                latencies.append(time.perf_counter() - start)
                if response.status != 200 or not json.loads(payload)[0]:
                    errors.append(f"{response.status}: {payload[:80]!r}")
        finally:
            conn.close()
        return latencies, errors

    start = time.perf_counter()
    with ThreadPoolExecutor(n_clients) as pool:
        outcomes = list(pool.map(client, range(n_clients), timeout=300))  # bounded: never hangs the suite
    wall = time.perf_counter() - start
    latencies = sorted(x for lat, _ in outcomes for x in lat)
    errors = [e for _, errs in outcomes for e in errs]
    assert not errors, errors[:5]
    assert len(latencies) == n_clients * per_client
    p50 = statistics.median(latencies) * 1e3
    p95 = latencies[int(0.95 * len(latencies)) - 1] * 1e3
    with capsys.disabled():
        print(f"\n[load] {len(latencies)} requests, 16 clients: p50 {p50:.2f} ms, p95 {p95:.2f} ms, {wall:.1f} s")
    assert threading.active_count() < 200


def test_cli_serve_reports_a_busy_port(
    small_corpus: list[Declaration], tmp_path: Any, capsys: pytest.CaptureFixture[str], server: SearchServer
) -> None:
    corpus = write_jsonl(small_corpus, tmp_path / "c.jsonl")
    port = server.server_address[1]
    assert main(["serve", "--corpus", str(corpus), "--port", str(port)]) == 2
    assert "cannot listen" in capsys.readouterr().err


def test_socket_guard_blocks_the_network() -> None:
    # the conftest guard raises a RuntimeError subclass, so `except OSError` in library code cannot hide it
    with pytest.raises(RuntimeError, match="network access blocked"):
        socket.create_connection(("192.0.2.1", 80), timeout=1)  # TEST-NET-1, never routed
    with pytest.raises(RuntimeError, match="name lookup blocked"):
        socket.getaddrinfo("example.org", 443)
    assert socket.getaddrinfo("localhost", 80)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "query": _JSON | st.lists(st.text(max_size=30), max_size=3),
        "num_results": _JSON | st.integers(-5, 200) | st.text("0123456789 ", max_size=4),
        "rerank": _JSON,
        "retrieve_k": _JSON,
        "mode": _JSON | st.sampled_from(["bm25", "name", "dense", "hybrid"]),
    },
)


@settings(max_examples=150, deadline=None)
@given(body=_JSON | _FIELDS)
def test_any_json_body_is_answered_or_refused_with_4xx(engine: SearchEngine, body: Any) -> None:
    """Bad input never escapes as anything but a 4xx `RequestError` (which would become a 500)."""
    service = SearchService(engine, LIMITS)
    for call in (service.search, service.search_with_profile, service.fetch):
        try:
            out = call(body)
        except RequestError as exc:
            assert 400 <= exc.status < 500 and exc.detail
        else:
            assert isinstance(out, list | dict)
            json.dumps(out, allow_nan=False)


REASONING_BAD: list[tuple[Any, str]] = [
    ([], "body"),
    ({}, "formal_statement"),
    ({"formal_statement": "  ", "informal_statement": ""}, "formal_statement"),
    ({"formal_statement": 5}, "formal_statement"),
    ({"informal_statement": ["x"]}, "informal_statement"),
    ({"informal_statement": "x", "informal_proof": {}}, "informal_proof"),
    ({"informal_statement": "x", "num_results": 0}, "num_results"),
    ({"informal_statement": "x", "num_results": 151}, "num_results"),
    ({"informal_statement": "x", "trace": "yes"}, "trace"),
]


@pytest.mark.parametrize(("body", "field"), REASONING_BAD)
def test_reasoning_validation(server: SearchServer, body: Any, field: str) -> None:
    status, payload, _ = _request(server, "POST", "/reasoning", body)
    assert status == 422 and field in payload["detail"]


def test_reasoning_llm_failure_is_a_502(engine: SearchEngine) -> None:
    from premise_search.llm import LLMError

    class Broken:
        id = "broken"

        def decompose(self, problem: Any, history: Any) -> Any:
            raise LLMError("the model server is down")

    service = SearchService(engine, planner=Broken())  # type: ignore[arg-type]
    with pytest.raises(RequestError) as info:
        service.reasoning({"informal_statement": "x"})
    assert info.value.status == 502 and "down" in info.value.detail
    assert SearchService(engine).health()["reasoning"] is True
    short = SearchService(engine, ServerLimits(max_statement_chars=100))
    with pytest.raises(RequestError, match="longer than 100 characters") as info:
        short.reasoning({"informal_statement": "x" * 101})
    assert info.value.status == 422


_REASONING_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "formal_statement": _JSON | st.text(max_size=40),
        "informal_statement": _JSON | st.text(max_size=40),
        "informal_proof": _JSON,
        "num_results": _JSON | st.integers(-5, 200),
        "trace": _JSON,
    },
)


@settings(max_examples=60, deadline=None)
@given(body=_JSON | _REASONING_FIELDS)
def test_any_reasoning_body_is_answered_or_refused_with_4xx(engine: SearchEngine, body: Any) -> None:
    service = SearchService(engine, LIMITS)
    try:
        out = service.reasoning(body)
    except RequestError as exc:
        assert 400 <= exc.status < 500 and exc.detail
    else:
        assert isinstance(out["results"], list)
        json.dumps(out, allow_nan=False)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_cli_serve_subprocess(small_corpus: list[Declaration], tmp_path: Any, stop: signal.Signals) -> None:
    """`premise-search serve --port 0 --json` prints its URL, answers /health, and exits 0 on Ctrl-C or SIGTERM,
    even when started with SIGINT ignored (a parent's disposition is inherited across exec)."""
    corpus = write_jsonl(small_corpus, tmp_path / "c.jsonl")
    serve = [sys.executable, "-m", "premise_search.cli", "serve", "--corpus", str(corpus), "--port", "0", "--json"]
    # a launcher that ignores SIGINT, then execs the server, which inherits that (no preexec_fn: it would fork)
    launcher = (
        "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); os.execv(sys.argv[1], sys.argv[1:])"
    )
    argv = [sys.executable, "-c", launcher, *serve]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        text = ""
        info = None
        while info is None:
            line = process.stdout.readline()
            assert line, process.stderr.read() if process.stderr else "server exited"
            text += line
            try:
                info = json.loads(text)
            except json.JSONDecodeError:
                continue
        assert info["url"].startswith("http://127.0.0.1:") and info["num_docs"] == len(small_corpus)
        host, port = info["url"].removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        conn.request("GET", "/health")
        assert json.loads(conn.getresponse().read())["status"] == "ok"
        conn.close()
        process.send_signal(stop)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()


def test_a_stalled_body_times_out_without_harming_the_server(engine: SearchEngine) -> None:
    srv = make_server(engine, port=0, limits=ServerLimits(socket_timeout_s=0.5))
    serve_in_thread(srv)
    try:
        host, port = srv.server_address[:2]
        with socket.create_connection((str(host), port), timeout=30) as sock:
            sock.sendall(b"POST /search HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
            assert sock.recv(4096) == b""  # closed after the timeout, no response to a half body
        assert _request(srv, "GET", "/health")[0] == 200
    finally:
        srv.shutdown()
        srv.server_close()
