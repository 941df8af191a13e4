"""LINE webhook events as LINE sends them, and helpers to post them signed."""

from __future__ import annotations

import itertools
import json
import time
import uuid
from typing import Any

from sqlalchemy.orm import Session

from toolkit.inbox import service
from toolkit.inbox.models import WebhookEvent
from toolkit.line.webhook import parse, sign

_ids = itertools.count(1)


def line_user_id() -> str:
    return "U" + uuid.uuid4().hex


def event(kind: str, user_id: str, *, text: str | None = None, data: str | None = None,
          mode: str = "active", redelivery: bool = False, event_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": kind,
        "mode": mode,
        "timestamp": int(time.time() * 1000),
        "source": {"type": "user", "userId": user_id},
        "webhookEventId": event_id or f"01TEST{next(_ids):020d}",
        "deliveryContext": {"isRedelivery": redelivery},
    }
    if kind in ("follow", "message", "postback"):
        body["replyToken"] = uuid.uuid4().hex
    if kind == "message":
        body["message"] = {"type": "text", "id": str(next(_ids)), "text": text or "", "quoteToken": "q"}
    if kind == "postback":
        body["postback"] = {"data": data or ""}
    if kind == "follow":
        body["follow"] = {"isUnblocked": False}
    return body


def webhook_body(*events: dict[str, Any]) -> bytes:
    return json.dumps({"destination": "Ubot", "events": list(events)}, ensure_ascii=False).encode()


def store(session: Session, *events: dict[str, Any]) -> list[WebhookEvent]:
    """Put events into the inbox as the webhook does, and return their rows."""
    _, parsed = parse(webhook_body(*events))
    service.store_events(session.connection(), parsed)
    ids = [e.webhook_event_id for e in parsed]
    rows = session.query(WebhookEvent).filter(WebhookEvent.webhook_event_id.in_(ids)).order_by(WebhookEvent.id).all()
    return rows


def arrive(
    session: Session, line_sandbox: Any, *events: dict[str, Any], valid_tokens: bool = True,
) -> list[WebhookEvent]:
    """Store events as the webhook does (the worker claims them together); their reply
    tokens are valid at the sandbox unless `valid_tokens` is False."""
    rows = store(session, *events)
    for row in rows:
        if valid_tokens and row.reply_token:
            line_sandbox.register_reply_token(row.reply_token, row.user_id)
    return rows


def post_webhook(client: Any, secret: str, body: bytes, *, content_type: str = "application/json; charset=utf-8",
                 signature: str | None = None) -> Any:
    """POST a body to the app's webhook as LINE does, signed unless `signature` is given."""
    headers = {"content-type": content_type, "x-line-signature": signature or sign(secret, body)}
    return client.post("/line/webhook", content=body, headers=headers)
