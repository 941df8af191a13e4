"""Staging tables: loaded at once (COPY on PostgreSQL), emptied before use, new rows numbered
from the target table's own keys."""

from __future__ import annotations

from sqlalchemy import Column, Integer, String, select
from sqlalchemy.orm import Session

from tests.contacts.factories import make_contact
from toolkit.contacts.models import Contact
from toolkit.kit import bulk

staging = bulk.staging_table(
    "kit_bulk_test_row",
    Column("line", Integer, primary_key=True),
    Column("name", String(50)),
    Column("new_id", Integer),
)


def test_rows_are_loaded_and_a_fresh_staging_table_is_empty(session: Session) -> None:
    bulk.fresh_staging(session, staging)
    bulk.load(session, staging, ("line", "name"), [(1, "王小明"), (2, None), (3, "a\tb\\c\nd")])

    assert session.execute(select(staging.c.line, staging.c.name).order_by(staging.c.line)).all() == [
        (1, "王小明"), (2, None), (3, "a\tb\\c\nd")]

    bulk.fresh_staging(session, staging)
    assert session.execute(select(staging)).all() == []


def test_new_rows_are_numbered_past_the_existing_keys_in_order(session: Session) -> None:
    newest = make_contact(session).id
    bulk.fresh_staging(session, staging)
    bulk.load(session, staging, ("line", "name", "new_id"), [(5, "a", None), (2, "b", None), (9, "kept", -1)])

    bulk.number_rows(session, staging, key="new_id", order_by="line", pending=staging.c.new_id.is_(None),
                     target=Contact.__table__)

    numbered = dict(session.execute(select(staging.c.line, staging.c.new_id)).tuples().all())
    assert numbered[9] == -1
    assert newest < numbered[2] < numbered[5]
