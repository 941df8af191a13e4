"""A thin client over the `openai` SDK for any OpenAI-compatible endpoint (OpenAI, Azure,
Ollama, vLLM, the loopback fake in toolkit.llm.fake).

    client = LlmClient.from_settings(get_settings())
    vectors = client.embed(["運費怎麼算"])                    # list[list[float]]
    text = client.chat([{"role": "user", "content": "..."}])  # the first choice's text
    data = client.chat_json(messages)                        # a JSON object, strictly parsed

Every way a call can go wrong (429, 5xx, a timeout, a refused connection, an answer that
is not what the API documents) is one exception, LlmUnavailable, with a short `reason`;
callers fall back to what they can do without a model. Outcomes and latencies are counted
in Prometheus (toolkit_llm_requests_total, toolkit_llm_request_seconds).

Real-time callers (the bot) use max_retries=0 and a cool-down: after a 429 that names a
Retry-After, calls fail at once until it has passed, instead of adding a timeout to every
customer message while the endpoint is saturated. Batch callers (`toolkit faq expand`)
use a few retries, which the SDK spaces by Retry-After or exponential backoff.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import httpx
from prometheus_client import Counter, Histogram

from toolkit.kit.errors import ToolkitError
from toolkit.settings import Settings

log = logging.getLogger(__name__)

LLM_REQUESTS = Counter(
    "toolkit_llm_requests_total", "Requests to the configured LLM endpoint", ["operation", "outcome"]
)
LLM_LATENCY = Histogram(
    "toolkit_llm_request_seconds", "LLM request latency (answered or not)", ["operation"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32),
)

EMBED_BATCH = 128  # inputs per /embeddings request (OpenAI allows 2,048; local servers less)
MAX_COOL_DOWN_S = 60.0
# The SDK insists on a key; local servers (Ollama, vLLM, the fake) ignore it.
NO_KEY = "not-needed"

RATE_LIMITED, SERVER_ERROR, TIMEOUT, CONNECTION, MALFORMED, REFUSED, COOLING_DOWN = (
    "rate_limited", "server_error", "timeout", "connection", "malformed", "refused", "cooling_down",
)


class LlmNotConfigured(ToolkitError):
    code = "llm_not_configured"

    def __init__(self) -> None:
        super().__init__("no LLM is configured: set TOOLKIT_LLM_BASE_URL and TOOLKIT_LLM_MODEL")


class LlmUnavailable(ToolkitError):
    """The model could not give a usable answer; `reason` says why in one word."""

    status_code = 503
    code = "llm_unavailable"

    def __init__(self, reason: str, detail: str = "", *, retry_after_s: float | None = None) -> None:
        super().__init__(f"LLM unavailable ({reason}){': ' + detail if detail else ''}", reason=reason)
        self.reason = reason
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class LlmConfig:
    base_url: str
    model: str
    embedding_model: str
    api_key: str | None = None
    timeout_s: float = 8.0

    @classmethod
    def from_settings(cls, settings: Settings) -> LlmConfig | None:
        """None when no LLM is configured (base URL and model are both needed)."""
        if not settings.llm_configured:
            return None
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
        return cls(str(settings.llm_base_url).rstrip("/"), str(settings.llm_model), settings.llm_embedding_model,
                   key, settings.llm_timeout_s)


@lru_cache(maxsize=1)
def _sdk() -> Any:
    """The openai package takes a second or two to import (hundreds of generated types):
    load it when a process first talks to a model, not for every CLI command."""
    import openai  # noqa: PLC0415 - deliberate, see above

    return openai


def _retry_after(exc: Any) -> float | None:
    value = exc.response.headers.get("retry-after")
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and math.isfinite(seconds) and seconds > 0 else None


def _classify(exc: Exception) -> LlmUnavailable:
    openai = _sdk()
    if isinstance(exc, openai.APITimeoutError):
        return LlmUnavailable(TIMEOUT)
    if isinstance(exc, openai.APIConnectionError):
        return LlmUnavailable(CONNECTION, str(exc))
    if isinstance(exc, openai.RateLimitError):
        return LlmUnavailable(RATE_LIMITED, retry_after_s=_retry_after(exc))
    if isinstance(exc, openai.APIStatusError):
        reason = SERVER_ERROR if exc.status_code >= 500 else REFUSED
        return LlmUnavailable(reason, f"HTTP {exc.status_code}")
    # APIResponseValidationError, undecodable JSON, missing fields: not what the API documents.
    return LlmUnavailable(MALFORMED, f"{type(exc).__name__}: {str(exc)[:200]}")


def _call_errors() -> tuple[type[Exception], ...]:
    # Everything the SDK or its parsing can raise for a bad answer (a bug of ours raising one
    # of these would show up in tests as a model that always fails).
    return (_sdk().OpenAIError, httpx.HTTPError, ValueError, KeyError, AttributeError, TypeError)


class LlmClient:
    def __init__(self, config: LlmConfig, *, max_retries: int = 0, cool_down: bool = True) -> None:
        self.config = config
        self.model = config.model
        self.embedding_model = config.embedding_model
        self._sdk = _sdk().OpenAI(base_url=config.base_url, api_key=config.api_key or NO_KEY,
                                  timeout=config.timeout_s, max_retries=max_retries)
        self._cool_down = cool_down
        self._paused_until = 0.0
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, *, max_retries: int = 0, cool_down: bool = True) -> LlmClient:
        config = LlmConfig.from_settings(settings)
        if config is None:
            raise LlmNotConfigured()
        return cls(config, max_retries=max_retries, cool_down=cool_down)

    def close(self) -> None:
        self._sdk.close()

    def __enter__(self) -> LlmClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- calls ------------------------------------------------------------------------

    @contextmanager
    def _call(self, operation: str) -> Iterator[None]:
        with self._lock:
            paused = self._paused_until - time.monotonic()
        if paused > 0:
            LLM_REQUESTS.labels(operation, COOLING_DOWN).inc()
            raise LlmUnavailable(COOLING_DOWN, f"rate limited; retrying in {paused:.0f} s", retry_after_s=paused)
        started = time.perf_counter()
        try:
            yield
        except LlmUnavailable as exc:
            LLM_REQUESTS.labels(operation, exc.reason).inc()
            raise
        except _call_errors() as exc:
            failure = _classify(exc)
            LLM_REQUESTS.labels(operation, failure.reason).inc()
            if failure.reason == RATE_LIMITED and failure.retry_after_s and self._cool_down:
                with self._lock:
                    self._paused_until = time.monotonic() + min(failure.retry_after_s, MAX_COOL_DOWN_S)
            log.warning("LLM %s failed: %s", operation, failure.message)
            raise failure from exc
        else:
            LLM_REQUESTS.labels(operation, "ok").inc()
        finally:
            LLM_LATENCY.labels(operation).observe(time.perf_counter() - started)

    def embed(self, texts: Sequence[str], *, timeout_s: float | None = None) -> list[list[float]]:
        """One vector per text, in order (several requests for many texts)."""
        vectors: list[list[float]] = []
        for start in range(0, len(texts), EMBED_BATCH):
            vectors.extend(self._embed_batch(list(texts[start:start + EMBED_BATCH]), timeout_s))
        return vectors

    def _embed_batch(self, texts: list[str], timeout_s: float | None) -> list[list[float]]:
        if not texts:
            return []
        with self._call("embeddings"):
            response = self._sdk.embeddings.create(
                model=self.embedding_model, input=texts, encoding_format="float",
                timeout=timeout_s or self.config.timeout_s,
            )
            return _vectors(response, len(texts))

    def chat(
        self, messages: Sequence[Mapping[str, Any]], *, json_mode: bool = False, temperature: float | None = 0.0,
        timeout_s: float | None = None,
    ) -> str:
        """The text of the first choice."""
        with self._call("chat"):
            return self._complete(messages, json_mode, temperature, timeout_s)

    def chat_json(
        self, messages: Sequence[Mapping[str, Any]], *, temperature: float | None = 0.0,
        timeout_s: float | None = None,
    ) -> dict[str, Any]:
        """A JSON object from the model (JSON mode asked for; code fences tolerated);
        LlmUnavailable(malformed) for anything else."""
        with self._call("chat"):
            return parse_json_object(self._complete(messages, True, temperature, timeout_s))

    def _complete(
        self, messages: Sequence[Mapping[str, Any]], json_mode: bool, temperature: float | None,
        timeout_s: float | None,
    ) -> str:
        extra: dict[str, Any] = {}
        if json_mode:
            extra["response_format"] = {"type": "json_object"}
        if temperature is not None:
            extra["temperature"] = temperature
        response = self._sdk.chat.completions.create(
            model=self.model, messages=list(messages), timeout=timeout_s or self.config.timeout_s, **extra,
        )
        return _first_text(response)


def _vectors(response: Any, expected: int) -> list[list[float]]:
    data = sorted(response.data, key=lambda item: item.index)
    if len(data) != expected or [item.index for item in data] != list(range(expected)):
        raise ValueError(f"{len(data)} embeddings for {expected} inputs")
    vectors = [[float(x) for x in item.embedding] for item in data]
    dims = {len(v) for v in vectors}
    if len(dims) != 1 or 0 in dims:
        raise ValueError(f"embeddings of unequal or zero length: {sorted(dims)}")
    if not all(math.isfinite(x) for v in vectors for x in v):
        raise ValueError("an embedding holds a non-finite number")
    return vectors


def _first_text(response: Any) -> str:
    if not response.choices:
        raise ValueError("no choices in the answer")
    message = response.choices[0].message
    if getattr(message, "refusal", None):
        raise LlmUnavailable(REFUSED, "the model refused")
    if not isinstance(message.content, str) or not message.content.strip():
        raise ValueError("the answer has no text")
    return message.content


_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


def parse_json_object(text: str) -> dict[str, Any]:
    """The JSON object in a model's answer; ValueError when there is none."""
    text = text.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {text[:80]!r}") from exc
    if not isinstance(value, dict):
        raise ValueError(f"JSON but not an object: {text[:80]!r}")
    return value
