"""Recording many consent decisions at once (a contacts import), with the rules of
`service.record` for implicit sources, as a few set-based statements."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (BigInteger, Column, Integer, String, Text, and_, case, cast, delete,
                        exists, func, literal, or_, select, true)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from toolkit.consent.models import ConsentEvent, ConsentState, Purpose
from toolkit.consent.service import IMPLICIT_GRANT_SOURCES, OBJECTED, SOURCES, STATE_AFTER, WITHDRAWN, UnknownSource
from toolkit.db import UtcDateTime
from toolkit.kit import bulk
from toolkit.kit.errors import InvalidInput

staged_decision = bulk.staging_table(
    "consent_import_decision",
    Column("seq", Integer, primary_key=True),
    Column("ref", Integer, nullable=False),
    Column("contact_id", BigInteger, nullable=False),
    Column("purpose_id", Integer, nullable=False),
    Column("action", String(16), nullable=False),
    Column("evidence", Text, nullable=False),
    Column("event_id", BigInteger),
)
COLUMNS = ("seq", "ref", "contact_id", "purpose_id", "action", "evidence")
event = ConsentEvent.__table__
state = ConsentState.__table__
purpose = Purpose.__table__


@dataclass(frozen=True)
class Decision:
    """One decision to record; `ref` is the caller's (e.g. the file line it came from)."""

    ref: int
    contact_id: int
    purpose: str
    action: str  # grant | withdraw | object
    evidence: dict[str, Any] = field(default_factory=dict)


def record_decisions(
    session: Session, decisions: Sequence[Decision], *, source: str, actor: str, occurred_at: datetime,
) -> Counter[int]:
    """Record the decisions that change something, each as an event and the new state.

    A decision already in force is skipped, and a withdrawal is in force under an
    objection too (an old spreadsheet must not soften an objection); an implicit grant
    never overturns a refusal. At most one decision per contact and purpose. Returns how
    many were recorded per `ref`. (`service.record` writes every refusal it is given, as
    the person's own act must be; this is for files stating what holds.)"""
    if source not in SOURCES:
        raise UnknownSource(f"unknown consent source {source!r} (one of: {', '.join(SOURCES)})")
    if not decisions:
        return Counter()
    purpose_ids = dict(session.execute(select(purpose.c.code, purpose.c.id).where(purpose.c.active)).tuples().all())
    for decision in decisions:
        if decision.action not in STATE_AFTER:
            raise InvalidInput(f"unknown consent action {decision.action!r} (grant, withdraw or object)")
        if decision.purpose not in purpose_ids:
            raise InvalidInput(f"unknown purpose {decision.purpose!r}")
    staged = staged_decision.c
    bulk.fresh_staging(session, staged_decision)
    bulk.load(session, staged_decision, COLUMNS, (
        (seq, d.ref, d.contact_id, purpose_ids[d.purpose], d.action, json.dumps(d.evidence, ensure_ascii=False))
        for seq, d in enumerate(decisions, start=1)
    ))
    session.execute(delete(staged_decision).where(exists().where(
        state.c.contact_id == staged.contact_id, state.c.purpose_id == staged.purpose_id,
        _in_force(state.c.state, staged.action, implicit=source in IMPLICIT_GRANT_SOURCES),
    )))
    bulk.number_rows(session, staged_decision, key="event_id", order_by="seq",
                     pending=staged.event_id.is_(None), target=event)
    when = literal(occurred_at, UtcDateTime())
    evidence = cast(staged.evidence, JSONB) if bulk.on_postgres(session) else staged.evidence
    session.execute(event.insert().from_select(
        ["id", "contact_id", "purpose_id", "action", "source", "notice_version", "evidence", "actor", "occurred_at"],
        select(staged.event_id, staged.contact_id, staged.purpose_id, staged.action, literal(source),
               purpose.c.notice_version, evidence, literal(actor), when)
        .join(purpose, purpose.c.id == staged.purpose_id),
    ))
    insert = pg_insert if bulk.on_postgres(session) else sqlite_insert
    new_state = case(STATE_AFTER, value=staged.action)
    upsert = insert(state).from_select(
        ["contact_id", "purpose_id", "state", "notice_version", "source", "changed_at", "event_id"],
        # SQLite needs a WHERE to tell the upsert's ON from a join's.
        select(staged.contact_id, staged.purpose_id, new_state, purpose.c.notice_version, literal(source), when,
               staged.event_id).join(purpose, purpose.c.id == staged.purpose_id).where(true()),
    )
    session.execute(upsert.on_conflict_do_update(
        index_elements=["contact_id", "purpose_id"],
        set_={name: upsert.excluded[name] for name in ("state", "notice_version", "source", "changed_at", "event_id")},
    ))
    session.expire_all()  # ORM copies of these states are stale (see contacts.bulk.merge)
    return Counter(dict(session.execute(select(staged.ref, func.count()).group_by(staged.ref)).tuples().all()))


def _in_force(current: Any, action: Any, *, implicit: bool) -> Any:
    """Whether a decision changes nothing given the current state (never decided: no row)."""
    already = or_(current == case(STATE_AFTER, value=action),
                  and_(action == "withdraw", current.in_((WITHDRAWN, OBJECTED))))
    if implicit:
        return or_(already, and_(action == "grant", current != STATE_AFTER["grant"]))
    return already
