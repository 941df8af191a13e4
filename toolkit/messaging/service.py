"""The outbound pipeline's rows: enqueueing in the deciding transaction, claiming what is
due for a sender (the consent gate asked right then), recording each send, erasure.

A row's life: enqueue() writes it queued; enqueue_claimed() writes it already leased to
the caller, who sends it right after committing (the inbox's replies, an agent's message);
claim() leases what is due — queued rows, and rows whose lease ran out mid-send (the
sender died) — one row per recipient at a time, oldest first, so one person's messages
leave in the order they were decided. record() writes every outcome and tells the
deciding domain (its delivery listener, declared in its domain.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.orm import Session

from toolkit.consent import gate
from toolkit.kit.clock import utcnow
from toolkit.kit.domains import installed
from toolkit.kit.personal import blanked
from toolkit.messaging.models import OutboundMessage, OutboundState
from toolkit.messaging.schemas import Claimed, Outbound, SendOutcome, Settled

# How long a claimed row is ours. Sends leave within a second or two of a claim; a sender
# that died is replaced within this (a reply token lasts about a minute). A sender never
# sends a row whose lease ran out (sender.py), so a slow one cannot race its successor.
LEASE = timedelta(seconds=20)
MAX_ATTEMPTS = 8
CHANNEL = "line"
GATE_REFUSED = "withheld by the consent gate"
UNSENT = (OutboundState.QUEUED, OutboundState.SENDING)


def backoff(attempts: int) -> timedelta:
    """5 s, 10 s, 20 s ... capped at an hour."""
    return timedelta(seconds=min(5 * 2 ** max(attempts - 1, 0), 3600))


def _row(outbound: Outbound, now: datetime) -> dict[str, Any]:
    return {
        "source": outbound.source, "source_id": outbound.source_id, "contact_id": outbound.contact_id,
        "recipient": outbound.recipient, "purpose": outbound.purpose, "messages": list(outbound.messages),
        "reply_token": outbound.reply_token, "push_allowed": outbound.push_allowed,
        "retry_key": outbound.retry_key, "group_key": outbound.group_key, "state": OutboundState.QUEUED,
        "attempts": 0, "next_attempt_at": now, "created_at": now,
    }


def _insert(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    if not rows:
        return []
    returning = insert(OutboundMessage).returning(OutboundMessage.id, sort_by_parameter_order=True)
    return list(session.scalars(returning, rows))


def enqueue(session: Session, outbound: Sequence[Outbound], *, now: datetime | None = None) -> list[int]:
    """Queue messages for the sender loop (messaging.send_due), in the caller's
    transaction: nothing is sent unless it commits. Their ids, in order."""
    now = now or utcnow()
    return _insert(session, [_row(o, now) for o in outbound])


def enqueue_claimed(session: Session, outbound: Sequence[Outbound], *, now: datetime | None = None) -> list[Claimed]:
    """Enqueue messages the caller sends itself right after committing, leased to it. The
    consent gate is asked here, in the deciding transaction: refused ones are stored
    suppressed (their source hears of it now) and not returned."""
    now = now or utcnow()
    allowed = _allowed(session, [(o.contact_id, o.purpose) for o in outbound])
    rows: list[dict[str, Any]] = []
    refused: dict[str, list[Settled]] = defaultdict(list)
    for o, ok in zip(outbound, allowed, strict=True):
        row = _row(o, now)
        if ok:
            row.update(state=OutboundState.SENDING, attempts=1, locked_until=now + LEASE)
        else:
            row.update(state=OutboundState.SUPPRESSED, error=GATE_REFUSED, reply_token=None)
            refused[o.source].append(Settled(o.source_id, OutboundState.SUPPRESSED, GATE_REFUSED))
        rows.append(row)
    ids = _insert(session, rows)
    _tell_sources(session, refused)
    return [_claimed(id_, row) for id_, row in zip(ids, rows, strict=True) if row["state"] == OutboundState.SENDING]


def _claimed(id_: int, row: dict[str, Any]) -> Claimed:
    return Claimed(
        id=id_, source=row["source"], source_id=row["source_id"], recipient=row["recipient"],
        messages=row["messages"], reply_token=row["reply_token"], push_allowed=row["push_allowed"],
        retry_key=row["retry_key"], group_key=row["group_key"], attempts=row["attempts"],
        locked_until=row["locked_until"],
    )


def _allowed(session: Session, whom: Sequence[tuple[int | None, str]]) -> list[bool]:
    """The consent gate for each (contact, purpose), asked once per purpose."""
    by_purpose: dict[str, set[int]] = defaultdict(set)
    for contact_id, purpose in whom:
        if contact_id is not None:
            by_purpose[purpose].add(contact_id)
    passed = {purpose: gate.allowed(session, ids, purpose=purpose, channel=CHANNEL)
              for purpose, ids in by_purpose.items()}
    return [contact_id is not None and contact_id in passed[purpose] for contact_id, purpose in whom]


def claim(session: Session, *, limit: int = 500, now: datetime | None = None) -> list[Claimed]:
    """Lease up to `limit` due rows, asking the consent gate for each right now: refused
    ones end suppressed. A row due because its lease ran out was interrupted mid-send;
    its reply token is tried once more (LINE refuses a used one), its push repeated with
    the same retry key (LINE answers 409 to a repeat), so nobody gets it twice."""
    now = now or utcnow()
    due = or_(
        and_(OutboundMessage.state == OutboundState.QUEUED, OutboundMessage.next_attempt_at <= now),
        and_(OutboundMessage.state == OutboundState.SENDING, OutboundMessage.locked_until < now),
    )
    query = select(OutboundMessage).where(due).order_by(OutboundMessage.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = _in_recipient_order(session, session.scalars(query).all())
    if not rows:
        return []
    allowed = _allowed(session, [(r.contact_id, r.purpose) for r in rows])
    claimed: list[Claimed] = []
    refused: dict[str, list[Settled]] = defaultdict(list)
    for row, ok in zip(rows, allowed, strict=True):
        if not ok:
            row.state, row.error, row.reply_token, row.locked_until = (
                OutboundState.SUPPRESSED, GATE_REFUSED, None, None)
            refused[row.source].append(Settled(row.source_id, OutboundState.SUPPRESSED, GATE_REFUSED))
            continue
        row.state, row.attempts, row.locked_until = OutboundState.SENDING, row.attempts + 1, now + LEASE
        claimed.append(Claimed(
            id=row.id, source=row.source, source_id=row.source_id, recipient=row.recipient,
            messages=list(row.messages), reply_token=row.reply_token, push_allowed=row.push_allowed,
            retry_key=row.retry_key, group_key=row.group_key, attempts=row.attempts, locked_until=row.locked_until,
        ))
    session.flush()
    _tell_sources(session, refused)
    return claimed


def _in_recipient_order(session: Session, rows: Sequence[OutboundMessage]) -> list[OutboundMessage]:
    """Of the due rows, each recipient's oldest unsent one, if it is their oldest unsent row
    at all: a later message waits until the earlier one is settled (sent, refused, failed)."""
    recipients = sorted({r.recipient for r in rows})
    if not recipients:
        return []
    oldest = dict(session.execute(
        select(OutboundMessage.recipient, func.min(OutboundMessage.id))
        .where(OutboundMessage.recipient.in_(recipients), OutboundMessage.state.in_(UNSENT))
        .group_by(OutboundMessage.recipient)
    ).all())
    return [r for r in rows if oldest.get(r.recipient) == r.id]


def record(session: Session, outcomes: Iterable[SendOutcome], *, now: datetime | None = None) -> None:
    """Write how sends went, by primary key, and tell each row's source. A send LINE did
    not take goes back to the queue with backoff (failed after MAX_ATTEMPTS)."""
    outcomes = list(outcomes)
    if not outcomes:
        return
    now = now or utcnow()
    changes: list[dict[str, Any]] = []
    heard: dict[str, list[Settled]] = defaultdict(list)
    for outcome in outcomes:
        row = outcome.row
        change: dict[str, Any] = {"id": row.id, "locked_until": None, "error": outcome.error}
        state = outcome.state
        if state is None and row.attempts >= MAX_ATTEMPTS:
            state, change["error"] = OutboundState.FAILED, f"gave up after {row.attempts} attempts: {outcome.error}"
        if state is None:
            change.update(state=OutboundState.QUEUED, next_attempt_at=now + backoff(row.attempts))
            if outcome.reply_token_spent:
                change["reply_token"] = None
        else:
            change.update(state=state, reply_token=None, sent_at=now if state.delivered else None)
        if outcome.request_id:
            change["line_request_id"] = outcome.request_id
        changes.append(change)
        push_next = change["state"] == OutboundState.QUEUED and (outcome.reply_token_spent or not row.reply_token)
        heard[row.source].append(Settled(row.source_id, change["state"], change["error"], push_next))
    changes.sort(key=lambda c: tuple(c))  # the same columns side by side: one executemany each
    if changes:
        session.execute(update(OutboundMessage), changes)
    _tell_sources(session, heard)


def _tell_sources(session: Session, heard: dict[str, list[Settled]]) -> None:
    listeners = installed().delivery_listeners
    for source, settled in heard.items():
        listener = listeners.get(source)
        if listener is not None and settled:
            listener(session, settled)


def of_source(session: Session, source: str, source_id: int) -> list[OutboundMessage]:
    return list(session.scalars(
        select(OutboundMessage).where(OutboundMessage.source == source, OutboundMessage.source_id == source_id)
        .order_by(OutboundMessage.id)
    ))


def count_by_state(session: Session) -> dict[str, int]:
    counts = dict(session.execute(
        select(OutboundMessage.state, func.count()).group_by(OutboundMessage.state)).all())
    return {str(state): int(counts.get(state, 0)) for state in OutboundState}


def erase_contact(session: Session, contact_id: int) -> None:
    """Erasure: nothing unsent goes out any more, and no row keeps what was said or to whom."""
    mine = OutboundMessage.contact_id == contact_id
    session.execute(update(OutboundMessage).where(mine, OutboundMessage.state.in_(UNSENT))
                    .values(state=OutboundState.SUPPRESSED, locked_until=None, error="contact erased"))
    # Every personal column the registry names, the list of messages as an empty list.
    session.execute(update(OutboundMessage).where(mine).values(
        blanked(OutboundMessage.__table__, messages=[], recipient="erased", reply_token=None)))
