"""Appending to and verifying the audit hash chain."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, func, select, update
from sqlalchemy.orm import Session

from toolkit.audit.models import AuditHead, AuditLog
from toolkit.kit.clock import utcnow

GENESIS_HASH = "0" * 64
HEAD_ID = 1


@dataclass(frozen=True)
class AuditEntry:
    actor: str
    action: str
    target_type: str | None = None
    target_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    rows_checked: int
    first_bad_id: int | None = None
    problem: str | None = None


def _canonical_details(details: dict[str, Any]) -> dict[str, Any]:
    # Round-trip through JSON so what we hash is exactly what the JSON column gives back.
    return json.loads(json.dumps(details, default=str, ensure_ascii=False))


def row_hash(
    *,
    id: int,
    occurred_at: datetime,
    actor: str,
    action: str,
    target_type: str | None,
    target_id: str | None,
    details: dict[str, Any],
    prev_hash: str,
) -> str:
    payload = {
        "id": id,
        "occurred_at": occurred_at.isoformat(timespec="microseconds"),
        "actor": actor,
        "action": action,
        "target_type": target_type,
        "target_id": target_id,
        "details": details,
        "prev_hash": prev_hash,
    }
    encoded = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


HASHED_COLUMNS = ("id", "occurred_at", "actor", "action", "target_type", "target_id", "details", "prev_hash")


def hash_of(row: Any) -> str:
    """The hash an audit row (entity or Core row) must carry: over every other column."""
    return row_hash(**{name: getattr(row, name) for name in HASHED_COLUMNS})


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    target_type: str | None = None,
    target_id: str | int | None = None,
    details: dict[str, Any] | None = None,
) -> AuditLog:
    entry = AuditEntry(
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=None if target_id is None else str(target_id),
        details=details or {},
    )
    return record_many(session, [entry])[0]


def record_many(session: Session, entries: Sequence[AuditEntry]) -> list[AuditLog]:
    """Append entries to the chain. Locks the head row until the caller's commit, which
    orders concurrent appenders on PostgreSQL and SQLite alike."""
    if not entries:
        return []
    head = session.execute(
        select(AuditHead).where(AuditHead.id == HEAD_ID).with_for_update()
    ).scalar_one()
    prev_hash, next_id = head.hash, head.seq + 1
    now = utcnow()
    rows: list[AuditLog] = []
    for entry in entries:
        row = AuditLog(
            id=next_id,
            occurred_at=now,
            actor=entry.actor,
            action=entry.action,
            target_type=entry.target_type,
            target_id=entry.target_id,
            details=_canonical_details(entry.details),
            prev_hash=prev_hash,
        )
        row.hash = hash_of(row)
        rows.append(row)
        prev_hash, next_id = row.hash, next_id + 1
    session.add_all(rows)
    session.execute(
        update(AuditHead).where(AuditHead.id == HEAD_ID).values(seq=next_id - 1, hash=prev_hash)
    )
    session.flush()
    return rows


def _chain_rows(session: Session, *where: ColumnElement[bool], limit: int | None = None) -> Sequence[Row[Any]]:
    # Core rows, not entities: a long chain must not fill the session's identity map.
    return session.execute(
        select(*AuditLog.__table__.columns).where(*where).order_by(AuditLog.id).limit(limit)
    ).all()


def _readable_rows(session: Session, *, after: int, limit: int) -> tuple[Sequence[Row[Any]], Any]:
    """The next rows of the chain and, if one of them holds values that cannot even be
    read back (raw SQL can write text that is not JSON or not a date into SQLite), the
    rows before it and its id."""
    try:
        return _chain_rows(session, AuditLog.id > after, limit=limit), None
    except (ValueError, TypeError):  # json.JSONDecodeError is a ValueError
        pass
    rows: list[Row[Any]] = []
    ids = session.scalars(select(AuditLog.id).where(AuditLog.id > after).order_by(AuditLog.id).limit(limit))
    for row_id in ids.all():
        try:
            rows.extend(_chain_rows(session, AuditLog.id == row_id))
        except (ValueError, TypeError):
            return rows, row_id
    return rows, None


def verify(session: Session, *, batch_size: int = 5000) -> ChainReport:
    """Recompute the chain from the first row; report the first row that does not fit."""
    expected_prev, expected_id, checked = GENESIS_HASH, 1, 0
    last_id = 0
    while True:
        batch, unreadable = _readable_rows(session, after=last_id, limit=batch_size)
        for row in batch:
            if row.id != expected_id:
                return ChainReport(False, checked, expected_id, f"row {expected_id} is missing")
            if row.prev_hash != expected_prev:
                return ChainReport(False, checked, row.id, f"row {row.id} does not follow row {row.id - 1}")
            recomputed = hash_of(row)
            if recomputed != row.hash:
                return ChainReport(False, checked, row.id, f"row {row.id} was altered")
            expected_prev, expected_id, checked = row.hash, row.id + 1, checked + 1
        if unreadable is not None:
            if unreadable != expected_id:
                return ChainReport(False, checked, expected_id, f"row {expected_id} is missing")
            return ChainReport(False, checked, unreadable, f"row {unreadable} was altered (unreadable values)")
        if not batch:
            break
        last_id = batch[-1].id
    return _check_head(session, last_id=expected_id - 1, last_hash=expected_prev, checked=checked)


def _check_head(session: Session, *, last_id: int, last_hash: str, checked: int) -> ChainReport:
    """The head row records the tip; a chain that ends early lost its last rows."""
    head = session.execute(select(AuditHead).where(AuditHead.id == HEAD_ID)).scalar_one_or_none()
    if head is None:
        return ChainReport(False, checked, None, "the chain head (audit_head) is missing")
    if head.seq > last_id:
        return ChainReport(False, checked, last_id + 1, f"rows after {last_id} were removed")
    if head.seq < last_id:
        return ChainReport(False, checked, head.seq + 1, f"rows after {head.seq} were added outside the chain")
    if head.hash != last_hash:
        bad = last_id or None
        return ChainReport(False, checked, bad, f"row {last_id} does not match the chain head")
    return ChainReport(True, checked)


def list_entries(session: Session, *, limit: int = 50, offset: int = 0) -> tuple[list[AuditLog], int]:
    total = session.scalar(select(func.count()).select_from(AuditLog)) or 0
    rows = session.execute(
        select(AuditLog).order_by(AuditLog.id.desc()).limit(limit).offset(offset)
    ).scalars().all()
    return list(rows), total
