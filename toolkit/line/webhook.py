"""Verifying and splitting LINE webhook bodies (the fast, allocation-light part)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import re
from dataclasses import dataclass
from typing import Any


# How deep a body may nest (the body is 1, its events list 2, an event 3): LINE's deepest
# events are a few levels more. Anything deeper is not from LINE, and far deeper would
# overflow the stack of the JSON parser, encoder or the database.
MAX_DEPTH = 32
# What PostgreSQL cannot store in jsonb or text though JSON can say it (as \u escapes):
# NUL, and surrogates not paired into one character.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class InvalidSignature(Exception):
    pass


class MalformedBody(Exception):
    pass


def sign(channel_secret: str, body: bytes) -> str:
    """What LINE puts in x-line-signature (also used by the simulator and tests)."""
    digest = hmac.new(channel_secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify(channel_secret: str, body: bytes, signature: str | None) -> None:
    if not signature or not hmac.compare_digest(sign(channel_secret, body), signature.strip()):
        raise InvalidSignature("x-line-signature does not match the body")


@dataclass(frozen=True)
class InboundEvent:
    webhook_event_id: str
    type: str
    user_id: str | None
    reply_token: str | None
    mode: str
    is_redelivery: bool
    timestamp_ms: int | None
    raw: dict[str, Any]
    # Why the event is refused on arrival (kept, never handled), else None. `raw` and the
    # fields above then hold its content made storable.
    problem: str | None = None


def parse(body: bytes) -> tuple[str | None, list[InboundEvent]]:
    """Split a verified body into events. Events without a webhookEventId (never sent by
    LINE today) get one derived from their content, so dedupe still holds. An event holding
    a character no database column can store is kept with it replaced, and `problem` says so."""
    try:
        payload = json.loads(body, parse_constant=_refuse_constant, parse_float=_finite)
    except RecursionError as exc:
        raise MalformedBody(f"body is nested deeper than {MAX_DEPTH} levels") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedBody(f"body is not JSON: {exc}") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("events", []), list):
        raise MalformedBody("body must be an object with an 'events' list")
    # Nesting deeper than MAX_DEPTH needs more brackets than that: most bodies (one event,
    # a few brackets) skip the walk.
    if body.count(b"{") + body.count(b"[") > MAX_DEPTH and _nesting(payload) > MAX_DEPTH:
        raise MalformedBody(f"body is nested deeper than {MAX_DEPTH} levels")
    # Only a \u escape can put NUL or a lone surrogate into a string (raw control characters
    # and invalid UTF-8 are refused by the parser): one scan of the bytes skips the walk.
    escaped = b"\\u" in body
    destination = payload.get("destination") if isinstance(payload.get("destination"), str) else None
    events = []
    for raw in payload.get("events") or []:
        if not isinstance(raw, dict):
            raise MalformedBody("every event must be an object")
        problem = None
        if escaped:
            storable = _storable(raw)
            if storable != raw:
                raw, problem = storable, "cannot be stored: holds a NUL or an unpaired surrogate (replaced by U+FFFD)"
        events.append(_event(raw, problem))
    return destination, events


def _refuse_constant(name: str) -> Any:
    # NaN and Infinity: Python reads them, but they are not JSON and no jsonb column takes them.
    raise ValueError(f"{name} is not a JSON value")


def _finite(text: str) -> float:
    # 1e400 reads as infinity, which no jsonb column takes either.
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


def _event(raw: dict[str, Any], problem: str | None) -> InboundEvent:
    source = raw.get("source") if isinstance(raw.get("source"), dict) else {}
    delivery = raw.get("deliveryContext") if isinstance(raw.get("deliveryContext"), dict) else {}
    event_id = raw.get("webhookEventId")
    if not isinstance(event_id, str) or not event_id or len(event_id) > 64:
        canonical = json.dumps(raw, sort_keys=True, separators=(",", ":")).encode()
        event_id = "sha256:" + hashlib.sha256(canonical).hexdigest()[:57]
    user_id = source.get("userId")
    reply_token = raw.get("replyToken")
    timestamp = raw.get("timestamp")
    return InboundEvent(
        webhook_event_id=event_id,
        type=str(raw.get("type") or "unknown")[:32],
        user_id=user_id if isinstance(user_id, str) and len(user_id) <= 64 else None,
        reply_token=reply_token if isinstance(reply_token, str) and len(reply_token) <= 255 else None,
        mode=str(raw.get("mode") or "active")[:16],
        is_redelivery=bool(delivery.get("isRedelivery")),
        timestamp_ms=timestamp if isinstance(timestamp, int) and not isinstance(timestamp, bool) else None,
        raw=raw,
        problem=problem,
    )


def _nesting(value: dict[str, Any] | list[Any], depth: int = 1) -> int:
    """How deep `value` nests, counting itself as `depth`; stops past MAX_DEPTH, so the
    recursion is bounded. (Recursive: half the time of an explicit stack here.)"""
    deepest = depth
    for child in value.values() if isinstance(value, dict) else value:
        if isinstance(child, (dict, list)):
            if depth >= MAX_DEPTH:
                return depth + 1
            deepest = max(deepest, _nesting(child, depth + 1))
            if deepest > MAX_DEPTH:
                return deepest
    return deepest


def _storable(value: Any) -> Any:
    """`value` with every NUL and unpaired surrogate replaced by U+FFFD, keys too (the
    recursion is bounded: bodies deeper than MAX_DEPTH were refused)."""
    if isinstance(value, str):
        return _UNSTORABLE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_storable(key): _storable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_storable(item) for item in value]
    return value
