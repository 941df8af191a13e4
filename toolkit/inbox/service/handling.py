"""Handling events in the worker: what each one does to our data (handlers.py), the reply
it plans, and a claimed batch handled in one transaction with a SAVEPOINT per event."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from toolkit.consent import service as consent
from toolkit.contacts import service as contacts
from toolkit.inbox import handlers
from toolkit.inbox.handlers import Outcome
from toolkit.inbox.models import WebhookEvent
from toolkit.inbox.schemas import ChannelConfig
from toolkit.inbox.service.events import (
    HANDLED_TYPES, IGNORED, ChannelConfigError, EventNotFound, describe, fail, finish_state, retry_state,
)
from toolkit.kit.clock import utcnow
from toolkit.kit.config_files import load_yaml_model
from toolkit.kit.memo import memo_scope
from toolkit.line import client as line

log = logging.getLogger(__name__)

# Where a reply stands (webhook_event.delivery). reply_pending is committed before the reply
# goes out, so that a worker stopped mid-send never sends it again.
REPLY_PENDING = "reply_pending"
SUPPRESSED = "suppressed"
FINAL_DELIVERY = frozenset({line.REPLY_SENT, line.PUSH_SENT, line.UNKNOWN, line.FAILED, SUPPRESSED})
NO_CHANNEL = "no LINE access token configured; cannot answer"


# --- the channel's configuration ---------------------------------------------------------

# path -> (mtime_ns, config). Parsing and validating the YAML costs far more than a stat.
def load_channel_config(path: Path) -> ChannelConfig:
    """The channel's configuration, read again only when the file changed (its mtime), so
    that the worker can ask for it every batch and still pick up an edit without a restart."""
    return load_yaml_model(path, ChannelConfig, error=ChannelConfigError)


# --- one event ----------------------------------------------------------------------------

def handle(session: Session, *, event_id: int, config: ChannelConfig, profile: dict[str, Any] | None = None) -> WebhookEvent:
    """Apply the event to our data once and plan the reply (sent later, after commit)."""
    event = session.get(WebhookEvent, event_id)
    if event is None:
        raise EventNotFound(f"no webhook event {event_id}")
    if event.handled_at is None:
        outcome = _dispatch(session, event, config, profile or {})
        _record_outcome(event, event, outcome)
        _withhold_ungated(session, [(event, event, outcome.contact_id)])
    session.flush()
    return event


def _record_outcome(target: Any, event: WebhookEvent, outcome: Outcome) -> None:
    """Write what handling decided onto `target`: the event itself, or a batch's draft of it."""
    target.outcome = outcome.note[:200]
    target.handled_at = utcnow()
    if outcome.messages and event.mode != "standby":
        target.replies = {"purpose": handlers.SERVICE_PURPOSE, "messages": outcome.messages}
    elif outcome.messages:
        target.delivery = SUPPRESSED
        target.outcome = (outcome.note + "; standby: not answered")[:200]
    if event.event_type not in HANDLED_TYPES:
        target.status = IGNORED


def _dispatch(session: Session, event: WebhookEvent, config: ChannelConfig, profile: dict[str, Any]) -> Outcome:
    if event.user_id is None:
        return Outcome(f"{event.event_type} without a user: nothing to do")
    if event.event_type == "follow":
        return handlers.on_follow(session, event, config, profile)
    if event.event_type == "unfollow":
        return handlers.on_unfollow(session, event, config)
    if event.event_type == "message":
        message = event.body.get("message") if isinstance(event.body.get("message"), dict) else {}
        if message.get("type") == "text" and isinstance(message.get("text"), str):
            return handlers.on_text(session, event, config, message["text"])
        return Outcome(f"{message.get('type', 'unknown')} message: not handled")
    if event.event_type == "postback":
        postback = event.body.get("postback") if isinstance(event.body.get("postback"), dict) else {}
        return handlers.on_postback(session, event, str(postback.get("data", ""))[:300])
    return Outcome(f"{event.event_type}: not handled")


# --- a claimed batch ----------------------------------------------------------------------

@dataclass(frozen=True)
class Reply:
    """A reply planned (and marked) in a batch's transaction, to be sent after its commit."""

    event_id: int
    webhook_event_id: str
    user_id: str | None
    reply_token: str | None
    messages: list[dict[str, Any]]
    push_allowed: bool  # push fallback: service.chat answers only
    push_due: bool  # an earlier attempt's reply failed and its push (same retry key) is due


@dataclass(frozen=True)
class Sent:
    """How sending one reply went."""

    delivery: str | None  # the new delivery state; None: leave it as it is
    error: str | None = None
    retry_later: bool = False  # LINE did not take it yet: try the event again with backoff


# The event columns a batch may set. Only those that changed are written (a None written to
# the JSON column would store JSON null, not SQL NULL); rows changing the same columns go
# out together as one executemany.
SETTLED = ("outcome", "handled_at", "replies", "delivery", "status", "locked_until", "last_error", "next_attempt_at")


def handle_batch(
    session: Session, *, event_ids: Sequence[int], config: ChannelConfig,
    profiles: Mapping[int, dict[str, Any]] | None = None, can_send: bool = True, now: datetime | None = None,
) -> list[Reply]:
    """Handle claimed events in the caller's transaction, each in a SAVEPOINT of its own.

    An event whose handler raises rolls back its savepoint only and is scheduled for a retry
    (or dead-lettered); the others stand. An event with nothing to send is finished here;
    one with a reply is marked reply_pending (the caller commits, then sends) and returned,
    oldest first. `can_send` False (no channel): the handling stands, the reply waits for a
    later attempt.
    """
    ids = sorted(set(event_ids))
    events = session.scalars(select(WebhookEvent).where(WebhookEvent.id.in_(ids)).order_by(WebhookEvent.id)).all()
    # The batch vouches that its handlers change no purpose, FAQ entry or decision, and
    # forget a user whose identity or consent an event may change (handlers.KnownUsers).
    with memo_scope(session):
        handlers.look_up_users(session, (e.user_id for e in events if e.handled_at is None))
        return _handle_events(session, events, config=config, profiles=profiles or {}, can_send=can_send,
                              now=now or utcnow())


def _handle_events(
    session: Session, events: Sequence[WebhookEvent], *, config: ChannelConfig,
    profiles: Mapping[int, dict[str, Any]], can_send: bool, now: datetime,
) -> list[Reply]:
    handled: list[tuple[Any, WebhookEvent, int | None]] = []
    for event in events:
        # The event's new values go into a draft, not the row: the savepoint then holds only
        # the handler's own statements, and all rows are written at the end in one go.
        draft = SimpleNamespace(attempts=event.attempts, **{name: getattr(event, name) for name in SETTLED})
        contact_id = None
        try:
            with session.begin_nested():
                if event.handled_at is None:  # else an earlier attempt did; only its reply may be due
                    outcome = _dispatch(session, event, config, profiles.get(event.id, {}))
                    _record_outcome(draft, event, outcome)
                    contact_id = outcome.contact_id
        except Exception as exc:  # noqa: BLE001 - one bad event must not sink its batch
            log.warning("webhook event %s failed: %s", event.id, exc)
            fail(session, event_id=event.id, error=describe(exc), now=now)
            continue
        handled.append((draft, event, contact_id))
    _withhold_ungated(session, handled)
    rows: list[dict[str, Any]] = []
    replies: list[Reply] = []
    for draft, event, _ in handled:
        reply = _plan_reply(event, draft, can_send=can_send, now=now)
        if reply is not None:
            replies.append(reply)
        changed = {name: getattr(draft, name) for name in SETTLED if getattr(draft, name) != getattr(event, name)}
        if changed:
            rows.append({"id": event.id, **changed})
    rows.sort(key=lambda row: tuple(row))  # the same columns side by side: one executemany each
    if rows:
        session.execute(update(WebhookEvent), rows)  # by primary key
    return replies


def _withhold_ungated(session: Session, handled: Sequence[tuple[Any, WebhookEvent, int | None]]) -> None:
    """The consent gate before any reply, asked once for a batch (after all its events, so
    an objection anywhere in it counts): a reply to a contact that service.chat does not
    reach (objected, blocked, suppressed, erased, unknown) is withheld. Retries of a push
    are asked again: the person may have objected since."""
    due = [(target, event, contact_id) for target, event, contact_id in handled
           if target.replies and target.delivery not in FINAL_DELIVERY and target.delivery != REPLY_PENDING]
    if not due:
        return
    whom: list[int | None] = []
    for _target, event, contact_id in due:
        if contact_id is None and event.user_id:  # a retry, or a handler that did not say
            contact = contacts.get_by_external_id(session, event.user_id)
            contact_id = contact.id if contact is not None else None
        whom.append(contact_id)
    known = sorted({c for c in whom if c is not None})
    allowed = consent.allowed(session, known, purpose=handlers.SERVICE_PURPOSE, channel="line") if known else set()
    for (target, _event, _), contact_id in zip(due, whom, strict=True):
        if contact_id in allowed:
            continue
        target.outcome = ((target.outcome or "") + "; reply withheld by the consent gate")[:200]
        if target.delivery is None:
            target.replies = None
        else:  # a planned push: keep what was planned, never send it
            target.delivery = SUPPRESSED


def _plan_reply(event: WebhookEvent, draft: Any, *, can_send: bool, now: datetime) -> Reply | None:
    """Finish the draft if nothing is to be sent; else mark it and return its reply."""
    if not draft.replies or draft.delivery in FINAL_DELIVERY:
        finish_state(draft)
        return None
    if draft.delivery == REPLY_PENDING:
        # An earlier attempt stopped after marking the reply: LINE may have it. Never twice.
        draft.delivery, draft.last_error = line.UNKNOWN, "worker stopped mid-reply; not resent"
        finish_state(draft)
        return None
    if not can_send:
        retry_state(draft, NO_CHANNEL, now)
        return None
    push_due = draft.delivery == line.PUSH_PENDING
    if not push_due:
        draft.delivery = REPLY_PENDING
    return Reply(
        event_id=event.id, webhook_event_id=event.webhook_event_id, user_id=event.user_id,
        reply_token=event.reply_token, messages=list(draft.replies["messages"]),
        push_allowed=draft.replies.get("purpose") == handlers.SERVICE_PURPOSE and event.user_id is not None,
        push_due=push_due,
    )


def record_sends(session: Session, *, sent: Mapping[int, Sent], now: datetime | None = None) -> None:
    """After a batch's sends: each event's delivery, and its end (done, or a retry)."""
    if not sent:
        return
    now = now or utcnow()
    for event in session.scalars(select(WebhookEvent).where(WebhookEvent.id.in_(sorted(sent)))):
        result = sent[event.id]
        if result.delivery is not None:
            event.delivery, event.last_error = result.delivery, result.error
        if result.retry_later:
            retry_state(event, result.error or "LINE did not take the message", now)
        else:
            finish_state(event)
    session.flush()
