"""The HTTP server under real use: clients that hang up, malformed HTTP, overload (503 with Retry-After).

Nothing here asserts a duration: a slow engine is an engine that waits for an event the test sets. Tests that count
log lines run their own server with non-daemon handler threads, so `server_close()` joins those threads and every
line they were going to log has been logged.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from premise_search.corpus import Declaration
from premise_search.retrieval import SearchEngine
from premise_search.server import SearchServer, ServerLimits, make_server, serve_in_thread

LOGGER = "premise_search.server"
SEARCH = json.dumps({"query": ["lattice"], "num_results": 2}).encode()


@pytest.fixture(autouse=True)
def _no_stale_log_handlers() -> Iterator[None]:
    """A CLI test run earlier may leave a root handler on a capture stream pytest has closed since; logging to it
    prints a "Logging error" traceback that is not the server's. Such handlers are set aside during these tests."""
    root = logging.getLogger()
    stale = [h for h in root.handlers if isinstance(h, logging.StreamHandler) and getattr(h.stream, "closed", False)]
    for handler in stale:
        root.removeHandler(handler)
    yield
    for handler in stale:
        root.addHandler(handler)


@pytest.fixture(scope="module")
def engine(small_corpus: list[Declaration]) -> SearchEngine:
    return SearchEngine.build(small_corpus)


@pytest.fixture
def slow_engine(small_corpus: list[Declaration]) -> Iterator[tuple[SearchEngine, threading.Event, threading.Event]]:
    """An engine whose searches start (`entered` is set) and then wait until the test sets `release`."""
    engine = SearchEngine.build(small_corpus)
    entered, release = threading.Event(), threading.Event()
    search_batch = engine.search_batch

    def slow_search_batch(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        release.wait(60)
        return search_batch(*args, **kwargs)

    engine.search_batch = slow_search_batch  # type: ignore[method-assign]
    yield engine, entered, release
    release.set()  # never leave a handler thread waiting, whatever the test did


@contextmanager
def serving(engine: SearchEngine, limits: ServerLimits | None = None) -> Iterator[SearchServer]:
    srv = make_server(engine, port=0, limits=limits)
    srv.daemon_threads = False  # so server_close() waits for the handler threads (and their log lines)
    serve_in_thread(srv)
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


def server_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and r.levelno >= logging.INFO]


def request(srv: SearchServer, method: str, path: str, body: bytes | None = None) -> tuple[int, Any, dict[str, str]]:
    host, port = srv.server_address[:2]
    conn = http.client.HTTPConnection(str(host), port, timeout=30)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        payload = response.read()
        headers = dict(response.getheaders())
        if headers.get("Content-Type", "").startswith("application/json"):
            return response.status, json.loads(payload), headers
        return response.status, payload.decode(), headers
    finally:
        conn.close()


def exchange(srv: SearchServer, data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes on a fresh connection and read the one response they get."""
    host, port = srv.server_address[:2]
    with socket.create_connection((str(host), port), timeout=30) as sock:
        sock.sendall(data)
        response = http.client.HTTPResponse(sock, method=data.split(b" ", 1)[0].decode("latin-1"))
        response.begin()
        return response.status, dict(response.getheaders()), response.read()


def hang_up(sock: socket.socket, *, reset: bool) -> None:
    """Close the connection: an orderly FIN, or a TCP reset (SO_LINGER with a zero timeout)."""
    if reset:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def assert_json_error(status: int, headers: dict[str, str], body: bytes, expected: int) -> dict[str, Any]:
    assert status == expected, (status, body[:200])
    assert headers["Content-Type"].startswith("application/json"), headers
    payload = json.loads(body)
    assert set(payload) == {"detail"} and payload["detail"], payload
    return payload


@pytest.mark.parametrize("reset", [False, True], ids=["fin", "reset"])
def test_client_gone_mid_body_logs_one_line_and_no_traceback(
    engine: SearchEngine, reset: bool, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    with serving(engine) as srv:
        host, port = srv.server_address[:2]
        sock = socket.create_connection((str(host), port), timeout=30)
        # with Expect: 100-continue the server says when it has read the head and waits for the body
        sock.sendall(b"POST /search HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 100\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 100")
        sock.sendall(b'{"query": ["lat')
        hang_up(sock, reset=reset)
        status, payload, _ = request(srv, "POST", "/search", SEARCH)  # the server still answers
        assert status == 200 and payload[0]
    lines = server_lines(caplog)
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert lines[0].levelno == logging.WARNING and not lines[0].exc_info
    assert "POST /search" in lines[0].getMessage()
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Exception occurred" not in err


def test_client_gone_before_the_answer_is_not_an_error(
    slow_engine: tuple[SearchEngine, threading.Event, threading.Event],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Writing the answer to a client that has reset the connection is logged once and never raises."""
    engine, entered, release = slow_engine
    caplog.set_level(logging.INFO, logger=LOGGER)
    with serving(engine) as srv:
        host, port = srv.server_address[:2]
        sock = socket.create_connection((str(host), port), timeout=30)
        sock.sendall(b"POST /search HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(SEARCH) + SEARCH)
        assert entered.wait(30)
        hang_up(sock, reset=True)
        release.set()
        assert request(srv, "GET", "/health")[0] == 200
    lines = server_lines(caplog)
    assert len(lines) <= 1 and not any(r.exc_info for r in lines), [r.getMessage() for r in lines]
    assert srv.gate.load()["in_flight"] == 0  # the slot was given back
    assert "Traceback" not in capfd.readouterr().err


LONG = b"a" * 70_000
MALFORMED: list[tuple[str, bytes, int]] = [
    ("garbage", b"GARBAGE\r\n\r\n", 400),
    ("bad-version", b"GET / HTTP/one\r\n\r\n", 400),
    ("four-words", b"GET / x HTTP/1.1\r\n\r\n", 400),
    ("http-9.9", b"GET / HTTP/9.9\r\n\r\n", 505),
    ("unknown-method", b"BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n", 501),
    ("70k-url", b"GET /" + LONG + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    ("70k-url-post", b"POST /search?" + LONG + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", 414),
    ("70k-header", b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + LONG + b"\r\n\r\n", 431),
    ("150-headers", b"GET /health HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(150)) + b"\r\n", 431),
]


@pytest.mark.parametrize(("data", "expected"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_http_gets_a_json_error(
    engine: SearchEngine,
    data: bytes,
    expected: int,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    with serving(engine) as srv:
        status, headers, body = exchange(srv, data)
        assert_json_error(status, headers, body, expected)
        assert headers.get("Connection") == "close"
        assert request(srv, "GET", "/health")[0] == 200
    lines = server_lines(caplog)
    assert len(lines) == 1 and not lines[0].exc_info and str(expected) in lines[0].getMessage()
    assert len(lines[0].getMessage()) < 400  # a 70 kB request line is not copied into the log
    assert "Traceback" not in capfd.readouterr().err


def test_every_error_response_is_json(engine: SearchEngine) -> None:
    limits = ServerLimits(max_body_bytes=1024)
    cases: list[tuple[bytes, int]] = [
        (b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", 404),
        (b"GET /search HTTP/1.1\r\nHost: x\r\n\r\n", 405),
        (b"HEAD /nope HTTP/1.1\r\nHost: x\r\n\r\n", 404),
        (b"DELETE /search HTTP/1.1\r\nHost: x\r\n\r\n", 405),
        (b"POST /search HTTP/1.1\r\nHost: x\r\n\r\n", 411),
        (b"POST /search HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 411),
        (b"POST /search HTTP/1.1\r\nHost: x\r\nContent-Length: x\r\n\r\n", 400),
        (b"POST /search HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n" + b" " * 2000, 413),
        (b"POST /search HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n", 413),
        (b"POST /search HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n{x}", 400),
        (b"POST /search HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", 422),
        (b"POST /fetch HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n[]", 422),
        (b"GARBAGE\r\n\r\n", 400),
    ]
    with serving(engine, limits) as srv:
        for data, expected in cases:
            status, headers, body = exchange(srv, data)
            if data.startswith(b"HEAD"):  # no body, but the same headers
                assert status == expected and headers["Content-Type"].startswith("application/json")
            else:
                assert_json_error(status, headers, body, expected)


def test_overload_gets_503_with_retry_after(
    slow_engine: tuple[SearchEngine, threading.Event, threading.Event],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    engine, entered, release = slow_engine
    caplog.set_level(logging.INFO, logger=LOGGER)
    first: list[tuple[int, Any, dict[str, str]]] = []
    with serving(engine, ServerLimits(max_in_flight=1, max_waiting=0)) as srv:
        worker = threading.Thread(target=lambda: first.append(request(srv, "POST", "/search", SEARCH)))
        worker.start()
        assert entered.wait(30)  # the first request holds the only slot
        status, headers, body = exchange(
            srv, b"POST /search HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(SEARCH) + SEARCH
        )
        payload = assert_json_error(status, headers, body, 503)
        assert headers["Retry-After"].isdigit() and int(headers["Retry-After"]) >= 1
        assert "busy" in payload["detail"] and headers.get("Connection") == "close"
        # /health skips the queue and shows the load
        status, health, _ = request(srv, "GET", "/health")
        assert status == 200 and health["status"] == "ok"
        assert health["load"] == {"in_flight": 1, "waiting": 0, "max_in_flight": 1, "max_waiting": 0, "rejected": 1}
        release.set()
        worker.join(30)
        assert first and first[0][0] == 200 and first[0][1][0]
        assert request(srv, "POST", "/search", SEARCH)[0] == 200  # a slot again
    lines = server_lines(caplog)
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING and "503" in lines[0].getMessage()
    assert "Traceback" not in capfd.readouterr().err


def _wait_until(predicate: Any, what: str) -> None:
    """Poll a condition on the server's state; the bound only stops a broken test from hanging."""
    done = threading.Event()
    for _ in range(3000):
        if predicate():
            return
        done.wait(0.01)
    raise AssertionError(f"never happened: {what}")


def test_waiting_requests_are_served_in_turn_and_the_queue_is_bounded(
    slow_engine: tuple[SearchEngine, threading.Event, threading.Event],
) -> None:
    engine, entered, release = slow_engine
    results: dict[str, int] = {}

    def send(name: str) -> None:
        results[name] = request(srv, "POST", "/search", SEARCH)[0]

    with serving(engine, ServerLimits(max_in_flight=1, max_waiting=1)) as srv:
        running = threading.Thread(target=send, args=("running",))
        running.start()
        assert entered.wait(30)
        waiting = threading.Thread(target=send, args=("waiting",))
        waiting.start()
        _wait_until(lambda: srv.gate.load()["waiting"] == 1, "the second request queues")
        send("refused")  # slot taken, queue full: refused at once
        assert results == {"refused": 503}
        release.set()
        running.join(30)
        waiting.join(30)
        assert results == {"refused": 503, "running": 200, "waiting": 200}
        assert srv.gate.load() == {"in_flight": 0, "waiting": 0, "max_in_flight": 1, "max_waiting": 1, "rejected": 1}


def test_a_request_that_waits_too_long_gets_503(
    slow_engine: tuple[SearchEngine, threading.Event, threading.Event],
) -> None:
    engine, entered, release = slow_engine
    limits = ServerLimits(max_in_flight=1, max_waiting=4, max_queue_wait_s=0.2)
    with serving(engine, limits) as srv:
        running = threading.Thread(target=request, args=(srv, "POST", "/search", SEARCH))
        running.start()
        assert entered.wait(30)
        status, payload, headers = request(srv, "POST", "/search", SEARCH)  # waits its 0.2 s, then gives up
        assert status == 503 and "busy" in payload["detail"] and int(headers["Retry-After"]) >= 1
        release.set()
        running.join(30)
        assert srv.gate.load()["waiting"] == 0 and srv.gate.load()["in_flight"] == 0


def test_load_limits_are_validated_and_reported(engine: SearchEngine) -> None:
    for bad in ({"max_in_flight": 0}, {"max_in_flight": True}, {"max_waiting": -1}, {"max_queue_wait_s": 0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            ServerLimits(**bad)  # type: ignore[arg-type]
    assert ServerLimits(max_waiting=0).max_waiting == 0
    assert ServerLimits().max_in_flight >= 4
    with serving(engine, ServerLimits(max_in_flight=3, max_waiting=7)) as srv:
        status, health, _ = request(srv, "GET", "/health")
    assert status == 200 and health["limits"]["max_in_flight"] == 3 and health["limits"]["max_waiting"] == 7
    assert health["load"] == {"in_flight": 0, "waiting": 0, "max_in_flight": 3, "max_waiting": 7, "rejected": 0}
