"""The audit hash chain: appending, and verification that names the first bad row."""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from toolkit import db, migrate
from toolkit.audit import service as audit
from toolkit.audit.models import AuditHead, AuditLog


def append(session: Session, n: int, **details: object) -> list[AuditLog]:
    return [audit.record(session, actor="test", action="test.event", target_type="thing", target_id=i,
                         details={"i": i, **details}) for i in range(n)]


def head(session: Session) -> AuditHead:
    return session.scalars(select(AuditHead)).one()


def test_rows_chain_and_the_head_follows(session: Session) -> None:
    rows = append(session, 3)

    assert [r.id for r in rows] == list(range(rows[0].id, rows[0].id + 3))
    for before, after in zip(rows, rows[1:]):
        assert after.prev_hash == before.hash
    assert (head(session).seq, head(session).hash) == (rows[-1].id, rows[-1].hash)


def test_record_many_appends_in_order(session: Session) -> None:
    entries = [audit.AuditEntry(actor="a", action=f"x.{i}") for i in range(3)]

    rows = audit.record_many(session, entries)

    assert [r.action for r in rows] == ["x.0", "x.1", "x.2"]
    assert audit.record_many(session, []) == []
    assert audit.verify(session).ok


def test_details_are_stored_as_the_hash_saw_them(session: Session) -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    row = audit.record(session, actor="ü", action="x", details={"at": when, "n": 1.5, "nested": {"b": [1, None]}})

    session.expire_all()
    assert session.get(AuditLog, row.id).details == {"at": str(when), "n": 1.5, "nested": {"b": [1, None]}}
    assert audit.verify(session).ok


def test_intact_chain_verifies_in_batches(session: Session) -> None:
    rows = append(session, 7)

    report = audit.verify(session, batch_size=3)

    assert report.ok and report.rows_checked == rows[-1].id


def test_an_empty_chain_is_intact(session: Session) -> None:
    if head(session).seq:
        pytest.skip("the test database already holds audit rows")
    assert audit.verify(session) == audit.ChainReport(True, 0)


def sql(session: Session, statement: str, **params: object) -> None:
    session.execute(text(statement), params)


def test_altered_middle_row(session: Session) -> None:
    rows = append(session, 5)
    sql(session, "UPDATE audit_log SET target_id = 'x' WHERE id = :id", id=rows[2].id)

    report = audit.verify(session, batch_size=2)

    assert not report.ok
    assert report.first_bad_id == rows[2].id and report.problem == f"row {rows[2].id} was altered"
    assert report.rows_checked == rows[1].id


def test_deleted_middle_row(session: Session) -> None:
    rows = append(session, 5)
    sql(session, "DELETE FROM audit_log WHERE id = :id", id=rows[2].id)

    report = audit.verify(session)

    assert (report.ok, report.first_bad_id) == (False, rows[2].id)
    assert report.problem == f"row {rows[2].id} is missing"


def test_deleted_last_rows(session: Session) -> None:
    rows = append(session, 5)
    sql(session, "DELETE FROM audit_log WHERE id >= :id", id=rows[3].id)

    report = audit.verify(session)

    assert (report.ok, report.first_bad_id) == (False, rows[3].id)
    assert report.problem == f"rows after {rows[2].id} were removed"


def test_every_row_deleted(session: Session) -> None:
    append(session, 2)
    sql(session, "DELETE FROM audit_log")

    report = audit.verify(session)

    assert (report.ok, report.first_bad_id, report.problem) == (False, 1, "rows after 0 were removed")


def test_edited_details_json(session: Session, dialect: str) -> None:
    rows = append(session, 3, note="original")
    if dialect == "postgresql":
        sql(session, "UPDATE audit_log SET details = jsonb_set(details, '{note}', '\"edited\"') WHERE id = :id",
            id=rows[1].id)
    else:
        sql(session, "UPDATE audit_log SET details = json_set(details, '$.note', 'edited') WHERE id = :id",
            id=rows[1].id)

    report = audit.verify(session)

    assert (report.ok, report.first_bad_id) == (False, rows[1].id)


def test_reordered_json_keys_are_not_tampering(session: Session) -> None:
    rows = append(session, 2, b=2, a=1)
    sql(session, "UPDATE audit_log SET details = :details WHERE id = :id",
        details='{"a": 1, "b": 2, "i": 0}', id=rows[0].id)

    assert audit.verify(session).ok


def test_details_that_are_not_json_any_more(session: Session, dialect: str) -> None:
    if dialect != "sqlite":
        pytest.skip("PostgreSQL's jsonb cannot hold text that is not JSON")
    rows = append(session, 4)
    sql(session, "UPDATE audit_log SET details = '{broken' WHERE id = :id", id=rows[2].id)

    report = audit.verify(session, batch_size=10)

    assert (report.ok, report.first_bad_id) == (False, rows[2].id)
    assert "unreadable" in report.problem and report.rows_checked == rows[1].id


def test_timestamp_that_is_not_a_date_any_more(session: Session, dialect: str) -> None:
    if dialect != "sqlite":
        pytest.skip("PostgreSQL's timestamptz cannot hold text that is not a date")
    rows = append(session, 3)
    sql(session, "UPDATE audit_log SET occurred_at = 'yesterday' WHERE id = :id", id=rows[1].id)

    report = audit.verify(session)

    assert (report.ok, report.first_bad_id) == (False, rows[1].id)


def test_unreadable_row_after_a_missing_one_reports_the_gap(session: Session, dialect: str) -> None:
    if dialect != "sqlite":
        pytest.skip("only SQLite can hold unreadable values")
    rows = append(session, 4)
    sql(session, "DELETE FROM audit_log WHERE id = :id", id=rows[1].id)
    sql(session, "UPDATE audit_log SET details = 'x' WHERE id = :id", id=rows[2].id)

    report = audit.verify(session)

    assert (report.first_bad_id, report.problem) == (rows[1].id, f"row {rows[1].id} is missing")


def test_rewritten_prev_hash(session: Session) -> None:
    rows = append(session, 3)
    sql(session, "UPDATE audit_log SET prev_hash = :h WHERE id = :id", h="f" * 64, id=rows[1].id)

    report = audit.verify(session)

    assert (report.first_bad_id, report.problem) == (rows[1].id, f"row {rows[1].id} does not follow row {rows[0].id}")


def test_consistently_rewritten_last_row_is_caught_by_the_head(session: Session) -> None:
    rows = append(session, 3)
    last = rows[-1]
    forged = dict(id=last.id, occurred_at=last.occurred_at, actor="mallory", action=last.action,
                  target_type=last.target_type, target_id=last.target_id, details=last.details,
                  prev_hash=last.prev_hash)
    session.execute(update(AuditLog).where(AuditLog.id == last.id)
                    .values(actor="mallory", hash=audit.row_hash(**forged)))

    report = audit.verify(session)

    assert (report.first_bad_id, report.problem) == (last.id, f"row {last.id} does not match the chain head")


def test_rows_appended_behind_the_heads_back(session: Session) -> None:
    rows = append(session, 2)
    last = rows[-1]
    extra = dict(id=last.id + 1, occurred_at=last.occurred_at, actor="mallory", action="x", target_type=None,
                 target_id=None, details={}, prev_hash=last.hash)
    session.add(AuditLog(**extra, hash=audit.row_hash(**extra)))
    session.flush()

    report = audit.verify(session)

    assert (report.ok, report.first_bad_id) == (False, last.id + 1)
    assert "added outside the chain" in report.problem


def test_missing_head_is_reported_not_raised(session: Session) -> None:
    append(session, 1)
    sql(session, "DELETE FROM audit_head")

    report = audit.verify(session)

    assert not report.ok and "audit_head" in report.problem


def test_list_entries_newest_first(session: Session) -> None:
    rows = append(session, 3)

    listed, total = audit.list_entries(session, limit=2)

    assert [r.id for r in listed] == [rows[2].id, rows[1].id]
    assert total >= 3


def test_two_sqlite_writers_appending_at_once_both_succeed_and_keep_the_chain(tmp_path: Path) -> None:
    """Embedded mode: web threads and the worker thread write at the same time. Writing
    transactions start with BEGIN IMMEDIATE, so the second waits instead of failing."""
    engine = db.make_engine(f"sqlite:///{tmp_path / 'concurrent.db'}")
    migrate.upgrade(engine)
    start = threading.Barrier(2, timeout=10)
    errors: list[BaseException] = []

    def append(actor: str) -> None:
        try:
            start.wait()
            for n in range(20):
                with Session(engine) as writer:
                    writer.execute(select(AuditHead)).all()  # read first, as services do
                    audit.record(writer, actor=actor, action=f"concurrent.{n}")
                    writer.commit()
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            errors.append(exc)

    threads = [threading.Thread(target=append, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with Session(engine) as reader:
        report = audit.verify(reader)
    engine.dispose()

    assert not errors, errors[0]
    assert report.ok and report.rows_checked == 40
