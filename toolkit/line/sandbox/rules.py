"""What the sandbox checks in a request, and LINE's words and shapes for its answers.
Pure functions and plain data.

The message limits themselves (5 messages, 500 IDs, 5,000 UTF-16 units) live in
toolkit.line.limits, shared with the LINE adapter; this module applies them per endpoint
and adds what only the receiving side checks (JSON shape, retry key, recipients).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from toolkit.line.limits import (
    Violation,
    is_user_id,
    message_violations,
    push_target_violations,
    recipient_violations,
)

SEND_ENDPOINTS = ("reply", "push", "multicast", "narrowcast", "broadcast")
# LINE takes X-Line-Retry-Key on these and answers 400 to it anywhere else.
RETRY_KEY_ENDPOINTS = frozenset({"push", "multicast", "narrowcast", "broadcast"})
RETRY_KEY_HEADER = "X-Line-Retry-Key"
RETRY_KEY = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# Types that can be quoted later, so LINE returns a quoteToken for them.
QUOTABLE = frozenset({"text", "textV2", "sticker", "image", "video"})
MAX_WEBHOOK_URL = 500

AUTH_FAILED = "Authentication failed. Confirm that the access token in the authorization header is valid."
RATE_LIMITED = "The API rate limit has been exceeded. Try again later."
MONTHLY_LIMIT = "You have reached your monthly limit."
INVALID_REPLY_TOKEN = "Invalid reply token"
RETRY_KEY_ACCEPTED = "The retry key is already accepted"
TOO_LARGE = "Request Entity Too Large"
INTERNAL_ERROR = "Internal Server Error"
GATEWAY_TIMEOUT = "Gateway Timeout"
NOT_JSON = "The request body is not valid JSON"


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    wait_s: float = 0.0  # injected latency or hang, awaited by the route before answering


class LineError(Exception):
    """A refusal of a read or settings endpoint, in LINE's error shape."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body.get("message"))
        self.status = status
        self.body = body


def error(message: str, violations: Iterable[Violation] = ()) -> dict[str, Any]:
    """LINE's error shape; `details` only when there are some (as LINE does)."""
    body: dict[str, Any] = {"message": message}
    details = [{"message": v.message, "property": v.property} for v in violations]
    if details:
        body["details"] = details
    return body


def invalid_request(violations: list[Violation]) -> dict[str, Any]:
    return error(f"The request body has {len(violations)} error(s)", violations)


def bearer_token(authorization: str | None) -> str | None:
    """Any non-empty bearer token is accepted; the sandbox has no channel to check it against."""
    scheme, _, token = (authorization or "").partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


def parse_object(body: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def retry_key_violations(endpoint: str, key: str | None) -> list[Violation]:
    if key is None:
        return []
    if endpoint not in RETRY_KEY_ENDPOINTS:
        return [Violation(RETRY_KEY_HEADER, "The retry key is not supported by this endpoint")]
    if not RETRY_KEY.fullmatch(key.lower()):
        return [Violation(RETRY_KEY_HEADER, "Must be a UUID in hexadecimal format")]
    return []


def request_violations(endpoint: str, payload: dict[str, Any]) -> list[Violation]:
    problems = message_violations(payload.get("messages"))
    if endpoint == "reply":
        token = payload.get("replyToken")
        if not isinstance(token, str) or not token:
            problems.append(Violation("replyToken", "May not be empty"))
    elif endpoint == "push":
        problems.extend(push_target_violations(payload.get("to")))
    elif endpoint == "multicast":
        problems.extend(recipient_violations(payload.get("to")))
    elif endpoint == "narrowcast":
        problems.extend(_narrowcast_limit_violations(payload.get("limit")))
    return problems


def _narrowcast_limit_violations(limit: Any) -> list[Violation]:
    if limit is None:
        return []
    top = limit.get("max") if isinstance(limit, dict) else "?"
    if top is None or (isinstance(top, int) and not isinstance(top, bool) and top >= 1):
        return []
    return [Violation("limit.max", "Must be an integer of at least 1")]


def recipients(endpoint: str, payload: dict[str, Any]) -> list[str]:
    """Whom a request names, for the record: [] for broadcast and narrowcast (an audience),
    and for reply (the token's user is found in the store)."""
    to = payload.get("to")
    if endpoint == "push" and isinstance(to, str):
        return [to]
    if endpoint == "multicast" and isinstance(to, list):
        return [str(user) for user in to]
    return []


def audience(endpoint: str, payload: dict[str, Any], *, friends: int) -> int:
    """How many users a request reaches: LINE counts one message per recipient per request,
    whatever the number of message objects in it; replies are free."""
    if endpoint == "push":
        return 1
    if endpoint == "multicast":
        return len(payload.get("to") or [])
    if endpoint == "broadcast":
        return friends
    if endpoint == "narrowcast":
        top = (payload.get("limit") or {}).get("max")
        return min(friends, top) if isinstance(top, int) else friends
    return 0


def sent_message_types(payload: dict[str, Any]) -> list[str]:
    return [str(m.get("type")) for m in payload.get("messages") or [] if isinstance(m, dict)]


def webhook_url_violations(payload: dict[str, Any] | None, *, required: bool) -> list[Violation]:
    url = (payload or {}).get("endpoint")
    if url is None and not required:
        return []
    if not isinstance(url, str) or len(url) > MAX_WEBHOOK_URL:
        return [Violation("endpoint", f"Must be a URL of at most {MAX_WEBHOOK_URL} characters")]
    parts = urlsplit(url)
    # LINE insists on HTTPS; the sandbox also takes http, since it calls local servers.
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return [Violation("endpoint", "Must be an http or https URL")]
    return []


def user_id_violations(user_id: str) -> list[Violation]:
    return [] if is_user_id(user_id) else [Violation("userId", "Invalid user ID")]
