"""The database-backed sandbox store: what several `toolkit serve` processes share.

Agreement between processes comes from single statements, not locks held across calls:
- a rate counter is one upsert per request, `INSERT … ON CONFLICT (name, bucket) DO
  UPDATE SET count = count + 1 RETURNING count`, on a row per endpoint per fixed window;
- a retry key is claimed by `INSERT … ON CONFLICT DO UPDATE … WHERE accepted_at < 24 h
  ago RETURNING`: exactly one of several racing requests gets a row back;
- a reply token is used up by `DELETE … WHERE token = … AND expires_at > now RETURNING`;
- the monthly quota is reserved by a conditional upsert that only adds when it still fits.
`accept` runs its steps in one transaction, so a refusal anywhere leaves nothing behind.
PostgreSQL and SQLite (3.35+) both have ON CONFLICT and RETURNING.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from toolkit.line.sandbox.models import (
    SANDBOX_TABLES,
    SandboxCounter,
    SandboxMessage,
    SandboxReplyToken,
    SandboxRetryKey,
    SandboxSetting,
)
from toolkit.line.sandbox.store import QUOTA_COUNTER, AcceptResult, Admission, Delivery, Outcome

_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


class _Refused(Exception):
    """Rolls back accept's transaction and carries the outcome out of it."""

    def __init__(self, result: AcceptResult) -> None:
        self.result = result


class DbStore:
    def __init__(self, engine: Engine) -> None:
        if engine.dialect.name not in _INSERTS:
            raise ValueError(f"the LINE sandbox needs PostgreSQL or SQLite, not {engine.dialect.name}")
        self.engine = engine
        self._insert = _INSERTS[engine.dialect.name]

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            if self.engine.dialect.name == "postgresql":
                # The sandbox's writes need to be atomic and visible, not durable across a
                # crash of PostgreSQL itself; skipping the WAL flush wait makes a commit
                # cost ~0.1 ms instead of a disk sync (several ms), on this transaction only.
                conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
            yield conn

    def hit(self, name: str, *, bucket: int, limit: int) -> bool:
        stmt = self._insert(SandboxCounter).values(name=name, bucket=bucket, count=1)
        stmt = stmt.on_conflict_do_update(
            index_elements=["name", "bucket"], set_={"count": SandboxCounter.count + 1}
        ).returning(SandboxCounter.count)
        with self._begin() as conn:
            count = conn.execute(stmt).scalar_one()
            if count == 1:
                # The first request of a new window; the finished windows go, so the table
                # holds about one row per endpoint.
                conn.execute(delete(SandboxCounter).where(
                    SandboxCounter.name == name, SandboxCounter.bucket < bucket))
        return count <= limit

    def accept(self, delivery: Delivery, *, admission: Admission) -> AcceptResult:
        try:
            with self._begin() as conn:
                if delivery.retry_key:
                    self._claim_retry_key(conn, delivery, admission.retry_since)
                if admission.reply_token is not None:
                    used = conn.execute(delete(SandboxReplyToken).where(
                        SandboxReplyToken.token == admission.reply_token,
                        SandboxReplyToken.expires_at > delivery.at,
                    ).returning(SandboxReplyToken.user_id)).first()
                    if used is None:
                        raise _Refused(AcceptResult(Outcome.INVALID_REPLY_TOKEN))
                conn.execute(self._insert(SandboxMessage).values(**_row(delivery)))
                # Last, so that the one hot row (this month's quota) is locked only until commit.
                if admission.cost:
                    self._reserve_quota(conn, admission)
        except _Refused as refused:
            return refused.result
        return AcceptResult(Outcome.ACCEPTED)

    def _claim_retry_key(self, conn: Connection, delivery: Delivery, retry_since: datetime) -> None:
        stmt = self._insert(SandboxRetryKey).values(
            retry_key=delivery.retry_key, request_id=delivery.request_id, endpoint=delivery.endpoint,
            sent_messages=delivery.sent_messages, accepted_at=delivery.at,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["retry_key"],
            set_={name: stmt.excluded[name] for name in ("request_id", "endpoint", "sent_messages", "accepted_at")},
            where=SandboxRetryKey.accepted_at < retry_since,  # an expired key may be used again
        ).returning(SandboxRetryKey.request_id)
        if conn.execute(stmt).first() is not None:
            return
        earlier = conn.execute(select(SandboxRetryKey.request_id, SandboxRetryKey.sent_messages).where(
            SandboxRetryKey.retry_key == delivery.retry_key)).one()
        raise _Refused(AcceptResult(Outcome.DUPLICATE, earlier.request_id, list(earlier.sent_messages or [])))

    def _reserve_quota(self, conn: Connection, admission: Admission) -> None:
        if admission.quota is not None and admission.cost > admission.quota:
            raise _Refused(AcceptResult(Outcome.QUOTA_EXCEEDED))
        stmt = self._insert(SandboxCounter).values(name=QUOTA_COUNTER, bucket=admission.quota_bucket, count=admission.cost)
        fits = None if admission.quota is None else SandboxCounter.count + admission.cost <= admission.quota
        stmt = stmt.on_conflict_do_update(
            index_elements=["name", "bucket"], set_={"count": SandboxCounter.count + admission.cost}, where=fits,
        ).returning(SandboxCounter.count)
        if conn.execute(stmt).first() is None:
            raise _Refused(AcceptResult(Outcome.QUOTA_EXCEEDED))

    def record(self, delivery: Delivery) -> None:
        with self._begin() as conn:
            conn.execute(self._insert(SandboxMessage).values(**_row(delivery)))

    def messages(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(SandboxMessage).order_by(SandboxMessage.id)).all()
        return [Delivery(
            endpoint=r.endpoint, request_id=r.request_id, at=r.at, to=list(r.recipients or []),
            messages=r.messages, retry_key=r.retry_key, status=r.status, accepted=r.accepted,
        ).as_record() for r in rows]

    def clear_messages(self) -> None:
        with self._begin() as conn:
            conn.execute(delete(SandboxMessage))

    def add_reply_token(self, token: str, user_id: str, *, expires_at: datetime) -> None:
        stmt = self._insert(SandboxReplyToken).values(token=token, user_id=user_id, expires_at=expires_at)
        stmt = stmt.on_conflict_do_update(
            index_elements=["token"], set_={"user_id": stmt.excluded.user_id, "expires_at": stmt.excluded.expires_at})
        with self._begin() as conn:
            conn.execute(stmt)

    def reply_token_user(self, token: str, *, now: datetime) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(select(SandboxReplyToken.user_id).where(
                SandboxReplyToken.token == token, SandboxReplyToken.expires_at > now)).scalar_one_or_none()

    def count(self, name: str, *, bucket: int) -> int:
        with self.engine.connect() as conn:
            value = conn.execute(select(SandboxCounter.count).where(
                SandboxCounter.name == name, SandboxCounter.bucket == bucket)).scalar_one_or_none()
        return int(value or 0)

    def setting(self, name: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            return conn.execute(select(SandboxSetting.value).where(SandboxSetting.name == name)).scalar_one_or_none()

    def put_setting(self, name: str, value: dict[str, Any] | None) -> None:
        with self._begin() as conn:
            if value is None:
                conn.execute(delete(SandboxSetting).where(SandboxSetting.name == name))
                return
            stmt = self._insert(SandboxSetting).values(name=name, value=value)
            conn.execute(stmt.on_conflict_do_update(index_elements=["name"], set_={"value": stmt.excluded.value}))

    def purge(self, *, now: datetime, retry_since: datetime) -> None:
        with self._begin() as conn:
            conn.execute(delete(SandboxReplyToken).where(SandboxReplyToken.expires_at <= now))
            conn.execute(delete(SandboxRetryKey).where(SandboxRetryKey.accepted_at < retry_since))

    def reset(self) -> None:
        with self._begin() as conn:
            for table in reversed(SANDBOX_TABLES):
                conn.execute(table.delete())


def _row(delivery: Delivery) -> dict[str, Any]:
    return {
        "request_id": delivery.request_id, "endpoint": delivery.endpoint, "recipients": delivery.to,
        "messages": delivery.messages, "retry_key": delivery.retry_key, "status": delivery.status,
        "accepted": delivery.accepted, "at": delivery.at,
    }
