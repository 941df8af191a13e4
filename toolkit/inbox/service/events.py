"""The inbox's rows: storing events on arrival, claiming them for a worker, how an event
ends (done, retried with backoff, dead letter), staff's view of them, retention, erasure."""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Connection, Insert, and_, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from toolkit.audit import service as audit
from toolkit.contacts.models import ContactIdentity
from toolkit.inbox.models import REFUSED, WebhookEvent
from toolkit.kit.clock import utcnow
from toolkit.kit.errors import Conflict, InvalidInput, NotFound
from toolkit.kit.personal import blanked
from toolkit.line.webhook import InboundEvent
from toolkit.settings import get_settings


class ChannelConfigError(InvalidInput):
    code = "channel_config_invalid"


class EventNotFound(NotFound):
    code = "webhook_event_not_found"


class EventNotDead(Conflict):
    code = "webhook_event_not_dead"


PENDING, PROCESSING, DONE, IGNORED, DEAD = "pending", "processing", "done", "ignored", "dead"
STATUSES = (PENDING, PROCESSING, DONE, IGNORED, DEAD)
MAX_ATTEMPTS = 8
# How long a claimed event is its worker's. Short, so that another worker (or the restarted
# one) takes over a dead worker's events while their reply tokens (about a minute) are
# still good; a live worker renews it while it handles the batch (renew, inbox.jobs).
LEASE = timedelta(seconds=30)
HANDLED_TYPES = ("follow", "unfollow", "message", "postback")


def backoff(attempts: int) -> timedelta:
    """5 s, 10 s, 20 s ... capped at an hour."""
    return timedelta(seconds=min(5 * 2 ** max(attempts - 1, 0), 3600))


# --- arrival (the hot path: Core only, no ORM, no session) ---------------------------------

def dedupe_window() -> timedelta:
    """How long an event's id is remembered: handled events are purged after this, so an
    event older than it could be a captured body replayed after its row went."""
    return timedelta(days=get_settings().webhook_retention_days)


def refusal(event: InboundEvent, *, oldest_ms: int) -> str | None:
    """Why an arriving event is kept as refused and never handled, else None."""
    if event.problem:
        return event.problem
    if event.timestamp_ms is not None and event.timestamp_ms < oldest_ms:
        return "refused: timestamp older than the dedupe window (a replay of a purged event?)"
    return None


def event_rows(events: Sequence[InboundEvent], received_at: datetime) -> list[dict[str, Any]]:
    oldest_ms = int((received_at - dedupe_window()).timestamp() * 1000)
    rows = []
    for e in events:
        refused = refusal(e, oldest_ms=oldest_ms)
        rows.append({
            "webhook_event_id": e.webhook_event_id, "event_type": e.type, "user_id": e.user_id,
            "reply_token": e.reply_token, "mode": e.mode, "is_redelivery": e.is_redelivery,
            "body": e.raw, "received_at": received_at, "status": REFUSED if refused else PENDING, "attempts": 0,
            "next_attempt_at": received_at, "last_error": refused,
        })
    return rows


def insert_statement(dialect: str, rows: list[dict[str, Any]]) -> Insert:
    """INSERT ... ON CONFLICT DO NOTHING: a redelivered or replayed event is dropped here."""
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    return insert(WebhookEvent.__table__).values(rows).on_conflict_do_nothing(index_elements=["webhook_event_id"])


def store_events(connection: Connection, events: Sequence[InboundEvent]) -> None:
    if events:
        connection.execute(insert_statement(connection.dialect.name, event_rows(events, utcnow())))


# --- claiming ---------------------------------------------------------------------------

def claim(session: Session, *, limit: int = 20, now: datetime | None = None) -> list[int]:
    """Lease up to `limit` due events to this worker. On PostgreSQL concurrent workers skip
    each other's rows (SKIP LOCKED); an expired lease (a killed worker) is claimable again."""
    now = now or utcnow()
    due = or_(
        and_(WebhookEvent.status == PENDING, WebhookEvent.next_attempt_at <= now),
        and_(WebhookEvent.status == PROCESSING, WebhookEvent.locked_until < now),
    )
    candidates = select(WebhookEvent.id).where(due).order_by(WebhookEvent.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    ids = list(session.scalars(candidates))
    if ids:
        session.execute(
            update(WebhookEvent)
            .where(WebhookEvent.id.in_(ids))
            .values(status=PROCESSING, locked_until=now + LEASE, attempts=WebhookEvent.attempts + 1)
        )
    return ids


def renew(session: Session, ids: Sequence[int], *, now: datetime | None = None) -> int:
    """Extend the lease of events this worker still has claimed; how many it still has."""
    if not ids:
        return 0
    now = now or utcnow()
    result = session.execute(
        update(WebhookEvent).where(WebhookEvent.id.in_(list(ids)), WebhookEvent.status == PROCESSING)
        .values(locked_until=now + LEASE)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class ClaimedEvent:
    id: int
    event_type: str
    user_id: str | None
    handled: bool


def claimed_events(session: Session, ids: list[int]) -> list[ClaimedEvent]:
    """What the worker needs to know of a claimed batch before handling it, in one query."""
    if not ids:
        return []
    rows = session.execute(
        select(WebhookEvent.id, WebhookEvent.event_type, WebhookEvent.user_id, WebhookEvent.handled_at)
        .where(WebhookEvent.id.in_(ids))
        .order_by(WebhookEvent.id)
    ).all()
    return [ClaimedEvent(r.id, r.event_type, r.user_id, r.handled_at is not None) for r in rows]


def get(session: Session, event_id: int) -> WebhookEvent | None:
    return session.get(WebhookEvent, event_id)


# --- how an event ends --------------------------------------------------------------------

class EventState(Protocol):
    """The columns an event's end changes: a WebhookEvent, or a draft of its new values
    that a batch writes in one statement (handling.py)."""

    status: str
    attempts: int
    next_attempt_at: datetime
    locked_until: datetime | None
    last_error: str | None


def finish_state(event: EventState) -> None:
    event.status = IGNORED if event.status == IGNORED else DONE
    event.locked_until = None


def retry_state(event: EventState, error: str, now: datetime) -> None:
    """Back to pending with backoff, or into the dead-letter state after the last attempt."""
    event.last_error = error[-2000:]
    event.locked_until = None
    if event.attempts >= MAX_ATTEMPTS:
        event.status = DEAD
    else:
        event.status = PENDING
        event.next_attempt_at = now + backoff(event.attempts)


def describe(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(exc)).strip()


def set_delivery(session: Session, *, event_id: int, delivery: str, error: str | None = None) -> None:
    session.execute(update(WebhookEvent).where(WebhookEvent.id == event_id).values(delivery=delivery, last_error=error))


def finish(session: Session, *, event_id: int) -> None:
    event = session.get(WebhookEvent, event_id)
    if event is not None:
        finish_state(event)


def fail(session: Session, *, event_id: int, error: str, now: datetime | None = None) -> WebhookEvent | None:
    """Schedule a retry with backoff, or give up into the dead-letter state."""
    event = session.get(WebhookEvent, event_id)
    if event is None:
        return None
    retry_state(event, error, now or utcnow())
    session.flush()
    return event


def retry_dead(session: Session, *, event_id: int, actor: str) -> WebhookEvent:
    event = session.get(WebhookEvent, event_id)
    if event is None:
        raise EventNotFound(f"no webhook event {event_id}")
    if event.status != DEAD:
        raise EventNotDead(f"event {event_id} is {event.status}, not dead")
    event.status, event.attempts, event.next_attempt_at = PENDING, 0, utcnow()
    audit.record(session, actor=actor, action="inbox.retry", target_type="webhook_event", target_id=event_id)
    session.flush()
    return event


# --- reading and retention ----------------------------------------------------------------

def list_events(
    session: Session, *, status: str | None = None, limit: int = 50, offset: int = 0
) -> tuple[list[WebhookEvent], int]:
    stmt = select(WebhookEvent)
    if status:
        stmt = stmt.where(WebhookEvent.status == status)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(stmt.order_by(WebhookEvent.id.desc()).limit(limit).offset(offset)).all()
    return list(rows), total


def count_by_status(session: Session) -> dict[str, int]:
    rows = session.execute(select(WebhookEvent.status, func.count()).group_by(WebhookEvent.status)).all()
    return {status: count for status, count in rows}



@dataclass(frozen=True)
class EventPage:
    """One page of the inbox for staff, with how many events are in each status."""

    events: list[WebhookEvent]
    total: int
    counts: dict[str, int]


def event_page(session: Session, *, status: str | None = None, limit: int = 50, offset: int = 0) -> EventPage:
    events, total = list_events(session, status=status, limit=limit, offset=offset)
    counts = count_by_status(session)
    return EventPage(events, total, {s: counts.get(s, 0) for s in STATUSES} | counts)


def events_for_user(session: Session, *, user_id: str, limit: int = 100) -> list[WebhookEvent]:
    """The newest `limit` events from one LINE user, oldest first."""
    stmt = select(WebhookEvent).where(WebhookEvent.user_id == user_id).order_by(WebhookEvent.id.desc()).limit(limit)
    return list(reversed(session.scalars(stmt).all()))


def recent_users(session: Session, *, limit: int = 20) -> list[str]:
    """LINE user ids that sent us something lately, most recent first."""
    latest = func.max(WebhookEvent.id)
    stmt = (select(WebhookEvent.user_id).where(WebhookEvent.user_id.is_not(None))
            .group_by(WebhookEvent.user_id).order_by(latest.desc()).limit(limit))
    return [user_id for user_id in session.scalars(stmt) if user_id]


def purge_handled(session: Session, *, older_than_days: int, now: datetime | None = None) -> int:
    """Handled events are kept for inspection for a while, then deleted. Dead letters stay
    until someone retries or they age out too, and so do events refused on arrival."""
    cutoff = (now or utcnow()) - timedelta(days=older_than_days)
    ended = (DONE, IGNORED, DEAD, REFUSED)
    result = session.execute(
        delete(WebhookEvent).where(WebhookEvent.status.in_(ended), WebhookEvent.received_at < cutoff)
    )
    return result.rowcount or 0


# --- erasure ----------------------------------------------------------------------------

ERASED = "contact erased"
LINE_CHANNEL = "line"


def erase_contact(session: Session, contact_id: int) -> None:
    """Erasure step: the person's webhook events keep their place in the inbox (type, times,
    status, LINE's event id) but not who sent them, what they said or what we answered.
    Runs while the contact still has its identities, which is how their events are found.
    An event not handled yet never will be: a dead letter would otherwise be retried."""
    line_ids = select(ContactIdentity.external_id).where(
        ContactIdentity.contact_id == contact_id, ContactIdentity.channel == LINE_CHANNEL)
    theirs = WebhookEvent.user_id.in_(line_ids.scalar_subquery())
    session.execute(update(WebhookEvent).where(theirs, WebhookEvent.status.in_((PENDING, DEAD)))
                    .values(status=IGNORED, outcome=ERASED, locked_until=None))
    session.execute(update(WebhookEvent).where(theirs).values(blanked(WebhookEvent.__table__, reply_token=None)))
