"""LLM clients: the OpenAI-compatible HTTP client against a fake loopback server, the scripted fake, the reranker."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from premise_search.corpus import Declaration
from premise_search.llm import LLMConfig, LLMError, OpenAIChatClient, ScriptedLLM, client_from_config, messages
from premise_search.llm_rerank import LLMReranker, parse_yes_no
from premise_search.retrieval import SearchEngine
from repro_core.errors import ConfigError


@pytest.fixture(autouse=True)
def _no_llm_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The offline defaults are under test: a developer's PREMISE_SEARCH_LLM_* variables must not leak in."""
    for suffix in ("BASE_URL", "MODEL", "API_KEY", "TIMEOUT"):
        monkeypatch.delenv(f"PREMISE_SEARCH_LLM_{suffix}", raising=False)


class _FakeOpenAI(BaseHTTPRequestHandler):
    """Answers POST /v1/chat/completions from the server's `script`: (status, body or None for sleep) per call."""

    server: Any

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length))
        self.server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
        status, payload = self.server.script.pop(0) if self.server.script else (200, "ok")
        if payload is None:
            time.sleep(1.0)  # longer than the client's timeout
            status, payload = 200, "late"
        if isinstance(payload, str):
            payload = {"choices": [{"message": {"role": "assistant", "content": payload}}]}
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture()
def fake() -> Iterator[Any]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeOpenAI)
    server.daemon_threads = True
    server.requests, server.script = [], []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    server.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield server
    server.shutdown()
    server.server_close()


def _client(fake: Any, **kwargs: Any) -> OpenAIChatClient:
    config = LLMConfig(base_url=fake.base_url, model="test-model", api_key="sk-secret", backoff_s=0.0, **kwargs)
    return OpenAIChatClient(config, sleep=lambda s: None)


def test_chat_completion_request_and_reply(fake: Any) -> None:
    fake.script = [(200, '{"informal_name": "x"}')]
    client = _client(fake)
    assert client.complete(messages("sys", "hello")) == '{"informal_name": "x"}'
    request = fake.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["body"]["model"] == "test-model" and request["body"]["temperature"] == 0.0
    assert request["body"]["messages"] == [{"role": "system", "content": "sys"}, {"role": "user", "content": "hello"}]
    assert request["headers"]["Authorization"] == "Bearer sk-secret"
    assert "sk-secret" not in repr(client.config) and "sk-secret" not in client.config.to_json()
    assert client.id.startswith("openai:test-model@127.0.0.1")


def test_transient_errors_are_retried(fake: Any) -> None:
    fake.script = [(503, {"error": {"message": "overloaded"}}), (429, {}), (200, "fine")]
    client = _client(fake, max_retries=2)
    assert client.complete(messages("s", "u")) == "fine" and client.calls == 3


def test_errors_are_clear(fake: Any) -> None:
    fake.script = [(401, {"error": {"message": "bad key"}})]
    with pytest.raises(LLMError, match=r"HTTP 401: bad key"):
        _client(fake).complete(messages("s", "u"))
    assert len(fake.requests) == 1  # a 4xx is not retried
    fake.script = [(200, b"not json")]
    with pytest.raises(LLMError, match="not JSON"):
        _client(fake).complete(messages("s", "u"))
    fake.script = [(200, {"choices": []})]
    with pytest.raises(LLMError, match="choices"):
        _client(fake).complete(messages("s", "u"))
    fake.script = [(500, {}), (500, {})]
    with pytest.raises(LLMError, match="after 2 attempts"):
        _client(fake, max_retries=1).complete(messages("s", "u"))


def test_timeout_is_an_llm_error(fake: Any) -> None:
    fake.script = [(200, None)]
    with pytest.raises(LLMError, match="failed after 1 attempts"):
        _client(fake, timeout_s=0.2, max_retries=0).complete(messages("s", "u"))


def test_unreachable_server_is_an_llm_error() -> None:
    # a loopback port with nothing listening: connection refused, retried, then a clear error
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = OpenAIChatClient(
        LLMConfig(base_url=f"http://127.0.0.1:{port}/v1", model="m", max_retries=1, backoff_s=0), sleep=lambda s: None
    )
    with pytest.raises(LLMError, match="after 2 attempts"):
        client.complete(messages("s", "u"))


def test_config_from_env_and_validation() -> None:
    assert LLMConfig.from_env(env={}) is None and client_from_config(None) is None
    env = {"PREMISE_SEARCH_LLM_BASE_URL": "http://127.0.0.1:9/v1/", "PREMISE_SEARCH_LLM_MODEL": "m"}
    config = LLMConfig.from_env(env={**env, "PREMISE_SEARCH_LLM_API_KEY": "k", "PREMISE_SEARCH_LLM_TIMEOUT": "5"})
    assert config is not None and config.base_url == "http://127.0.0.1:9/v1" and config.api_key == "k"
    assert config.timeout_s == 5.0 and config.endpoint.endswith("/v1/chat/completions")
    assert LLMConfig.from_json(config.to_json(), api_key="k") == config
    with pytest.raises(ConfigError, match="no model"):
        LLMConfig.from_env(env={"PREMISE_SEARCH_LLM_BASE_URL": "http://x"})
    with pytest.raises(ConfigError, match="no base URL"):
        LLMConfig.from_env(model="m", env={})
    with pytest.raises(ConfigError, match="base_url"):
        LLMConfig(base_url="ftp://x", model="m")
    with pytest.raises(ConfigError, match="timeout_s"):
        LLMConfig(base_url="http://x", model="m", timeout_s=0)
    with pytest.raises(ConfigError, match="messages"):
        ScriptedLLM(["a"]).complete([])


def test_scripted_llm() -> None:
    llm = ScriptedLLM(["one", "two"])
    assert [llm.complete(messages("s", "a")), llm.complete(messages("s", "b"))] == ["one", "two"]
    assert llm.calls[1][1]["content"] == "b"
    with pytest.raises(LLMError, match="no reply left"):
        llm.complete(messages("s", "c"))
    assert ScriptedLLM(["x"], cycle=True).complete(messages("s", "c")) == "x"
    echo = ScriptedLLM(lambda msgs: msgs[-1]["content"].upper())
    assert echo.complete(messages("s", "hi")) == "HI"


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("yes", 1.0),
        ("No.", 0.0),
        ("**Yes**, it matches", 1.0),
        ("0.75", 0.75),
        ('{"score": 0.2}', 0.2),
        ('```json\n{"answer": "x", "yes": 1}\n```', 1.0),
        ("maybe", None),
        ("2.5", None),
    ],
)
def test_parse_yes_no(reply: str, expected: float | None) -> None:
    assert parse_yes_no(reply) == expected


CORPUS = [
    Declaration("Nat.add_comm", "theorem", "Mathlib.Algebra", "theorem Nat.add_comm (a b : ℕ) : a + b = b + a"),
    Declaration("Nat.mul_comm", "theorem", "Mathlib.Algebra", "theorem Nat.mul_comm (a b : ℕ) : a * b = b * a"),
    Declaration("Nat.add_assoc", "theorem", "Mathlib.Algebra", "theorem Nat.add_assoc : a + b + c = a + (b + c)"),
    Declaration("Lattice", "class", "Mathlib.Order.Lattice", "class Lattice (α : Type u)"),
]


def test_llm_reranker_orders_by_yes_and_falls_back() -> None:
    def judge(msgs: list[dict[str, str]]) -> str:
        return "yes" if "Nat.mul_comm" in msgs[-1]["content"] else "no"

    llm = ScriptedLLM(judge)
    reranker = LLMReranker(llm)
    order = reranker.rerank("multiplication is commutative", CORPUS[:3])
    assert order[0][0] == 1 and [i for i, _ in order[1:]] == [0, 2]  # ties keep the retriever's order
    assert "<Query>: multiplication is commutative" in llm.calls[0][-1]["content"]
    assert '"yes" or "no"' in llm.calls[0][0]["content"]
    broken = LLMReranker(ScriptedLLM(["yes"]))  # the second call finds no reply: an LLMError
    assert broken.rerank("q", CORPUS[:3]) == [(0, 1.0), (1, 2 / 3), (2, 1 / 3)] and broken.failures == 1
    engine = SearchEngine.build(CORPUS)
    engine.reranker = LLMReranker(ScriptedLLM(judge))
    hits = engine.search("commutative", k=2, rerank=True)
    assert hits[0].name == "Nat.mul_comm" and engine.reranker.id.startswith("llm-yes-no:scripted")
    with pytest.raises(ConfigError, match="max_doc_chars"):
        LLMReranker(llm, max_doc_chars=3)


def test_cli_search_with_llm_rerank(fake: Any, tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from premise_search.cli import main
    from premise_search.corpus import write_jsonl

    corpus = str(write_jsonl(CORPUS, tmp_path / "c.jsonl"))
    base = ["search", "addition commutative", "-k", "2", "--corpus", corpus, "--mode", "bm25", "--json"]
    assert main([*base, "--no-rerank", "-k", "3"]) == 0
    plain = [h["name"] for h in json.loads(capsys.readouterr().out)[0]["results"]]
    fake.script = [(200, "no"), (200, "no"), (200, "yes")]
    argv = [*base, "--llm-rerank", "--rerank-depth", "3", "--llm-url", fake.base_url, "--llm-model", "m"]
    assert main(argv) == 0
    reranked = [h["name"] for h in json.loads(capsys.readouterr().out)[0]["results"]]
    assert len(fake.requests) == 3 and reranked == [plain[2], plain[0]]
    assert main([*base, "--llm-rerank"]) == 2
    assert "no LLM configured" in capsys.readouterr().err
