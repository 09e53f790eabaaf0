"""Pluggable LLM clients: a protocol, an OpenAI-compatible chat-completions client, and scripted fakes.

The paper calls LLMs for informalisation (Qwen3-32B), the reasoning mode's sketch, filter and judge (Claude
Sonnet 4.5, Kimi K2) and the reranker. Everything in this package that talks to an LLM goes through
`LLMClient.complete(messages, temperature=0) -> str`, so a hosted model, a local vLLM/llama.cpp/Ollama server or a
test fake are interchangeable.

Nothing is ever contacted by default: `OpenAIChatClient` exists only when a user configures a base URL and a
model (arguments, or `PREMISE_SEARCH_LLM_BASE_URL` / `_MODEL` / `_API_KEY` through `LLMConfig.from_env`). It
uses only the standard library (`urllib.request`), POSTs `{base_url}/chat/completions`, retries transient
failures (connection errors, timeouts, HTTP 408/409/429/5xx) with exponential back-off, and raises `LLMError`
with a message that names the URL and the status for everything else. The API key never appears in `repr`,
JSON or error messages.
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

from repro_core.errors import ConfigError, ReproError

__all__ = [
    "ENV_PREFIX",
    "LLMClient",
    "LLMConfig",
    "LLMError",
    "Message",
    "OpenAIChatClient",
    "ScriptedLLM",
    "client_from_config",
    "messages",
]

logger = logging.getLogger(__name__)

#: Environment variables read by `LLMConfig.from_env`: `<PREFIX>BASE_URL`, `<PREFIX>MODEL`, `<PREFIX>API_KEY`,
#: `<PREFIX>TIMEOUT`.
ENV_PREFIX = "PREMISE_SEARCH_LLM_"

#: One chat message: `{"role": "system"|"user"|"assistant", "content": str}`.
Message = Mapping[str, str]

_RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class LLMError(ReproError, RuntimeError):
    """An LLM call failed (unreachable server, HTTP error, malformed reply); the message says which and where."""


@runtime_checkable
class LLMClient(Protocol):
    """What the informaliser, the reasoning planner and the LLM reranker need from a model."""

    @property
    def id(self) -> str:
        """A short description (`openai:<model>@<host>`, `scripted`), recorded in traces and manifests."""
        ...

    def complete(self, messages: Sequence[Message], *, temperature: float = 0.0) -> str:
        """The assistant's reply text to `messages`; raises `LLMError` on failure."""
        ...


def messages(system: str, user: str) -> list[dict[str, str]]:
    """A two-message chat: `[{"role": "system", ...}, {"role": "user", ...}]`."""
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


@dataclass(frozen=True)
class LLMConfig:
    """How to reach an OpenAI-compatible chat-completions endpoint.

    Attributes:
        base_url: the API root, e.g. `https://api.openai.com/v1` or `http://127.0.0.1:8000/v1`
            (`/chat/completions` is appended).
        model: the model name sent in each request.
        api_key: sent as `Authorization: Bearer ...` when set; never serialised or shown.
        timeout_s: per-request socket timeout.
        max_retries: extra attempts after a transient failure (so at most `max_retries + 1` requests).
        backoff_s: first back-off delay; it doubles after each retry.
        max_tokens: `max_tokens` of the request, or None to let the server decide.
        temperature: default sampling temperature (the paper's upstream client defaults to 0).
    """

    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = 120.0
    max_retries: int = 2
    backoff_s: float = 1.0
    max_tokens: int | None = None
    temperature: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.base_url, str) or not self.base_url.strip():
            raise ConfigError("LLMConfig.base_url: required (e.g. http://127.0.0.1:8000/v1)")
        parsed = urllib.parse.urlsplit(self.base_url.strip())
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ConfigError(f"LLMConfig.base_url: expected an http(s) URL, got {self.base_url!r}")
        object.__setattr__(self, "base_url", self.base_url.strip().rstrip("/"))
        if not isinstance(self.model, str) or not self.model.strip():
            raise ConfigError("LLMConfig.model: required (the model name the server expects)")
        if self.api_key is not None and not isinstance(self.api_key, str):
            raise ConfigError("LLMConfig.api_key: expected a string")
        if isinstance(self.timeout_s, bool) or not isinstance(self.timeout_s, int | float) or not self.timeout_s > 0:
            raise ConfigError(f"LLMConfig.timeout_s: must be > 0, got {self.timeout_s!r}")
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise ConfigError(f"LLMConfig.max_retries: must be an integer >= 0, got {self.max_retries!r}")
        if isinstance(self.backoff_s, bool) or not isinstance(self.backoff_s, int | float) or self.backoff_s < 0:
            raise ConfigError(f"LLMConfig.backoff_s: must be >= 0, got {self.backoff_s!r}")
        if self.max_tokens is not None and (
            isinstance(self.max_tokens, bool) or not isinstance(self.max_tokens, int) or self.max_tokens < 1
        ):
            raise ConfigError(f"LLMConfig.max_tokens: must be a positive integer or None, got {self.max_tokens!r}")
        if isinstance(self.temperature, bool) or not isinstance(self.temperature, int | float):
            raise ConfigError(f"LLMConfig.temperature: expected a number, got {self.temperature!r}")

    @property
    def endpoint(self) -> str:
        return f"{self.base_url}/chat/completions"

    def to_json(self) -> str:
        """JSON of every field except `api_key`."""
        data = asdict(self)
        data.pop("api_key")
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | dict[str, Any], *, api_key: str | None = None) -> LLMConfig:
        data = json.loads(text) if isinstance(text, str) else dict(text)
        data.pop("api_key", None)
        return cls(**data, api_key=api_key)

    @classmethod
    def from_env(
        cls,
        *,
        base_url: str | None = None,
        model: str | None = None,
        api_key: str | None = None,
        env: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> LLMConfig | None:
        """A config from arguments, falling back to `PREMISE_SEARCH_LLM_*` variables; None when not configured.

        "Configured" means a base URL is given (argument or environment). A base URL without a model is a
        `ConfigError`, so a half-configured client fails loudly instead of silently running offline.
        """
        env = os.environ if env is None else env
        base_url = base_url or env.get(ENV_PREFIX + "BASE_URL") or None
        model = model or env.get(ENV_PREFIX + "MODEL") or None
        if base_url is None:
            if model is not None:
                raise ConfigError(f"LLM: a model was given but no base URL (set {ENV_PREFIX}BASE_URL or --llm-url)")
            return None
        if model is None:
            raise ConfigError(f"LLM: a base URL was given but no model (set {ENV_PREFIX}MODEL or --llm-model)")
        api_key = api_key or env.get(ENV_PREFIX + "API_KEY") or None
        timeout = env.get(ENV_PREFIX + "TIMEOUT")
        if timeout and "timeout_s" not in overrides:
            try:
                overrides["timeout_s"] = float(timeout)
            except ValueError:
                raise ConfigError(f"{ENV_PREFIX}TIMEOUT: expected seconds, got {timeout!r}") from None
        return cls(base_url=base_url, model=model, api_key=api_key, **overrides)


def _check_messages(msgs: Sequence[Message]) -> list[dict[str, str]]:
    if isinstance(msgs, str | bytes) or not isinstance(msgs, Sequence) or not msgs:
        raise ConfigError("messages: expected a non-empty list of {role, content} objects")
    out = []
    for i, m in enumerate(msgs):
        if not isinstance(m, Mapping) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            raise ConfigError(f"messages[{i}]: expected {{'role': str, 'content': str}}")
        out.append({"role": m["role"], "content": m["content"]})
    return out


class OpenAIChatClient:
    """A minimal OpenAI-compatible `/chat/completions` client over `urllib` (no SDK dependency).

    Args:
        config: endpoint, model, key, timeouts and retries.
        sleep: the back-off sleep (tests pass a no-op).
    """

    def __init__(self, config: LLMConfig, *, sleep: Callable[[float], None] = time.sleep) -> None:
        if not isinstance(config, LLMConfig):
            raise ConfigError("config: expected an LLMConfig")
        self.config = config
        self._sleep = sleep
        self.calls = 0  # requests sent, retries included

    def __repr__(self) -> str:
        return f"OpenAIChatClient({self.id})"

    @property
    def id(self) -> str:
        host = urllib.parse.urlsplit(self.config.base_url).netloc
        return f"openai:{self.config.model}@{host}"

    def _request(self, payload: bytes) -> urllib.request.Request:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        return urllib.request.Request(self.config.endpoint, data=payload, headers=headers, method="POST")

    def complete(self, messages: Sequence[Message], *, temperature: float | None = None) -> str:
        """POST the chat and return `choices[0].message.content`; transient failures are retried."""
        body: dict[str, Any] = {
            "model": self.config.model,
            "messages": _check_messages(messages),
            "temperature": self.config.temperature if temperature is None else float(temperature),
        }
        if self.config.max_tokens is not None:
            body["max_tokens"] = self.config.max_tokens
        payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
        where = self.config.endpoint
        last = ""
        for attempt in range(self.config.max_retries + 1):
            if attempt:
                delay = self.config.backoff_s * 2 ** (attempt - 1)
                logger.info("LLM request to %s failed (%s); retry %d in %.1f s", where, last, attempt, delay)
                self._sleep(delay)
            self.calls += 1
            try:
                with urllib.request.urlopen(self._request(payload), timeout=self.config.timeout_s) as response:
                    raw = response.read()
            except urllib.error.HTTPError as exc:
                detail = _error_detail(exc)
                if exc.code in _RETRY_STATUS:
                    last = f"HTTP {exc.code}"
                    continue
                raise LLMError(f"LLM request to {where} failed with HTTP {exc.code}: {detail}") from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                reason = getattr(exc, "reason", exc)
                last = f"{type(reason).__name__}: {reason}"
                continue
            return _parse_reply(raw, where)
        raise LLMError(f"LLM request to {where} failed after {self.config.max_retries + 1} attempts ({last})")


def _error_detail(exc: urllib.error.HTTPError) -> str:
    try:
        text = exc.read(2000).decode("utf-8", "replace")
    except Exception:  # the body is only used for the message
        text = ""
    try:
        data = json.loads(text)
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            text = str(data["error"].get("message", text))
    except ValueError:
        pass
    return " ".join(text.split())[:300] or exc.reason or "no detail"


def _parse_reply(raw: bytes, where: str) -> str:
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise LLMError(f"LLM reply from {where} is not JSON: {raw[:120]!r}") from None
    try:
        content = data["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise LLMError(f"LLM reply from {where} has no choices[0].message.content") from None
    if content is None:
        return ""
    if isinstance(content, list):  # content parts
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    if not isinstance(content, str):
        raise LLMError(f"LLM reply from {where}: content is {type(content).__name__}, not a string")
    return content


class ScriptedLLM:
    """A deterministic fake: replies from a list (in order, cycling optional) or from a function of the messages.

    Records every call in `calls` (the message lists), so tests can check what a prompt contained.

    Args:
        replies: a sequence of reply strings, or `fn(messages) -> str`.
        cycle: after the last scripted reply, start again (else raise `LLMError`, like an exhausted server).
    """

    def __init__(self, replies: Sequence[str] | Callable[[list[dict[str, str]]], str], *, cycle: bool = False) -> None:
        if isinstance(replies, str):
            raise ConfigError("replies: expected a list of strings or a function, got one string")
        self._fn = replies if callable(replies) else None
        self._replies = [] if callable(replies) else list(replies)
        self.cycle = cycle
        self.calls: list[list[dict[str, str]]] = []

    @property
    def id(self) -> str:
        return "scripted"

    def complete(self, messages: Sequence[Message], *, temperature: float = 0.0) -> str:
        msgs = _check_messages(messages)
        index = len(self.calls)
        self.calls.append(msgs)
        if self._fn is not None:
            return self._fn(msgs)
        if index >= len(self._replies):
            if not self.cycle or not self._replies:
                raise LLMError(f"scripted LLM: no reply left for call {index + 1}")
            index %= len(self._replies)
        return self._replies[index]


def client_from_config(config: LLMConfig | None) -> LLMClient | None:
    """`OpenAIChatClient(config)`, or None when there is no config (offline)."""
    return None if config is None else OpenAIChatClient(config)
