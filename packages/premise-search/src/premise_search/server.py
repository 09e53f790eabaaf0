"""An HTTP server with leansearch.net's API (LeanSearch v2's `server.py` contract) and a one-page search UI.

Routes (JSON in and out, UTF-8):

- `POST /search` body `{"query": [str, ...], "num_results": 10, "rerank": true, "retrieve_k": null}` →
  `[[{"result": {module_name, kind, name, signature, type, value, docstring, informal_name,
  informal_description}, "distance": float}, ...], ...]`, one inner list per query, best first. `num_results`
  may be an integer string (`"5"`), as lean-lsp-mcp sends it. Our extension: `"mode"` (`hybrid` by default).
  `distance` is our score of the ranking step (higher is better), not a metric distance.
- `POST /search_with_profile` → `{"results": <as above>, "profiles": [per query], "total_request_time": s}`.
- `POST /fetch` body `{"query": [Lean name, ...]}` (or a bare list) → one record or null per name.
- `POST /reasoning` body `{"formal_statement": str, "informal_statement": str, "informal_proof": str,
  "num_results": 50, "trace": true}` (at least one statement) → `{"results": [{"result": ..., "score": float,
  "votes": int}, ...], "trace": {plans, queries, kept premises, verdicts} | null, "planner": str,
  "total_request_time": s}`: the reasoning mode (`premise_search.reasoning`), offline planner unless the
  server was given another. A failing LLM behind the planner gives 502, not 500.
- `GET /health` → `{"status": "ok", ...}`; `GET /` → the search page (`web/index.html`, `web/app.js`).

Every request is validated: body size (`ServerLimits.max_body_bytes`, 413), JSON syntax and encoding (400), field
types and ranges (422, FastAPI's `{"detail": ...}` shape), unknown routes (404) and methods (405). Bad input never
reaches the engine, so it never yields a 500. The standard library's own refusals (a malformed request line 400, an
HTTP version we do not speak 505, a request line over 64 KiB 414, a header line over 64 KiB or more than 100 headers
431, an unknown method 501) are JSON `{"detail": ...}` too: every error response is `application/json`.

Under load: at most `ServerLimits.max_in_flight` POST requests run the engine at once and at most
`ServerLimits.max_waiting` more wait for a slot (first come, first served, for up to `max_queue_wait_s`). Beyond
that the answer is an immediate 503 with `Retry-After` (an estimate of the seconds the queue needs to drain).
Search is CPU-bound and holds the GIL, so more threads in the engine would only add latency. GET routes (the page,
its script and `/health`) are cheap and skip the queue, so `/health` answers under overload and reports the load.

Failures: each failed request logs exactly one line on this module's logger, with no traceback: INFO for a refused
request (4xx, 501, 505), WARNING for overload (503), a failing LLM (502) and a client that hung up or stalled
mid-request. Only a bug (500) logs a traceback (ERROR). Writing to a client that has gone never raises out of the
handler. The server binds to 127.0.0.1 unless told otherwise; it uses the standard library's `ThreadingHTTPServer`
(one thread per connection, HTTP/1.1 keep-alive), so no new dependency.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

from premise_search.__about__ import __version__
from premise_search.corpus import Declaration
from premise_search.llm import LLMError
from premise_search.reasoning import Planner, ReasoningEngine, ReasoningProblem
from premise_search.retrieval import MODES, Hit, SearchEngine
from repro_core.errors import ConfigError, InputError

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "RequestError",
    "SearchServer",
    "SearchService",
    "ServerLimits",
    "make_server",
    "serve_in_thread",
]

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def _default_in_flight() -> int:
    """Twice the usable cores, at least 4: enough to overlap I/O, few enough that GIL-bound searches do not pile up."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cores = os.cpu_count() or 1
    return max(4, 2 * cores)


@dataclass(frozen=True)
class ServerLimits:
    """Request and load limits; a request outside them is a 4xx, one beyond the load limits a 503.

    Attributes:
        max_body_bytes: largest request body (413 beyond; a JSON body of 32 queries of 4,096 characters fits).
        max_queries: most queries in one request.
        max_query_chars: longest query (the old leansearch.net API's limit).
        max_num_results: largest `num_results` (LeanSearch's `le=150`).
        max_retrieve_k: largest `retrieve_k` (candidates the reranker sees).
        socket_timeout_s: an idle or slow client's connection is closed after this many seconds.
        max_statement_chars: longest `/reasoning` statement or proof field.
        max_in_flight: most POST requests running the engine at once (default `max(4, 2 * cores)`).
        max_waiting: most POST requests waiting for one of those slots; a request beyond them gets 503 at once.
        max_queue_wait_s: a waiting request gets 503 after this many seconds without a slot.
    """

    max_body_bytes: int = 256 * 1024
    max_queries: int = 32
    max_query_chars: int = 4096
    max_num_results: int = 150
    max_retrieve_k: int = 1000
    socket_timeout_s: float = 30.0
    max_statement_chars: int = 16384
    max_in_flight: int = field(default_factory=_default_in_flight)
    max_waiting: int = 64
    max_queue_wait_s: float = 30.0

    def __post_init__(self) -> None:
        for key in (
            "max_body_bytes",
            "max_queries",
            "max_query_chars",
            "max_num_results",
            "max_retrieve_k",
            "max_statement_chars",
            "max_in_flight",
            "max_waiting",
        ):
            value = getattr(self, key)
            low = 0 if key == "max_waiting" else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                kind = "a non-negative" if low == 0 else "a positive"
                raise ConfigError(f"ServerLimits.{key}: expected {kind} integer, got {value!r}")
        for key in ("socket_timeout_s", "max_queue_wait_s"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ConfigError(f"ServerLimits.{key}: must be > 0, got {value!r}")


class RequestError(Exception):
    """A request the server refuses: HTTP `status` and a message for the client's `detail`."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = int(status)
        self.detail = detail
        self.headers = dict(headers or {})


def _unprocessable(detail: str) -> RequestError:
    return RequestError(HTTPStatus.UNPROCESSABLE_ENTITY, detail)


def _as_int(value: Any, field: str, low: int, high: int) -> int:
    """An integer in [low, high] from an int, an integral float or a decimal string (pydantic's lax mode)."""
    if isinstance(value, bool):
        raise _unprocessable(f"{field}: expected an integer, got a boolean")
    if isinstance(value, str):
        text = value.strip()
        if not text.isascii() or not text.isdigit() or len(text) > 9:
            raise _unprocessable(f"{field}: expected an integer, got the string {value[:20]!r}")
        value = int(text)
    elif isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise _unprocessable(f"{field}: expected an integer, got {value!r}")
        value = int(value)
    elif not isinstance(value, int):
        raise _unprocessable(f"{field}: expected an integer, got {type(value).__name__}")
    if not low <= value <= high:
        raise _unprocessable(f"{field}: must be between {low} and {high}, got {value}")
    return value


def _as_bool(value: Any, field: str) -> bool:
    if isinstance(value, bool):
        return value
    raise _unprocessable(f"{field}: expected true or false, got {type(value).__name__}")


def result_record(decl: Declaration) -> dict[str, Any]:
    """LeanSearch v2's `ResultData` fields for one declaration (`name`/`module_name` as component lists)."""
    row = decl.to_dict("lsv2")
    return {key: row[key] for key in _RESULT_FIELDS}


_RESULT_FIELDS = (
    "module_name",
    "kind",
    "name",
    "signature",
    "type",
    "value",
    "docstring",
    "informal_name",
    "informal_description",
)


@dataclass(frozen=True)
class ReasoningRequest:
    """A validated `/reasoning` body."""

    problem: ReasoningProblem
    num_results: int
    trace: bool


@dataclass(frozen=True)
class SearchRequest:
    """A validated `/search` body."""

    queries: tuple[str, ...]
    num_results: int
    rerank: bool
    retrieve_k: int | None
    mode: str


class SearchService:
    """The transport-free part of the server: validate a parsed JSON body, run the engine, build the response.

    Kept apart from the HTTP handler so the contract can be tested (and reused) without sockets.
    """

    def __init__(
        self, engine: SearchEngine, limits: ServerLimits | None = None, *, planner: Planner | None = None
    ) -> None:
        self.engine = engine
        self.limits = limits if limits is not None else ServerLimits()
        self.started = time.time()
        self.reasoner = ReasoningEngine(engine, planner)

    def _queries(self, body: Any, *, allow_bare_list: bool = False) -> list[str]:
        if allow_bare_list and isinstance(body, list):
            queries: Any = body
        else:
            if not isinstance(body, dict):
                raise _unprocessable(f"body: expected a JSON object, got {type(body).__name__}")
            if "query" not in body:
                raise _unprocessable("query: field required")
            queries = body["query"]
        if not isinstance(queries, list):
            raise _unprocessable(f"query: expected a list of strings, got {type(queries).__name__}")
        if not 1 <= len(queries) <= self.limits.max_queries:
            raise _unprocessable(f"query: expected 1 to {self.limits.max_queries} queries, got {len(queries)}")
        for i, q in enumerate(queries):
            if not isinstance(q, str):
                raise _unprocessable(f"query[{i}]: expected a string, got {type(q).__name__}")
            if not q.strip():
                raise _unprocessable(f"query[{i}]: must not be empty")
            if len(q) > self.limits.max_query_chars:
                raise _unprocessable(f"query[{i}]: longer than {self.limits.max_query_chars} characters ({len(q)})")
        return list(queries)

    def parse_search(self, body: Any) -> SearchRequest:
        """Validate a `/search` body; raises `RequestError` (422) naming the field."""
        queries = self._queries(body)
        num_results = _as_int(body.get("num_results", 10), "num_results", 1, self.limits.max_num_results)
        rerank = _as_bool(body.get("rerank", True), "rerank")
        retrieve_k = body.get("retrieve_k")
        if retrieve_k is not None:
            retrieve_k = _as_int(retrieve_k, "retrieve_k", 1, self.limits.max_retrieve_k)
        mode = body.get("mode", "hybrid")
        if mode not in MODES:
            raise _unprocessable(f"mode: expected one of {list(MODES)}, got {str(mode)[:20]!r}")
        return SearchRequest(tuple(queries), num_results, rerank, retrieve_k, mode)

    def _run(self, request: SearchRequest, queries: list[str]) -> list[list[Hit]]:
        depth = request.retrieve_k if request.retrieve_k is not None else max(request.num_results * 2, 50)
        mode: Any = request.mode  # validated against MODES in parse_search
        return self.engine.search_batch(
            queries, request.num_results, mode=mode, rerank=request.rerank, rerank_depth=depth
        )

    @staticmethod
    def _render(hits: list[Hit]) -> list[dict[str, Any]]:
        return [{"result": result_record(h.declaration), "distance": _finite(h.score)} for h in hits]

    def search(self, body: Any) -> list[list[dict[str, Any]]]:
        """`POST /search`: one list of `{result, distance}` per query."""
        request = self.parse_search(body)
        return [self._render(hits) for hits in self._run(request, list(request.queries))]

    def search_with_profile(self, body: Any) -> dict[str, Any]:
        """`POST /search_with_profile`: the results plus a per-query timing profile."""
        start = time.perf_counter()
        request = self.parse_search(body)
        results, profiles = [], []
        for q in request.queries:
            t0 = time.perf_counter()
            hits = self._run(request, [q])[0]
            profiles.append(
                {
                    "search_time": time.perf_counter() - t0,
                    "mode": request.mode,
                    "rerank": request.rerank,
                    "num_candidates": len(self.engine),
                    "num_results": len(hits),
                }
            )
            results.append(self._render(hits))
        return {"results": results, "profiles": profiles, "total_request_time": time.perf_counter() - start}

    def fetch(self, body: Any) -> list[dict[str, Any] | None]:
        """`POST /fetch`: the record of each Lean name, or null when it is not in the corpus."""
        names = self._queries(body, allow_bare_list=True)
        out: list[dict[str, Any] | None] = []
        for name in names:
            decl = self.engine.lookup(name.strip())
            out.append(None if decl is None else result_record(decl))
        return out

    def parse_reasoning(self, body: Any) -> ReasoningRequest:
        """Validate a `/reasoning` body; raises `RequestError` (422) naming the field."""
        if not isinstance(body, dict):
            raise _unprocessable(f"body: expected a JSON object, got {type(body).__name__}")
        fields = {}
        for key in ("formal_statement", "informal_statement", "informal_proof"):
            value = body.get(key, "")
            if value is None:
                value = ""
            if not isinstance(value, str):
                raise _unprocessable(f"{key}: expected a string, got {type(value).__name__}")
            if len(value) > self.limits.max_statement_chars:
                raise _unprocessable(f"{key}: longer than {self.limits.max_statement_chars} characters ({len(value)})")
            fields[key] = value
        if not (fields["formal_statement"].strip() or fields["informal_statement"].strip()):
            raise _unprocessable("formal_statement: give a formal_statement or an informal_statement (non-empty)")
        num_results = _as_int(body.get("num_results", 50), "num_results", 1, self.limits.max_num_results)
        trace = _as_bool(body.get("trace", True), "trace")
        try:
            problem = ReasoningProblem(**fields)
        except InputError as exc:
            raise _unprocessable(str(exc)) from None
        return ReasoningRequest(problem, num_results, trace)

    def reasoning(self, body: Any) -> dict[str, Any]:
        """`POST /reasoning`: the reasoning mode's ranked premises and (optionally) its whole trace."""
        start = time.perf_counter()
        request = self.parse_reasoning(body)
        try:
            trace = self.reasoner.run(request.problem, output_top_k=request.num_results)
        except LLMError as exc:
            raise RequestError(HTTPStatus.BAD_GATEWAY, f"the reasoning LLM failed: {str(exc)[:300]}") from None
        results = []
        for premise in trace.ranking:
            decl = self.engine.lookup(premise.name)
            if decl is not None:
                results.append({"result": result_record(decl), "score": premise.score, "votes": premise.votes})
        return {
            "results": results,
            "trace": trace.to_dict() if request.trace else None,
            "planner": trace.planner,
            "attempts": len(trace.attempts),
            "total_request_time": time.perf_counter() - start,
        }

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "version": __version__,
            "num_docs": len(self.engine),
            "corpus": self.engine.corpus_info,
            "channels": list(self.engine.channels),
            "dense_model": self.engine.dense_model.id if self.engine.dense_model is not None else None,
            "semantic_model": self.engine.semantic.id if self.engine.semantic is not None else None,
            "num_gpus": 0,
            "index_backend": "exact",
            "modes": list(MODES),
            "reasoning": True,
            "reasoning_planner": self.reasoner.planner.id if self.reasoner.planner is not None else None,
            "uptime_s": time.time() - self.started,
            "limits": {
                "max_queries": self.limits.max_queries,
                "max_query_chars": self.limits.max_query_chars,
                "max_num_results": self.limits.max_num_results,
                "max_body_bytes": self.limits.max_body_bytes,
                "max_statement_chars": self.limits.max_statement_chars,
                "max_in_flight": self.limits.max_in_flight,
                "max_waiting": self.limits.max_waiting,
            },
        }


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _web_asset(name: str) -> bytes:
    return resources.files("premise_search").joinpath("web", name).read_bytes()


class _Gate:
    """Admission control for the engine: `size` requests run at once, up to `queue` more wait in arrival order.

    Search is CPU-bound and holds the GIL, so threads beyond a few only add latency; a bounded queue turns a burst
    into quick 503s (with a retry hint) instead of every client waiting seconds. A freed slot is handed straight to
    the oldest waiter, so a newcomer cannot overtake the queue.
    """

    def __init__(self, size: int, queue: int, wait_s: float) -> None:
        self.size = size
        self.queue = queue
        self.wait_s = wait_s
        self.rejected = 0
        self._lock = threading.Lock()
        self._running = 0
        self._waiters: deque[threading.Event] = deque()
        self._mean_hold_s = 0.0  # moving average of how long a request holds a slot, for Retry-After

    def acquire(self) -> bool:
        """Take a slot, waiting in line if one may come; False means refuse the request (503)."""
        with self._lock:
            if self._running < self.size:
                self._running += 1
                return True
            if len(self._waiters) >= self.queue:
                self.rejected += 1
                return False
            turn = threading.Event()
            self._waiters.append(turn)
        if turn.wait(self.wait_s):
            return True
        with self._lock:
            if turn.is_set():  # a slot was handed over just as the wait ran out
                return True
            self._waiters.remove(turn)
            self.rejected += 1
            return False

    def release(self, held_s: float) -> None:
        """Give the slot back, or hand it to the oldest waiter (the running count then stays the same)."""
        with self._lock:
            self._mean_hold_s = held_s if not self._mean_hold_s else 0.8 * self._mean_hold_s + 0.2 * held_s
            if self._waiters:
                self._waiters.popleft().set()
            else:
                self._running -= 1

    def retry_after_s(self) -> int:
        """Whole seconds until the present backlog should have drained (at least 1, at most 120)."""
        with self._lock:
            backlog = self._running + len(self._waiters)
            return min(120, max(1, math.ceil(self._mean_hold_s * backlog / self.size)))

    def load(self) -> dict[str, int]:
        with self._lock:
            return {
                "in_flight": self._running,
                "waiting": len(self._waiters),
                "max_in_flight": self.size,
                "max_waiting": self.queue,
                "rejected": self.rejected,
            }


class _Handler(BaseHTTPRequestHandler):
    """Routes requests to the server's `SearchService`; every refusal is a JSON `{"detail": ...}`.

    The standard library's request loop is kept, but its failure paths are replaced: its error page becomes JSON
    (`send_error`), a client that hangs up or stalls is logged on one line instead of a traceback
    (`handle_one_request`), and each failed request is logged once (`_log_failure`).
    """

    protocol_version = "HTTP/1.1"
    default_request_version = "HTTP/1.0"  # never answer in HTTP/0.9 (no status line): clients could not read it
    server_version = f"premise-search/{__version__}"
    # headers and body are two writes: with Nagle on, the body waits for the client's delayed ACK (~40 ms a request)
    disable_nagle_algorithm = True
    server: SearchServer

    def setup(self) -> None:
        self.timeout = self.server.service.limits.socket_timeout_s
        self._unread_input = False
        self._failure_logged = False
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - %s", self.address_string(), format % args)

    def log_error(self, format: str, *args: Any) -> None:
        """Only reached from standard-library paths we do not override; one line, like our own failures."""
        self._log_failure(logging.INFO, format % args)

    def _log_failure(self, level: int, what: str, *, exc_info: bool = False) -> None:
        """One line per failed request: later failures of the same request (say, the client has gone while we
        answer) are not logged again."""
        if self._failure_logged:
            return
        self._failure_logged = True
        line = getattr(self, "requestline", "")[:120]
        logger.log(level, "%s %r: %s", self.client_address[0], line, what, exc_info=exc_info)

    # -- the request loop -------------------------------------------------------------------------------
    def handle(self) -> None:
        super().handle()
        if self._unread_input:
            self._drain_before_close()

    def handle_one_request(self) -> None:
        """The standard library's step (read the request line, parse the head, call `do_<METHOD>`), with a client
        that disconnects or stalls mid-request logged on one line rather than raised."""
        self._failure_logged = False
        self.requestline = ""
        self.command = ""
        self.request_version = self.default_request_version
        try:
            self.raw_requestline = self.rfile.readline(_MAX_LINE + 1)
        except (ConnectionError, TimeoutError):  # an idle keep-alive connection ending: not a failed request
            self.close_connection = True
            return
        if not self.raw_requestline:
            self.close_connection = True
            return
        try:
            if len(self.raw_requestline) > _MAX_LINE:
                self.requestline = str(self.raw_requestline[:120], "iso-8859-1")
                self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG, f"request line longer than {_MAX_LINE} bytes")
                return
            if not self.parse_request():  # it has answered (through send_error) or found a blank line
                return
            method = getattr(self, f"do_{self.command}", None)
            if method is None:
                self.send_error(HTTPStatus.NOT_IMPLEMENTED, f"unsupported method {self.command[:20]!r}")
                return
            method()
            self.wfile.flush()
        except TimeoutError:
            self.close_connection = True
            self._log_failure(logging.WARNING, f"no answer: the client stalled for {self.timeout} s mid-request")
        except ConnectionError as exc:
            self.close_connection = True
            self._log_failure(logging.WARNING, f"no answer: the client disconnected ({type(exc).__name__})")

    def _drain_before_close(self) -> None:
        """Close after an answer sent before the request was read to its end: send our FIN, then read and drop
        what the client still sends for a moment. Closing with unread input makes the kernel send a reset, and a
        client that gets the reset early may never see our (JSON) answer."""
        deadline = time.monotonic() + _LINGER_S
        budget = _LINGER_BYTES
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
            while budget > 0 and (left := deadline - time.monotonic()) > 0:
                self.connection.settimeout(left)
                chunk = self.connection.recv(min(budget, 65536))
                if not chunk:
                    break
                budget -= len(chunk)
        except OSError:  # reset, timeout, already closed: the connection is going anyway
            pass

    # -- responses --------------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-store")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload: Any, extra: dict[str, str] | None = None) -> None:
        self._send(status, _json_bytes(payload), _JSON_TYPE, extra)

    def _error(self, status: int, detail: str, extra: dict[str, str] | None = None) -> None:
        """Log the failure (once), then answer `{"detail": ...}`; a client that has gone by now is not an error."""
        level = logging.WARNING if status in _LOUD_STATUSES else logging.INFO
        self._log_failure(level, f"{status} {detail}")
        try:
            self._json(status, {"detail": detail}, extra)
        except OSError as exc:  # the client hung up or stopped reading: nobody is left to answer
            self.close_connection = True
            logger.debug("could not send the %d answer: %s", status, exc)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The standard library's refusals (bad request line 400, HTTP version 505, request line 414, header lines
        431, unknown method 501) as JSON instead of its HTML page; the connection is closed after them."""
        detail = message or self.responses.get(code, ("error",))[0]
        if message and explain:
            detail = f"{message}: {explain}"
        self.close_connection = True
        self._unread_input = True  # the rest of the request head (and any body) was never read
        self._error(code, detail[:300])

    # -- request body -----------------------------------------------------------------------------------
    def _read_json(self) -> Any:
        limits = self.server.service.limits
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = self._unread_input = True
            raise RequestError(HTTPStatus.LENGTH_REQUIRED, "chunked bodies are not accepted; send Content-Length")
        raw_length = self.headers.get("Content-Length")
        if raw_length is None:
            self.close_connection = True
            raise RequestError(HTTPStatus.LENGTH_REQUIRED, "Content-Length required")
        text = raw_length.strip()
        if not text.isascii() or not text.isdigit():
            self.close_connection = self._unread_input = True
            raise RequestError(HTTPStatus.BAD_REQUEST, "Content-Length: not a number")
        length = int(text)
        if length > limits.max_body_bytes:
            self.close_connection = self._unread_input = True
            if length <= _DRAIN_FACTOR * limits.max_body_bytes:
                # read and drop a moderately large body so the client sees the 413, not a connection reset;
                # a huge one is not read here (the close lingers briefly, see _drain_before_close)
                remaining = length
                while remaining > 0:
                    chunk = self.rfile.read(min(remaining, 65536))
                    if not chunk:
                        break
                    remaining -= len(chunk)
            raise RequestError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body larger than {limits.max_body_bytes} bytes ({length})"
            )
        data = self.rfile.read(length)
        if len(data) < length:
            self.close_connection = True
            # the client closed its side mid-body; it may still read an answer, but this is its failure line
            self._log_failure(
                logging.WARNING, f"400 the client closed the connection mid-body ({len(data)} of {length} bytes)"
            )
            raise RequestError(HTTPStatus.BAD_REQUEST, "body shorter than Content-Length")
        try:
            return json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
        except UnicodeDecodeError:
            raise RequestError(HTTPStatus.BAD_REQUEST, "body is not UTF-8") from None
        except (json.JSONDecodeError, ValueError, RecursionError) as exc:
            raise RequestError(HTTPStatus.BAD_REQUEST, f"body is not valid JSON: {str(exc)[:120]}") from None

    # -- routing ----------------------------------------------------------------------------------------
    def _dispatch(self, routes: dict[str, Callable[[], None]]) -> None:
        path = self.path.split("?", 1)[0]
        try:
            handler = routes.get(path)
            if handler is None:
                other = _GET_ROUTES if self.command == "POST" else _POST_ROUTES
                if path in other:
                    allow = "POST" if path in _POST_ROUTES else "GET, HEAD"
                    raise RequestError(
                        HTTPStatus.METHOD_NOT_ALLOWED, f"{self.command} is not allowed on {path}", {"Allow": allow}
                    )
                raise RequestError(HTTPStatus.NOT_FOUND, f"no route {path[:100]!r}")
            handler()
        except RequestError as exc:
            self._error(exc.status, exc.detail, exc.headers)
        except (ConnectionError, TimeoutError):  # the client left or stalled: handle_one_request logs it
            raise
        except Exception:  # a bug, not bad input: log it with its traceback, answer 500 without internals
            self._log_failure(logging.ERROR, f"500 error while serving {self.command} {path[:100]}", exc_info=True)
            self.close_connection = True
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal server error")

    def _run_engine(self, call: Callable[[Any], Any]) -> None:
        """Read the body, then run `call` on it in one of the gate's slots; 503 when no slot is to be had.

        The body is read before queueing, so a slow client does not hold a slot and the connection stays framed.
        """
        body = self._read_json()
        gate = self.server.gate
        if not gate.acquire():
            self.close_connection = True  # shed the connection too: the client is told to come back later
            wait = gate.retry_after_s()
            load = gate.load()
            raise RequestError(
                HTTPStatus.SERVICE_UNAVAILABLE,
                f"server busy ({load['in_flight']} requests running, {load['waiting']} waiting); retry in {wait} s",
                {"Retry-After": str(wait)},
            )
        start = time.perf_counter()
        try:
            data = _json_bytes(call(body))
        finally:
            gate.release(time.perf_counter() - start)
        self._send(HTTPStatus.OK, data, _JSON_TYPE)

    def _health(self) -> None:
        self._json(HTTPStatus.OK, {**self.server.service.health(), "load": self.server.gate.load()})

    def do_GET(self) -> None:
        self._dispatch(
            {
                "/": lambda: self._send(HTTPStatus.OK, self.server.page, "text/html; charset=utf-8", _PAGE_HEADERS),
                "/index.html": lambda: self._send(
                    HTTPStatus.OK, self.server.page, "text/html; charset=utf-8", _PAGE_HEADERS
                ),
                "/app.js": lambda: self._send(HTTPStatus.OK, self.server.script, "text/javascript; charset=utf-8"),
                "/health": self._health,
            }
        )

    do_HEAD = do_GET

    def do_POST(self) -> None:
        service = self.server.service
        self._dispatch(
            {
                "/search": lambda: self._run_engine(service.search),
                "/search_with_profile": lambda: self._run_engine(service.search_with_profile),
                "/fetch": lambda: self._run_engine(service.fetch),
                "/reasoning": lambda: self._run_engine(service.reasoning),
            }
        )

    def _other(self) -> None:
        self.close_connection = True
        self._error(HTTPStatus.METHOD_NOT_ALLOWED, f"{self.command} is not allowed", {"Allow": "GET, HEAD, POST"})

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _other


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _json_bytes(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, allow_nan=False).encode("utf-8")


_JSON_TYPE = "application/json; charset=utf-8"
_LOUD_STATUSES = frozenset({500, 502, 503, 504})  # the server's or its backends' trouble: WARNING, not INFO
_MAX_LINE = 65536  # longest request line (414 beyond); the standard library's own header-line limit is the same
_LINGER_S = 1.0  # after an early error answer, read and drop the client's input for at most this long
_LINGER_BYTES = 1 << 20  # ... and at most this much
_DRAIN_FACTOR = 4  # oversize bodies up to this multiple of the limit are drained before the 413
_GET_ROUTES = frozenset({"/", "/index.html", "/app.js", "/health"})
_POST_ROUTES = frozenset({"/search", "/search_with_profile", "/fetch", "/reasoning"})
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}


class SearchServer(ThreadingHTTPServer):
    """`ThreadingHTTPServer` holding a `SearchService`, the page assets and the engine's admission gate."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # listen backlog: a burst of connections is accepted and answered (maybe 503)

    def __init__(self, address: tuple[str, int], service: SearchService) -> None:
        self.service = service
        limits = service.limits
        self.gate = _Gate(limits.max_in_flight, limits.max_waiting, limits.max_queue_wait_s)
        self.page = _web_asset("index.html")
        self.script = _web_asset("app.js")
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """An exception the handler let escape (it should not): one log line instead of a traceback printed on
        stderr, except for a bug, which keeps its traceback."""
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError):
            logger.warning("%s: connection failed: %s", client_address[0], exc)
        else:
            logger.exception("unexpected error on the connection from %s", client_address[0])

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = str(host)
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def make_server(
    engine: SearchEngine,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    limits: ServerLimits | None = None,
    planner: Planner | None = None,
) -> SearchServer:
    """A bound (not yet serving) server; port 0 picks a free one (read it from `server.server_address`).

    `planner` drives `POST /reasoning` (default: the deterministic `OfflinePlanner`; pass
    `reasoning.LLMPlanner(llm)` to use a model).
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError(f"port: expected 0 to 65535, got {port!r}")
    if not isinstance(host, str) or not host:
        raise ConfigError(f"host: expected a host name or address, got {host!r}")
    if host not in ("127.0.0.1", "localhost", "::1"):
        logger.warning("binding to %s: the server is reachable from other machines", host)
    return SearchServer((host, port), SearchService(engine, limits, planner=planner))


def serve_in_thread(server: SearchServer) -> threading.Thread:
    """Run `server.serve_forever` in a daemon thread (tests, notebooks); stop with `server.shutdown()`."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    return thread
