"""Calling the sandbox through LINE's SDK and reading answers the same way for 2xx and errors."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from linebot.v3.messaging import (
    BroadcastRequest,
    MessagingApi,
    MulticastRequest,
    NarrowcastRequest,
    PushMessageRequest,
    ReplyMessageRequest,
    TextMessage,
)
from linebot.v3.messaging.exceptions import ApiException

from tests.line.sandbox.spec import assert_matches_spec


# One client for the whole run: building an httpx client (its TLS context) takes ~50 ms,
# which would distort the timing-sensitive tests.
http = httpx.Client(timeout=10)


def user(n: int) -> str:
    return f"U{n:032x}"


USER = user(1)


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: Any

    @property
    def request_id(self) -> str:
        return self.headers["x-line-request-id"]


def call(method: Callable[..., Any], *args: Any, **kwargs: Any) -> Reply:
    """Call a `*_with_http_info` SDK method; an ApiException is just another answer."""
    try:
        response = method(*args, **kwargs)
    except ApiException as exc:
        return Reply(int(exc.status), {k.lower(): v for k, v in (exc.headers or {}).items()},
                     json.loads(exc.body) if exc.body else None)
    raw = response.raw_data
    return Reply(response.status_code, {k.lower(): v for k, v in (response.headers or {}).items()},
                 json.loads(raw) if raw else None)


def text(value: str = "hello") -> TextMessage:
    return TextMessage(text=value)


def retry_key() -> str:
    return str(uuid.uuid4())


def push(api: MessagingApi, to: str = USER, messages: list[Any] | None = None, *, key: str | None = None,
         **kwargs: Any) -> Reply:
    # construct() skips the SDK's own checks, so that the sandbox's are the ones tested.
    request = PushMessageRequest.construct(to=to, messages=messages if messages is not None else [text()])
    return call(api.push_message_with_http_info, request, x_line_retry_key=key, **kwargs)


def multicast(api: MessagingApi, to: list[str], messages: list[Any] | None = None, *, key: str | None = None) -> Reply:
    request = MulticastRequest.construct(to=to, messages=messages if messages is not None else [text()])
    return call(api.multicast_with_http_info, request, x_line_retry_key=key)


def broadcast(api: MessagingApi, *, key: str | None = None) -> Reply:
    return call(api.broadcast_with_http_info, BroadcastRequest(messages=[text()]), x_line_retry_key=key)


def narrowcast(api: MessagingApi, *, key: str | None = None) -> Reply:
    return call(api.narrowcast_with_http_info, NarrowcastRequest(messages=[text()]), x_line_retry_key=key)


def reply(api: MessagingApi, token: str, messages: list[Any] | None = None) -> Reply:
    request = ReplyMessageRequest.construct(replyToken=token, messages=messages if messages is not None else [text()])
    return call(api.reply_message_with_http_info, request)


def mint_token(base_url: str, user_id: str = USER) -> str:
    response = http.post(f"{base_url}/_reply_tokens", json={"user_id": user_id})
    assert response.status_code == 200, response.text
    return response.json()["replyToken"]


def set_faults(base_url: str, **plan: Any) -> httpx.Response:
    response = http.post(f"{base_url}/_faults", json=plan)
    assert response.status_code == 200, response.text
    return response


def record(base_url: str) -> list[dict[str, Any]]:
    response = http.get(f"{base_url}/_messages")
    assert response.status_code == 200
    return response.json()


def check_spec(path: str, method: str, answer: Reply) -> None:
    assert_matches_spec(path, method, answer.status, answer.body)
