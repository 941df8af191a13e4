"""A loopback OpenAI-compatible endpoint: deterministic answers, recorded requests and
injected faults. The tests and the demo point TOOLKIT_LLM_BASE_URL at it.

    with FakeLlmServer() as fake:                 # http://127.0.0.1:<free port>/v1
        settings = Settings(llm_base_url=fake.base_url, llm_model="fake-chat")
        fake.state.script("429", "timeout")       # the next two calls fail, then normal
        ...
        fake.state.requests                       # every request body, as received

or from the command line: `toolkit llm fake --port 8090`.

Endpoints (shapes as in OpenAI's OpenAPI file, specs/openai-openapi/):

* POST /v1/embeddings: hashed character uni- and bigrams of the normalised text
  (NFKC, Traditional, lower case, no punctuation), L2-normalised, so texts that share
  characters are close and paraphrases that share none are not: a lexical model,
  deterministic across processes.
* POST /v1/chat/completions: when the last user message is a JSON task it answers it
  (the prompts of toolkit.chatbot use this convention):
    {"task": "choose_faq", "message", "candidates": [{"id", "question", "other_questions", "answer"}]}
        -> {"choice": id} for the candidate whose questions share the most character
           bigrams with the message (overlap coefficient), or {"choice": "none"} below a
           threshold;
    {"task": "paraphrase_question", "question", "answer", "language", "count", "avoid"}
        -> {"questions": [...]} rewrites of the question and of the answer's first clause.
  Anything else gets a fixed sentence. `stream: true` is answered as server-sent events.
* GET /_requests, DELETE /_requests: what was received; POST /_faults: set faults as
  {"script": ["429", "500", "timeout", "malformed", "junk", "ok"], "rates": {"429": 0.1},
   "seed": 1, "hang_s": 30, "retry_after_s": 1}.

Faults: 429 (OpenAI's error body and a Retry-After), 500, timeout (the answer comes after
hang_s, past any sane client timeout), malformed (a 200 whose body is not JSON), junk (a
200 with JSON that is not the documented shape). A script is consumed one fault per API
call before rates are drawn.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import random
import threading
import time
import unicodedata
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

from toolkit.kit.serving import ServerThread
from toolkit.kit.text import normalise

DIMS = 256
CHOOSE_FAQ, PARAPHRASE = "choose_faq", "paraphrase_question"
FAULTS = ("429", "500", "timeout", "malformed", "junk", "ok")
# Below this bigram overlap between the message and the best candidate's questions the
# fake abstains, as a careful model would for an unrelated message.
CHOOSE_THRESHOLD = 0.3
FALLBACK_TEXT = "This is the loopback fake LLM."


# --- deterministic "models" -----------------------------------------------------------

def _features(text: str) -> dict[str, float]:
    weights: dict[str, float] = {}
    for token in normalise(text).split():
        if token.isascii():
            weights["w:" + token] = weights.get("w:" + token, 0.0) + 1.0
        for ch in token:
            weights["c:" + ch] = weights.get("c:" + ch, 0.0) + 0.5
        for a, b in zip(token, token[1:], strict=False):
            weights["b:" + a + b] = weights.get("b:" + a + b, 0.0) + 1.0
    return weights


def _bucket(feature: str, dims: int) -> tuple[int, float]:
    digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
    number = int.from_bytes(digest, "little")
    return number % dims, (1.0 if (number >> 63) & 1 else -1.0)


def embed_text(text: str, dims: int = DIMS) -> list[float]:
    """The fake's embedding of `text`: unit length (all zeros for text with no characters)."""
    vector = np.zeros(dims)
    for feature, weight in _features(text).items():
        index, sign = _bucket(feature, dims)
        vector[index] += sign * weight
    norm = float(np.linalg.norm(vector))
    return [round(float(x), 7) for x in (vector / norm if norm else vector)]


def _bigrams(text: str) -> set[str]:
    compact = normalise(text).replace(" ", "")
    return {compact[i:i + 2] for i in range(len(compact) - 1)} or ({compact} if compact else set())


def overlap(a: str, b: str) -> float:
    """Overlap coefficient of the two texts' character bigrams: shared / the smaller set."""
    x, y = _bigrams(a), _bigrams(b)
    return len(x & y) / min(len(x), len(y)) if x and y else 0.0


def choose(message: str, candidates: list[dict[str, Any]], threshold: float = CHOOSE_THRESHOLD) -> str:
    """The id of the candidate whose question (or other question) overlaps the message most,
    or "none" when even the best overlaps too little."""
    best, best_score = "none", 0.0
    for candidate in candidates:
        questions = [candidate.get("question", ""), *(candidate.get("other_questions") or [])]
        score = max(overlap(message, str(q)) for q in questions)
        if score > best_score:
            best, best_score = str(candidate.get("id")), score
    return best if best_score >= threshold else "none"


_ZH_REWRITES = (("怎麼", "要如何"), ("如何", "怎麼"), ("可以", "能不能"), ("申請", "辦理"), ("多少", "幾"),
                ("什麼", "啥"), ("嗎", ""), ("請問", ""))


def _clause(text: str) -> str:
    for mark in "。，；！？\n,.;!?":
        text = text.split(mark)[0]
    return text.strip()[:24]


def paraphrase(question: str, answer: str, language: str, count: int, avoid: list[str]) -> list[str]:
    """Plausible, deterministic rewrites of `question` (and of the answer's first clause)."""
    core = unicodedata.normalize("NFKC", question).strip().rstrip("？?。.!！ ")
    clause = _clause(unicodedata.normalize("NFKC", answer))
    if language.startswith("en"):
        options = [f"quick question: {core.lower()}", f"{core.lower()} pls", f"hi, {core.lower()}?",
                   f"{clause.lower()}?", f"can you tell me {core.lower()}"]
    else:
        rewritten = core
        for old, new in _ZH_REWRITES:
            if old in rewritten:
                rewritten = rewritten.replace(old, new, 1)
                break
        options = [f"請問{core}", rewritten, f"{clause}嗎", f"想問一下{core}", f"{core}？謝謝", f"{core} 急"]
    seen = {normalise(q) for q in [question, *avoid]}
    kept = []
    for option in options:
        key = normalise(option)
        if key and key not in seen:
            seen.add(key)
            kept.append(option)
    return kept[:max(count, 0)]


# --- state: requests and faults -------------------------------------------------------

@dataclass
class RecordedRequest:
    path: str
    body: Any  # the parsed JSON, or the raw text when it was not JSON
    at: float
    fault: str | None = None

    @property
    def text(self) -> str:
        """The body as text, for "nothing of X was sent" assertions."""
        return self.body if isinstance(self.body, str) else json.dumps(self.body, ensure_ascii=False)


@dataclass
class FakeState:
    dims: int = DIMS
    hang_s: float = 30.0
    retry_after_s: int = 1
    choose_threshold: float = CHOOSE_THRESHOLD
    requests: list[RecordedRequest] = field(default_factory=list)
    _script: deque[str] = field(default_factory=deque)
    _rates: dict[str, float] = field(default_factory=dict)
    _random: random.Random = field(default_factory=lambda: random.Random(0))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def script(self, *faults: str) -> None:
        """Faults for the next API calls, in order ("ok" for a normal answer)."""
        unknown = [f for f in faults if f not in FAULTS]
        if unknown:
            raise ValueError(f"unknown fault(s) {unknown}; known: {', '.join(FAULTS)}")
        with self._lock:
            self._script.extend(faults)

    def set_rates(self, rates: dict[str, float], *, seed: int | None = None) -> None:
        unknown = [f for f in rates if f not in FAULTS]
        if unknown or any(not 0 <= r <= 1 for r in rates.values()) or sum(rates.values()) > 1:
            raise ValueError(f"rates must be known faults with shares in [0, 1] summing to at most 1: {rates}")
        with self._lock:
            self._rates = dict(rates)
            if seed is not None:
                self._random = random.Random(seed)

    def clear(self) -> None:
        with self._lock:
            self._script.clear()
            self._rates = {}
            self.requests = []

    def api_requests(self, path: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if path is None or r.path == path]

    def record(self, path: str, body: Any) -> RecordedRequest:
        with self._lock:
            fault: str | None = self._script.popleft() if self._script else None
            if fault is None and self._rates:
                draw, edge = self._random.random(), 0.0
                for name, rate in self._rates.items():
                    edge += rate
                    if draw < edge:
                        fault = name
                        break
            recorded = RecordedRequest(path, body, time.time(), None if fault == "ok" else fault)
            self.requests.append(recorded)
            return recorded


# --- the app --------------------------------------------------------------------------

def _error(status: int, message: str, kind: str, code: str | None = None,
           headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


async def _hang(state: FakeState, request: Request) -> None:
    # Until hang_s has passed or the client has given up (a server stopping meanwhile
    # must not wait for it either).
    deadline = time.monotonic() + state.hang_s
    while time.monotonic() < deadline and not await request.is_disconnected():
        await asyncio.sleep(0.05)


async def _fault_response(
    state: FakeState, request: Request, fault: str | None, junk: dict[str, Any],
) -> Response | None:
    if fault == "429":
        return _error(429, "Rate limit reached (injected by the loopback fake).", "requests", "rate_limit_exceeded",
                      {"retry-after": str(state.retry_after_s)})
    if fault == "500":
        return _error(500, "The server had an error (injected by the loopback fake).", "server_error")
    if fault == "timeout":
        await _hang(state, request)
        return None
    if fault == "malformed":
        return PlainTextResponse('{"object": "list", "data": [', media_type="application/json")
    if fault == "junk":
        return JSONResponse(junk)
    return None


def _embeddings(state: FakeState, body: dict[str, Any]) -> Response:
    texts = body.get("input")
    if isinstance(texts, str):
        texts = [texts]
    if not body.get("model") or not isinstance(texts, list) or not texts:
        return _error(400, "'model' and a non-empty 'input' are required", "invalid_request_error")
    if not all(isinstance(t, str) and t for t in texts):
        return _error(400, "'input' must be non-empty strings (token arrays are not supported here)",
                      "invalid_request_error")
    dims = int(body.get("dimensions") or state.dims)
    data = [{"object": "embedding", "index": i, "embedding": embed_text(t, dims)} for i, t in enumerate(texts)]
    if body.get("encoding_format") == "base64":
        for item in data:
            item["embedding"] = base64.b64encode(np.asarray(item["embedding"], dtype="<f4").tobytes()).decode()
    tokens = sum(len(t) for t in texts)
    return JSONResponse({"object": "list", "model": body["model"], "data": data,
                         "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})


def _reply_to(state: FakeState, messages: list[dict[str, Any]]) -> str:
    user = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    content = user[-1].get("content") if user else None
    if isinstance(content, list):  # content parts
        content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    try:
        task = json.loads(content) if isinstance(content, str) else None
    except ValueError:
        task = None
    if isinstance(task, dict) and task.get("task") == CHOOSE_FAQ:
        candidates = [c for c in task.get("candidates") or [] if isinstance(c, dict)]
        return json.dumps({"choice": choose(str(task.get("message", "")), candidates, state.choose_threshold)})
    if isinstance(task, dict) and task.get("task") == PARAPHRASE:
        questions = paraphrase(str(task.get("question", "")), str(task.get("answer", "")),
                               str(task.get("language", "zh-TW")), int(task.get("count") or 3),
                               [str(q) for q in task.get("avoid") or []])
        return json.dumps({"questions": questions}, ensure_ascii=False)
    return FALLBACK_TEXT


def _completion(body: dict[str, Any], text: str) -> dict[str, Any]:
    tokens = len(text)
    return {
        "id": "chatcmpl-fake-" + hashlib.sha1(text.encode()).hexdigest()[:12],
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body["model"],
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                     "message": {"role": "assistant", "content": text, "refusal": None, "annotations": []}}],
        "usage": {"prompt_tokens": 0, "completion_tokens": tokens, "total_tokens": tokens},
    }


def _stream(body: dict[str, Any], text: str) -> Iterator[str]:
    base = {"id": "chatcmpl-fake-stream", "object": "chat.completion.chunk", "created": int(time.time()),
            "model": body["model"]}
    yield "data: " + json.dumps({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                                     "finish_reason": None}]}) + "\n\n"
    for start in range(0, len(text), 8):
        chunk = {"index": 0, "delta": {"content": text[start:start + 8]}, "finish_reason": None}
        yield "data: " + json.dumps({**base, "choices": [chunk]}, ensure_ascii=False) + "\n\n"
    yield "data: " + json.dumps({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}) + "\n\n"
    yield "data: [DONE]\n\n"


def create_fake_app(state: FakeState | None = None) -> FastAPI:
    state = state or FakeState()
    app = FastAPI(title="Loopback OpenAI-compatible fake", docs_url=None, redoc_url=None)
    app.state.fake = state

    async def received(request: Request, path: str) -> tuple[RecordedRequest, dict[str, Any] | None]:
        raw = (await request.body()).decode("utf-8", "replace")
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        return state.record(path, body if body is not None else raw), body if isinstance(body, dict) else None

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> Response:
        recorded, body = await received(request, "/v1/embeddings")
        failed = await _fault_response(state, request, recorded.fault, {"object": "list", "data": "no vectors today"})
        if failed is not None:
            return failed
        if body is None:
            return _error(400, "the body must be a JSON object", "invalid_request_error")
        return _embeddings(state, body)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        recorded, body = await received(request, "/v1/chat/completions")
        junk = {"id": "chatcmpl-junk", "object": "chat.completion", "choices": "none of your business"}
        failed = await _fault_response(state, request, recorded.fault, junk)
        if failed is not None:
            return failed
        if body is None or not body.get("model") or not isinstance(body.get("messages"), list) or not body["messages"]:
            return _error(400, "'model' and a non-empty 'messages' are required", "invalid_request_error")
        text = _reply_to(state, body["messages"])
        if body.get("stream"):
            return StreamingResponse(_stream(body, text), media_type="text/event-stream")
        return JSONResponse(_completion(body, text))

    @app.get("/_requests")
    def list_requests() -> list[dict[str, Any]]:
        return [{"path": r.path, "body": r.body, "at": r.at, "fault": r.fault} for r in state.api_requests()]

    @app.delete("/_requests", status_code=204)
    def clear_requests() -> None:
        state.clear()

    @app.post("/_faults")
    async def set_faults(request: Request) -> JSONResponse:
        plan = await request.json()
        try:
            if "hang_s" in plan:
                state.hang_s = float(plan["hang_s"])
            if "retry_after_s" in plan:
                state.retry_after_s = int(plan["retry_after_s"])
            state.script(*plan.get("script", []))
            if "rates" in plan:
                state.set_rates(plan["rates"], seed=plan.get("seed"))
        except (TypeError, ValueError) as exc:
            return _error(400, str(exc), "invalid_request_error")
        return JSONResponse({"script": list(state._script), "rates": state._rates})

    return app


class FakeLlmServer(ServerThread):
    """The fake under uvicorn in a daemon thread, on a free loopback port."""

    def __init__(self, state: FakeState | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = state or FakeState()
        super().__init__(create_fake_app(self.state), host=host, port=port)
        self.url = self.base_url
        self.base_url = self.url + "/v1"
