"""The admin chat simulator: LINE-shaped webhook events, signed with the channel secret and
sent to our own webhook over HTTP exactly as LINE sends them, and the conversation that
follows, read back from our inbox and from the LINE sandbox's record of what we answered.

Building and signing are pure functions; `send_event` and `conversation` are the only
ones that talk HTTP (through `http_client()`, which tests replace).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy.orm import Session

from toolkit.inbox import service
from toolkit.kit.clock import utcnow
from toolkit.kit.errors import InvalidInput, NotFound, ToolkitError
from toolkit.line.limits import MAX_TEXT_UTF16_UNITS, is_user_id, utf16_units
from toolkit.line.sandbox.service import DEFAULT_BOT_USER_ID
from toolkit.line.webhook import sign
from toolkit.settings import Settings

EventKind = Literal["follow", "unfollow", "message"]
REPLYABLE = ("follow", "message")  # LINE gives these a reply token; unfollow gets none
MAX_TEXT = MAX_TEXT_UTF16_UNITS  # LINE's limit on a text message
TIMEOUT_S = 10.0
HISTORY = 100  # events and replies shown per user
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class SimulatorDisabled(NotFound):
    code = "line_simulator_disabled"


class WebhookUnreachable(ToolkitError):
    status_code = 502
    code = "line_simulator_webhook_unreachable"


class WebhookRefused(ToolkitError):
    status_code = 502
    code = "line_simulator_webhook_refused"


class SandboxUnreachable(ToolkitError):
    status_code = 502
    code = "line_simulator_sandbox_unreachable"


# --- building (pure) ------------------------------------------------------------------------

def new_user_id() -> str:
    """A LINE userId: U and 32 hex digits."""
    return "U" + secrets.token_hex(16)


def new_event_id(now_ms: int | None = None) -> str:
    """A webhookEventId as LINE makes them: a ULID (48-bit ms time + 80 random bits,
    Crockford base32, 26 characters)."""
    value = ((now_ms if now_ms is not None else int(utcnow().timestamp() * 1000)) << 80) | secrets.randbits(80)
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def _message_id() -> str:
    return str(10**17 + secrets.randbelow(9 * 10**17))  # LINE's ids are 18-digit numbers


def build_event(kind: EventKind, *, user_id: str, text: str | None = None, reply_token: str | None = None,
                now_ms: int | None = None, event_id: str | None = None) -> dict[str, Any]:
    """One webhook event of a one-to-one chat, shaped as LINE sends it."""
    if not is_user_id(user_id):
        raise InvalidInput("a LINE user id is U followed by 32 hex digits", field="user_id")
    if kind == "message" and not (text or "").strip():
        raise InvalidInput("a message needs some text", field="text")
    if kind == "message" and utf16_units(text or "") > MAX_TEXT:
        raise InvalidInput(f"LINE text messages have at most {MAX_TEXT} UTF-16 units", field="text")
    now_ms = now_ms if now_ms is not None else int(utcnow().timestamp() * 1000)
    event: dict[str, Any] = {
        "type": kind,
        "mode": "active",
        "timestamp": now_ms,
        "source": {"type": "user", "userId": user_id},
        "webhookEventId": event_id or new_event_id(now_ms),
        "deliveryContext": {"isRedelivery": False},
    }
    if kind in REPLYABLE and reply_token:
        event["replyToken"] = reply_token
    if kind == "follow":
        event["follow"] = {"isUnblocked": False}
    if kind == "message":
        event["message"] = {"id": _message_id(), "type": "text", "quoteToken": secrets.token_urlsafe(24),
                            "text": text}
    return event


def webhook_body(events: list[dict[str, Any]], *, destination: str = DEFAULT_BOT_USER_ID) -> bytes:
    return json.dumps({"destination": destination, "events": events}, ensure_ascii=False).encode()


def signed_headers(channel_secret: str, body: bytes) -> dict[str, str]:
    return {
        "content-type": "application/json; charset=utf-8",
        "user-agent": "LineBotWebhook/2.0 (toolkit simulator)",
        "x-line-signature": sign(channel_secret, body),
    }


def webhook_url(settings: Settings) -> str:
    return settings.base_url.rstrip("/") + "/line/webhook"


def sandbox_url(settings: Settings) -> str:
    """Where our LINE client sends, so where reply tokens must be valid and replies land."""
    return settings.effective_line_api_base


def _require_sandbox(settings: Settings) -> None:
    if not settings.line_sandbox:
        raise SimulatorDisabled("the chat simulator needs the LINE sandbox (TOOLKIT_LINE_SANDBOX=1)")


# --- talking HTTP ---------------------------------------------------------------------------

def http_client() -> httpx.Client:
    return httpx.Client(timeout=TIMEOUT_S)


@dataclass(frozen=True)
class SentEvent:
    webhook_event_id: str
    type: str
    user_id: str
    reply_token: str | None
    status: int


def send_event(settings: Settings, *, channel_secret: str, kind: EventKind, user_id: str,
               text: str | None = None) -> SentEvent:
    """Mint a reply token at the sandbox, then POST the signed event to our real webhook."""
    _require_sandbox(settings)
    build_event(kind, user_id=user_id, text=text)  # refuse bad input before any HTTP
    with http_client() as http:
        try:
            reply_token = None
            if kind in REPLYABLE:
                minted = http.post(sandbox_url(settings) + "/_reply_tokens", json={"user_id": user_id})
                minted.raise_for_status()
                reply_token = minted.json()["replyToken"]
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            raise SandboxUnreachable(f"the LINE sandbox did not mint a reply token: {exc}") from exc
        event = build_event(kind, user_id=user_id, text=text, reply_token=reply_token)
        body = webhook_body([event])
        try:
            response = http.post(webhook_url(settings), content=body, headers=signed_headers(channel_secret, body))
        except httpx.HTTPError as exc:
            raise WebhookUnreachable(f"{webhook_url(settings)} did not answer: {exc}") from exc
    if response.status_code != 200:
        raise WebhookRefused(f"the webhook answered {response.status_code}: {response.text[:200]}",
                             webhook_status=response.status_code)
    return SentEvent(event["webhookEventId"], kind, user_id, reply_token, response.status_code)


@dataclass(frozen=True)
class Conversation:
    user_id: str
    bubbles: list[dict[str, Any]] = field(default_factory=list)
    sandbox_error: str | None = None


def _inbound(event: Any, tz: ZoneInfo) -> dict[str, Any]:
    message = event.body.get("message") if isinstance(event.body.get("message"), dict) else {}
    is_message = event.event_type == "message"
    text = message.get("text") if message.get("type") == "text" else None
    return {
        "side": "user" if is_message else "system",
        # a message bubble says what kind of message when it is not text (a sticker, ...)
        "kind": message.get("type", "message") if is_message and text is None else event.event_type,
        "text": text,
        "at": event.received_at.isoformat(),
        "time": event.received_at.astimezone(tz).strftime("%H:%M:%S"),
        "event_id": event.webhook_event_id,
        "status": event.status,
        "delivery": event.delivery,
    }


def _outbound(record: dict[str, Any], tz: ZoneInfo) -> list[dict[str, Any]]:
    at = datetime.fromisoformat(record["at"])
    return [
        {
            "side": "bot",
            "kind": message.get("type", "?") if isinstance(message, dict) else "?",
            "text": message.get("text") if isinstance(message, dict) else None,
            "at": record["at"],
            "time": at.astimezone(tz).strftime("%H:%M:%S"),
            "endpoint": record.get("endpoint"),
            "accepted": bool(record.get("accepted")),
            "status": record.get("status"),
        }
        for message in record.get("messages") or []
    ]


def conversation(session: Session, settings: Settings, *, user_id: str) -> Conversation:
    """What the user sent (our inbox) and what we answered (the sandbox's record), in order."""
    _require_sandbox(settings)
    if not is_user_id(user_id):
        raise InvalidInput("a LINE user id is U followed by 32 hex digits", field="user_id")
    tz = ZoneInfo(settings.timezone)
    error = None
    try:
        # Before our own reads: no transaction of ours is open while the sandbox reads.
        with http_client() as http:
            response = http.get(sandbox_url(settings) + "/_messages")
            response.raise_for_status()
            records = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        records, error = [], f"{type(exc).__name__}: {exc}"
    bubbles = [_inbound(e, tz) for e in service.events_for_user(session, user_id=user_id, limit=HISTORY)]
    for record in records if isinstance(records, list) else []:
        if isinstance(record, dict) and user_id in (record.get("to") or []):
            bubbles.extend(_outbound(record, tz))
    bubbles.sort(key=lambda b: datetime.fromisoformat(b["at"]))  # stable: a reply stays after its event
    return Conversation(user_id, bubbles[-HISTORY:], error)
