"""Handling events in the worker: what each one does to our data (handlers.py), the reply
it plans, and a claimed batch handled in one transaction with a SAVEPOINT per event.

A reply is an outbound message (the messaging domain) enqueued in the batch's transaction,
leased to the worker, which sends it right after the commit; the event is done then, and
its `delivery` follows the message's state (record_deliveries, a delivery listener)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
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
    HANDLED_TYPES, IGNORED, ChannelConfigError, EventNotFound, describe, fail, finish_state,
)
from toolkit.kit.clock import utcnow
from toolkit.kit.config_files import load_yaml_model
from toolkit.kit.memo import memo_scope
from toolkit.line import client as line
from toolkit.messaging import service as messaging
from toolkit.messaging.models import OutboundState
from toolkit.messaging.schemas import Claimed, Outbound, Settled

log = logging.getLogger(__name__)

# The outbound messages the inbox enqueues (messaging.schemas.Outbound.source).
REPLY_SOURCE = "inbox.reply"
# Where a reply stands (webhook_event.delivery): reply_pending from the commit that planned
# it until its outbound message is sent; then the message's end state.
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
) -> list[Claimed]:
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
    whom = _withhold_ungated(session, handled)
    rows: list[dict[str, Any]] = []
    replies: list[Outbound] = []
    for draft, event, _ in handled:
        reply = _plan_reply(event, draft, contact_id=whom.get(event.id), can_send=can_send)
        if reply is not None:
            replies.append(reply)
        changed = {name: getattr(draft, name) for name in SETTLED if getattr(draft, name) != getattr(event, name)}
        if changed:
            rows.append({"id": event.id, **changed})
    rows.sort(key=lambda row: tuple(row))  # the same columns side by side: one executemany each
    if rows:
        session.execute(update(WebhookEvent), rows)  # by primary key
    if not can_send:
        messaging.enqueue(session, replies, now=now)
        return []
    return messaging.enqueue_claimed(session, replies, now=now)


def _withhold_ungated(session: Session, handled: Sequence[tuple[Any, WebhookEvent, int | None]]) -> dict[int, int]:
    """The consent gate before any reply, asked once for a batch (after all its events, so
    an objection anywhere in it counts): a reply to a contact that service.chat does not
    reach (objected, blocked, suppressed, erased, unknown) is withheld. Returns the contact
    each allowed reply goes to, by event id (the outbound message asks the gate again
    whenever it is retried: the person may have objected since)."""
    due = [(target, event, contact_id) for target, event, contact_id in handled
           if target.replies and target.delivery not in FINAL_DELIVERY and target.delivery != REPLY_PENDING]
    if not due:
        return {}
    whom: list[int | None] = []
    for _target, event, contact_id in due:
        if contact_id is None and event.user_id:  # a retry, or a handler that did not say
            contact = contacts.get_by_external_id(session, event.user_id)
            contact_id = contact.id if contact is not None else None
        whom.append(contact_id)
    known = sorted({c for c in whom if c is not None})
    allowed = consent.allowed(session, known, purpose=handlers.SERVICE_PURPOSE, channel="line") if known else set()
    reaches: dict[int, int] = {}
    for (target, event, _), contact_id in zip(due, whom, strict=True):
        if contact_id in allowed:
            reaches[event.id] = contact_id
            continue
        target.outcome = ((target.outcome or "") + "; reply withheld by the consent gate")[:200]
        if target.delivery is None:
            target.replies = None
        else:  # a planned push: keep what was planned, never send it
            target.delivery = SUPPRESSED
    return reaches


def _plan_reply(event: WebhookEvent, draft: Any, *, contact_id: int | None, can_send: bool) -> Outbound | None:
    """Finish the draft; its reply, if one is to be sent, as an outbound message."""
    finish_state(draft)
    if not draft.replies or draft.delivery in FINAL_DELIVERY:
        return None
    if draft.delivery == REPLY_PENDING:
        # Left by a worker from before the outbound pipeline, stopped after marking the
        # reply: LINE may have it. Never twice.
        draft.delivery, draft.last_error = line.UNKNOWN, "worker stopped mid-reply; not resent"
        return None
    # push_pending: an attempt from before the pipeline whose reply failed; its push keeps
    # the retry key it had, so LINE answers 409 if that push got through after all.
    push_due = draft.delivery == line.PUSH_PENDING
    draft.delivery = line.PUSH_PENDING if push_due else REPLY_PENDING
    if not can_send:
        draft.last_error = NO_CHANNEL
    purpose = draft.replies.get("purpose") or handlers.SERVICE_PURPOSE
    return Outbound(
        source=REPLY_SOURCE, source_id=event.id, contact_id=contact_id, recipient=event.user_id or "",
        purpose=purpose, messages=list(draft.replies["messages"]),
        retry_key=line.retry_key("reply-push", event.webhook_event_id),
        reply_token=None if push_due else event.reply_token,
        push_allowed=purpose == handlers.SERVICE_PURPOSE and event.user_id is not None,
    )


def record_deliveries(session: Session, settled: Sequence[Settled]) -> None:
    """The inbox's delivery listener: each reply's outbound state onto its event."""
    rows = []
    for one in settled:
        if one.state == OutboundState.QUEUED:  # LINE did not take it yet: the sender retries
            delivery = line.PUSH_PENDING if one.push_next else REPLY_PENDING
        elif one.state == OutboundState.SENDING:
            delivery = REPLY_PENDING
        else:
            delivery = str(one.state)
        rows.append({"id": one.source_id, "delivery": delivery, "last_error": one.error})
    if rows:
        session.execute(update(WebhookEvent), rows)
