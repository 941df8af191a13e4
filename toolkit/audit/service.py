"""Appending to and verifying the audit hash chain."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
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
        details = _canonical_details(entry.details)
        digest = row_hash(
            id=next_id,
            occurred_at=now,
            actor=entry.actor,
            action=entry.action,
            target_type=entry.target_type,
            target_id=entry.target_id,
            details=details,
            prev_hash=prev_hash,
        )
        rows.append(
            AuditLog(
                id=next_id,
                occurred_at=now,
                actor=entry.actor,
                action=entry.action,
                target_type=entry.target_type,
                target_id=entry.target_id,
                details=details,
                prev_hash=prev_hash,
                hash=digest,
            )
        )
        prev_hash, next_id = digest, next_id + 1
    session.add_all(rows)
    session.execute(
        update(AuditHead).where(AuditHead.id == HEAD_ID).values(seq=next_id - 1, hash=prev_hash)
    )
    session.flush()
    return rows


def verify(session: Session, *, batch_size: int = 5000) -> ChainReport:
    """Recompute the chain from the first row; report the first row that does not fit."""
    expected_prev, expected_id, checked = GENESIS_HASH, 1, 0
    last_id = 0
    while True:
        # Core rows, not entities: a long chain must not fill the session's identity map.
        batch = session.execute(
            select(*AuditLog.__table__.columns)
            .where(AuditLog.id > last_id)
            .order_by(AuditLog.id)
            .limit(batch_size)
        ).all()
        if not batch:
            break
        for row in batch:
            if row.id != expected_id:
                return ChainReport(False, checked, expected_id, f"row {expected_id} is missing")
            if row.prev_hash != expected_prev:
                return ChainReport(False, checked, row.id, f"row {row.id} does not follow row {row.id - 1}")
            recomputed = row_hash(
                id=row.id,
                occurred_at=row.occurred_at,
                actor=row.actor,
                action=row.action,
                target_type=row.target_type,
                target_id=row.target_id,
                details=row.details,
                prev_hash=row.prev_hash,
            )
            if recomputed != row.hash:
                return ChainReport(False, checked, row.id, f"row {row.id} was altered")
            expected_prev, expected_id, checked = row.hash, row.id + 1, checked + 1
        last_id = batch[-1].id
    head = session.execute(select(AuditHead).where(AuditHead.id == HEAD_ID)).scalar_one()
    if head.seq != expected_id - 1 or head.hash != expected_prev:
        return ChainReport(False, checked, expected_id, f"rows after {expected_id - 1} were removed")
    return ChainReport(True, checked)


def list_entries(session: Session, *, limit: int = 50, offset: int = 0) -> tuple[list[AuditLog], int]:
    total = session.scalar(select(func.count()).select_from(AuditLog)) or 0
    rows = session.execute(
        select(AuditLog).order_by(AuditLog.id.desc()).limit(limit).offset(offset)
    ).scalars().all()
    return list(rows), total
