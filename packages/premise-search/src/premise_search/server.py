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
reaches the engine, so it never yields a 500. The server binds to 127.0.0.1 unless told otherwise; it uses the
standard library's `ThreadingHTTPServer` (one thread per connection, HTTP/1.1 keep-alive), so no new dependency.
"""

from __future__ import annotations

import json
import logging
import math
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass(frozen=True)
class ServerLimits:
    """Request limits; anything outside them is a 4xx.

    Attributes:
        max_body_bytes: largest request body (413 beyond; a JSON body of 32 queries of 4,096 characters fits).
        max_queries: most queries in one request.
        max_query_chars: longest query (the old leansearch.net API's limit).
        max_num_results: largest `num_results` (LeanSearch's `le=150`).
        max_retrieve_k: largest `retrieve_k` (candidates the reranker sees).
        socket_timeout_s: an idle or slow client's connection is closed after this many seconds.
        max_statement_chars: longest `/reasoning` statement or proof field.
    """

    max_body_bytes: int = 256 * 1024
    max_queries: int = 32
    max_query_chars: int = 4096
    max_num_results: int = 150
    max_retrieve_k: int = 1000
    socket_timeout_s: float = 30.0
    max_statement_chars: int = 16384

    def __post_init__(self) -> None:
        for key in (
            "max_body_bytes",
            "max_queries",
            "max_query_chars",
            "max_num_results",
            "max_retrieve_k",
            "max_statement_chars",
        ):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"ServerLimits.{key}: expected a positive integer, got {value!r}")
        if not self.socket_timeout_s > 0:
            raise ConfigError(f"ServerLimits.socket_timeout_s: must be > 0, got {self.socket_timeout_s!r}")


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
            },
        }


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _web_asset(name: str) -> bytes:
    return resources.files("premise_search").joinpath("web", name).read_bytes()


class _Handler(BaseHTTPRequestHandler):
    """Routes requests to the server's `SearchService`; every refusal is a JSON `{"detail": ...}` 4xx."""

    protocol_version = "HTTP/1.1"
    server_version = f"premise-search/{__version__}"
    server: SearchServer

    def setup(self) -> None:
        self.timeout = self.server.service.limits.socket_timeout_s
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - %s", self.address_string(), format % args)

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
        body = json.dumps(payload, ensure_ascii=False, allow_nan=False).encode("utf-8")
        self._send(status, body, "application/json; charset=utf-8", extra)

    def _error(self, status: int, detail: str, extra: dict[str, str] | None = None) -> None:
        self._json(status, {"detail": detail}, extra)

    # -- request body -----------------------------------------------------------------------------------
    def _read_json(self) -> Any:
        limits = self.server.service.limits
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            raise RequestError(HTTPStatus.LENGTH_REQUIRED, "chunked bodies are not accepted; send Content-Length")
        raw_length = self.headers.get("Content-Length")
        if raw_length is None:
            self.close_connection = True
            raise RequestError(HTTPStatus.LENGTH_REQUIRED, "Content-Length required")
        text = raw_length.strip()
        if not text.isascii() or not text.isdigit():
            self.close_connection = True
            raise RequestError(HTTPStatus.BAD_REQUEST, "Content-Length: not a number")
        length = int(text)
        if length > limits.max_body_bytes:
            self.close_connection = True
            if length <= _DRAIN_FACTOR * limits.max_body_bytes:
                # read and drop a moderately large body so the client sees the 413, not a connection reset;
                # a huge one is not read at all (the client may then see the reset)
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
        except (BrokenPipeError, ConnectionResetError, TimeoutError):  # the client left or stalled mid-body
            self.close_connection = True
        except Exception:  # a bug, not bad input: log it, answer 500 without internals
            logger.exception("error while serving %s %s", self.command, path)
            self.close_connection = True
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal server error")

    def do_GET(self) -> None:
        service = self.server.service
        self._dispatch(
            {
                "/": lambda: self._send(HTTPStatus.OK, self.server.page, "text/html; charset=utf-8", _PAGE_HEADERS),
                "/index.html": lambda: self._send(
                    HTTPStatus.OK, self.server.page, "text/html; charset=utf-8", _PAGE_HEADERS
                ),
                "/app.js": lambda: self._send(HTTPStatus.OK, self.server.script, "text/javascript; charset=utf-8"),
                "/health": lambda: self._json(HTTPStatus.OK, service.health()),
            }
        )

    do_HEAD = do_GET

    def do_POST(self) -> None:
        service = self.server.service
        self._dispatch(
            {
                "/search": lambda: self._json(HTTPStatus.OK, service.search(self._read_json())),
                "/search_with_profile": lambda: self._json(
                    HTTPStatus.OK, service.search_with_profile(self._read_json())
                ),
                "/fetch": lambda: self._json(HTTPStatus.OK, service.fetch(self._read_json())),
                "/reasoning": lambda: self._json(HTTPStatus.OK, service.reasoning(self._read_json())),
            }
        )

    def _other(self) -> None:
        self.close_connection = True
        self._error(HTTPStatus.METHOD_NOT_ALLOWED, f"{self.command} is not allowed", {"Allow": "GET, HEAD, POST"})

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _other


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_DRAIN_FACTOR = 4  # oversize bodies up to this multiple of the limit are drained before the 413
_GET_ROUTES = frozenset({"/", "/index.html", "/app.js", "/health"})
_POST_ROUTES = frozenset({"/search", "/search_with_profile", "/fetch", "/reasoning"})
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}


class SearchServer(ThreadingHTTPServer):
    """`ThreadingHTTPServer` holding a `SearchService` and the page assets; threads are daemons."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # listen backlog: bursts of concurrent clients queue instead of being refused

    def __init__(self, address: tuple[str, int], service: SearchService) -> None:
        self.service = service
        self.page = _web_asset("index.html")
        self.script = _web_asset("app.js")
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

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
