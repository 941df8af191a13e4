"""The LINE adapter: a thin wrapper over linebot.v3's MessagingApi.

It knows LINE, not our domains: callers decide (through the consent gate) whom to message;
this module checks message limits, sends, and reports what LINE answered.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import urllib3

from toolkit.line.limits import check_messages, check_push_target, check_recipients

log = logging.getLogger(__name__)

RETRY_KEY_NAMESPACE = uuid.UUID("5b0f8a0e-1c5e-4d8e-9a51-3f0f0a6a8c11")
DEFAULT_TIMEOUT_S = 10.0


@lru_cache(maxsize=1)
def _sdk() -> Any:
    """linebot.v3.messaging takes over a second to import (hundreds of generated models):
    load it when a process first talks to LINE, not for every CLI command."""
    import linebot.v3.messaging as messaging  # noqa: PLC0415 - deliberate, see above

    return messaging


def retry_key(*parts: object) -> str:
    """A stable X-Line-Retry-Key for one logical send: the same parts give the same key,
    so a retry after a timeout or 5xx is answered 409 by LINE instead of sent twice."""
    return str(uuid.uuid5(RETRY_KEY_NAMESPACE, ":".join(str(p) for p in parts)))


@dataclass(frozen=True)
class SendResult:
    endpoint: str
    status: int  # HTTP status; 0 when no answer came (timeout, connection error)
    request_id: str | None = None
    accepted_request_id: str | None = None
    body: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def delivered(self) -> bool:
        """LINE accepted it now (200) or earlier under the same retry key (409)."""
        return self.status == 200 or (self.status == 409 and self.accepted_request_id is not None)

    @property
    def invalid_reply_token(self) -> bool:
        return self.status == 400 and "reply token" in (self.error or "").lower()

    @property
    def retryable(self) -> bool:
        return self.status in (0, 429) or self.status >= 500


def _headers(raw: Any) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in dict(raw or {}).items()}


def _body(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    try:
        decoded = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    except (ValueError, UnicodeDecodeError):
        return {"raw": str(raw)[:500]}
    return decoded if isinstance(decoded, dict) else {"value": decoded}


class LineClient:
    def __init__(self, *, api_base: str, access_token: str, timeout_s: float = DEFAULT_TIMEOUT_S,
                 pool_size: int | None = None) -> None:
        # Configuration(host=...) keeps a path prefix, so the mounted sandbox works as-is.
        sdk = _sdk()
        configuration = sdk.Configuration(host=api_base.rstrip("/"), access_token=access_token)
        if pool_size is not None:
            # Connections kept per host (the SDK keeps 5 per CPU): a caller sending on more
            # threads than that would open and drop a connection (a TLS handshake) per call.
            configuration.connection_pool_maxsize = pool_size
        self._api_client = sdk.ApiClient(configuration)
        self._api = sdk.MessagingApi(self._api_client)
        self.timeout_s = timeout_s

    def close(self) -> None:
        self._api_client.close()

    def _call(self, endpoint: str, method: str, *args: Any, **kwargs: Any) -> SendResult:
        try:
            response = getattr(self._api, method)(*args, _request_timeout=self.timeout_s, **kwargs)
        except _sdk().ApiException as exc:
            headers = _headers(exc.headers)
            body = _body(exc.body)
            return SendResult(
                endpoint, int(exc.status or 0), headers.get("x-line-request-id"),
                headers.get("x-line-accepted-request-id"), body, str(body.get("message") or exc.reason),
            )
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            return SendResult(endpoint, 0, error=f"{type(exc).__name__}: {exc}")
        headers = _headers(response.headers)
        data = response.data.to_dict() if hasattr(response.data, "to_dict") else _body(response.raw_data)
        return SendResult(endpoint, int(response.status_code or 200), headers.get("x-line-request-id"), body=data or {})

    def reply(self, reply_token: str, messages: Sequence[dict[str, Any]]) -> SendResult:
        check_messages(messages)
        request = _sdk().ReplyMessageRequest.from_dict({"replyToken": reply_token, "messages": list(messages)})
        return self._call("reply", "reply_message_with_http_info", request)

    def push(self, to: str, messages: Sequence[dict[str, Any]], *, retry_key: str) -> SendResult:
        check_messages(messages)
        check_push_target(to)
        request = _sdk().PushMessageRequest.from_dict({"to": to, "messages": list(messages)})
        return self._call("push", "push_message_with_http_info", request, x_line_retry_key=retry_key)

    def multicast(self, to: Sequence[str], messages: Sequence[dict[str, Any]], *, retry_key: str) -> SendResult:
        check_messages(messages)
        check_recipients(to)
        request = _sdk().MulticastRequest.from_dict({"to": list(to), "messages": list(messages)})
        return self._call("multicast", "multicast_with_http_info", request, x_line_retry_key=retry_key)

    def bot_info(self) -> SendResult:
        return self._call("info", "get_bot_info_with_http_info")

    def webhook_endpoint(self) -> SendResult:
        return self._call("webhook_endpoint", "get_webhook_endpoint_with_http_info")

    def test_webhook(self) -> SendResult:
        return self._call("webhook_test", "test_webhook_endpoint_with_http_info")

    def quota(self) -> SendResult:
        return self._call("quota", "get_message_quota_with_http_info")

    def quota_consumption(self) -> SendResult:
        return self._call("quota_consumption", "get_message_quota_consumption_with_http_info")

    def profile(self, user_id: str) -> SendResult:
        return self._call("profile", "get_profile_with_http_info", user_id)


def text_message(text: str, *, quick_replies: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
    """A LINE text message; quick replies are (label, text-to-send) pairs."""
    message: dict[str, Any] = {"type": "text", "text": text}
    if quick_replies:
        message["quickReply"] = {
            "items": [
                {"type": "action", "action": {"type": "message", "label": label[:20], "text": sent}}
                for label, sent in quick_replies
            ]
        }
    return message


# How a reply ended: the inbox stores it so that a crash never leads to a second message.
REPLY_SENT, PUSH_SENT, PUSH_PENDING, UNKNOWN, FAILED = "reply_sent", "push_sent", "push_pending", "unknown", "failed"


def send_reply(
    client: LineClient,
    *,
    reply_token: str | None,
    messages: Sequence[dict[str, Any]],
    push_allowed: bool,
    ambiguous_retries: int = 2,
) -> tuple[str, SendResult | None]:
    """Reply with the (free, single-use) reply token first.

    An invalid token on the first try (expired: the worker was slow) falls back to push
    where the caller allows it (service.chat only). After an ambiguous failure (timeout,
    5xx) the reply is retried: "invalid reply token" then means LINE took the first try,
    so nothing more is sent — at most one answer, never two.
    """
    if not reply_token:
        return (PUSH_PENDING if push_allowed else FAILED), None
    result: SendResult | None = None
    for attempt in range(ambiguous_retries + 1):
        result = client.reply(reply_token, messages)
        if result.delivered:
            return REPLY_SENT, result
        if result.invalid_reply_token:
            if attempt > 0:
                return UNKNOWN, result
            return (PUSH_PENDING if push_allowed else FAILED), result
        if not result.retryable:
            return FAILED, result
    return (PUSH_PENDING if push_allowed else FAILED), result
