"""Importing a batch of contacts with a few set-based statements through a staging table,
instead of a lookup, an insert and a savepoint per row (see importer.py for the rules)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import BigInteger, Column, Integer, String, and_, func, literal, or_, select, true, update
from sqlalchemy.orm import Session

from toolkit.contacts.models import Contact, ContactIdentity
from toolkit.db import UtcDateTime
from toolkit.kit import bulk

CREATED, UPDATED, UNCHANGED = "created", "updated", "unchanged"

staged_contact = bulk.staging_table(
    "contact_import_row",
    Column("line", Integer, primary_key=True),
    Column("external_id", String(128), nullable=False),
    Column("external_hash", String(64), nullable=False),
    Column("display_name", String(200)),
    Column("locale", String(16)),
    Column("contact_id", BigInteger),
    Column("outcome", String(16)),
)
COLUMNS = ("line", "external_id", "external_hash", "display_name", "locale")
contact = Contact.__table__
identity = ContactIdentity.__table__


@dataclass(frozen=True)
class StagedContact:
    line: int
    external_id: str
    external_hash: str
    display_name: str | None
    locale: str | None


@dataclass(frozen=True)
class Merged:
    contact_id: int
    outcome: str  # CREATED, UPDATED or UNCHANGED


def merge(session: Session, rows: Sequence[StagedContact], *, channel: str, now: datetime) -> dict[int, Merged]:
    """Create or update the contact of each row (no two rows share an identity, and none is
    suppressed: the caller has checked both). Returns each line's contact and outcome."""
    if not rows:
        return {}
    staged = staged_contact.c
    bulk.fresh_staging(session, staged_contact)
    bulk.load(session, staged_contact, COLUMNS,
              ((r.line, r.external_id, r.external_hash, r.display_name, r.locale) for r in rows))
    session.execute(
        update(staged_contact)
        .where(identity.c.channel == channel, identity.c.external_id == staged.external_id)
        .values(contact_id=identity.c.contact_id)
    )
    # A value left empty in the file keeps what the contact has (as the per-row path does).
    differs = or_(
        and_(staged.display_name.is_not(None), staged.display_name.is_distinct_from(contact.c.display_name)),
        and_(staged.locale.is_not(None), staged.locale.is_distinct_from(contact.c.locale)),
    )
    session.execute(
        update(staged_contact).where(contact.c.id == staged.contact_id, differs).values(outcome=UPDATED)
    )
    session.execute(
        update(staged_contact).where(staged.contact_id.is_not(None), staged.outcome.is_(None)).values(outcome=UNCHANGED)
    )
    session.execute(
        update(contact)
        .where(contact.c.id == staged.contact_id, staged.outcome == UPDATED)
        .values(display_name=func.coalesce(staged.display_name, contact.c.display_name),
                locale=func.coalesce(staged.locale, contact.c.locale), updated_at=now)
    )
    bulk.number_rows(session, staged_contact, key="contact_id", order_by="line",
                     pending=staged.contact_id.is_(None), target=contact)
    session.execute(update(staged_contact).where(staged.outcome.is_(None)).values(outcome=CREATED))
    created = staged.outcome == CREATED
    when = literal(now, UtcDateTime())
    session.execute(contact.insert().from_select(
        ["id", "display_name", "locale", "created_at", "updated_at"],
        select(staged.contact_id, staged.display_name, staged.locale, when, when).where(created),
    ))
    session.execute(identity.insert().from_select(
        ["contact_id", "channel", "external_id", "external_hash", "followed", "created_at"],
        select(staged.contact_id, literal(channel), staged.external_id, staged.external_hash, true(), when)
        .where(created),
    ))
    # Core statements went around the ORM: objects it holds for these contacts are stale
    # (everything pending was flushed before the first statement).
    session.expire_all()
    return {
        line: Merged(contact_id, outcome)
        for line, contact_id, outcome in session.execute(select(staged.line, staged.contact_id, staged.outcome))
    }
