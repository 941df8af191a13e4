"""Contacts and their channel identities."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload

from toolkit.audit import service as audit
from toolkit.consent import service as consent
from toolkit.contacts.models import Contact, ContactIdentity
from toolkit.kit import domains
from toolkit.kit.clock import utcnow
from toolkit.kit.domains import ErasureStep
from toolkit.kit.errors import Conflict, NotFound
from toolkit.kit.personal import blanked
from toolkit.kit.secrets import identity_hash

DEFAULT_CHANNEL = "line"


class ContactNotFound(NotFound):
    code = "contact_not_found"


class IdentitySuppressed(Conflict):
    code = "identity_suppressed"

    def __init__(self, external_id: str) -> None:
        super().__init__(f"{external_id} asked never to be contacted again and cannot be re-added")


class IdentityExists(Conflict):
    code = "identity_exists"

    def __init__(self, external_id: str, contact_id: int) -> None:
        super().__init__(f"{external_id} already belongs to contact {contact_id}", contact_id=contact_id)


@dataclass(frozen=True)
class UpsertResult:
    contact: Contact
    created: bool
    changed: bool


def get(session: Session, contact_id: int) -> Contact | None:
    return session.get(Contact, contact_id)


def require(session: Session, contact_id: int) -> Contact:
    contact = get(session, contact_id)
    if contact is None:
        raise ContactNotFound(f"no contact with id {contact_id}")
    return contact


def get_by_external_id(session: Session, external_id: str, *, channel: str = DEFAULT_CHANNEL) -> Contact | None:
    return session.scalar(
        select(Contact)
        .join(ContactIdentity, ContactIdentity.contact_id == Contact.id)
        .where(ContactIdentity.channel == channel, ContactIdentity.external_id == external_id)
    )


def by_external_ids(
    session: Session, external_ids: Iterable[str], *, channel: str = DEFAULT_CHANNEL,
) -> dict[str, Contact]:
    """The contacts behind these channel identities, each with its identities loaded, in one
    query (a batch of webhook events looks its users up at once)."""
    wanted = sorted(set(external_ids))
    found: dict[str, Contact] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows = session.execute(
            select(ContactIdentity.external_id, Contact)
            .join(Contact, ContactIdentity.contact_id == Contact.id)
            .where(ContactIdentity.channel == channel, ContactIdentity.external_id.in_(chunk))
            .options(selectinload(Contact.identities))
        )
        found.update({external_id: contact for external_id, contact in rows})
    return found


def require_by_external_id(session: Session, external_id: str, *, channel: str = DEFAULT_CHANNEL) -> Contact:
    contact = get_by_external_id(session, external_id, channel=channel)
    if contact is None:
        raise ContactNotFound(f"no contact with {channel} id {external_id!r}")
    return contact


def list_contacts(
    session: Session, *, search: str | None = None, limit: int = 50, offset: int = 0
) -> tuple[list[Contact], int]:
    stmt = select(Contact).where(Contact.erased_at.is_(None))
    # NUL is in no stored name or id (PostgreSQL refuses it in a query parameter).
    term = (search or "").replace("\x00", "").strip()
    if term:
        matching_identity = select(ContactIdentity.contact_id).where(
            ContactIdentity.external_id.startswith(term, autoescape=True)
        )
        stmt = stmt.where(
            or_(Contact.display_name.icontains(term, autoescape=True), Contact.id.in_(matching_identity))
        )
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(
        stmt.options(selectinload(Contact.identities)).order_by(Contact.id.desc()).limit(limit).offset(offset)
    ).all()
    return list(rows), total


def upsert_identity(
    session: Session,
    *,
    external_id: str,
    channel: str = DEFAULT_CHANNEL,
    display_name: str | None = None,
    locale: str | None = None,
) -> UpsertResult:
    """Find the contact behind a channel identity or create both. A suppressed identity
    is refused: erasure and objection to all contact are for good."""
    # Checked for known contacts too: someone who objected to all contact keeps their row
    # (the objection is evidence) but must not be updated or re-engaged by a follow or import.
    if consent.is_suppressed(session, channel=channel, external_id=external_id):
        raise IdentitySuppressed(external_id)
    contact = get_by_external_id(session, external_id, channel=channel)
    if contact is None:
        contact = Contact(display_name=display_name, locale=locale)
        contact.identities.append(
            ContactIdentity(
                channel=channel,
                external_id=external_id,
                external_hash=identity_hash(session, channel, external_id),
            )
        )
        session.add(contact)
        session.flush()
        return UpsertResult(contact, created=True, changed=True)
    changed = False
    if display_name is not None and contact.display_name != display_name:
        contact.display_name, changed = display_name, True
    if locale is not None and contact.locale != locale:
        contact.locale, changed = locale, True
    session.flush()
    return UpsertResult(contact, created=False, changed=changed)


def create(
    session: Session,
    *,
    external_id: str,
    actor: str,
    channel: str = DEFAULT_CHANNEL,
    display_name: str | None = None,
    locale: str | None = None,
) -> Contact:
    existing = get_by_external_id(session, external_id, channel=channel)
    if existing is not None:
        raise IdentityExists(external_id, existing.id)
    result = upsert_identity(
        session, external_id=external_id, channel=channel, display_name=display_name, locale=locale
    )
    audit.record(session, actor=actor, action="contact.create", target_type="contact", target_id=result.contact.id)
    return result.contact


def erase(session: Session, *, contact_id: int, actor: str, reason: str = "erasure",
          steps: Sequence[ErasureStep] | None = None) -> Contact:
    """Remove everything that identifies the person; keep only the suppression hashes so
    that nobody re-adds them. The gate relies on erased contacts having no identities.
    `steps`: every domain's erasure steps (default: the installed product's)."""
    contact = require(session, contact_id)
    identities = [(i.channel, i.external_id) for i in contact.identities]
    consent.suppress(session, identities=identities, reason=reason)
    # What other domains hold on the person (contacts builds on nothing that holds it):
    # their steps, as the composition root collected them.
    for step in domains.installed().erasure_steps if steps is None else steps:
        step(session, contact_id)
    contact.identities.clear()
    # The row stays (other tables point at it); what the registry calls personal goes.
    for column, blank in blanked(Contact.__table__).items():
        setattr(contact, column, blank)
    contact.erased_at = utcnow()
    audit.record(session, actor=actor, action="contact.erase", target_type="contact", target_id=contact_id)
    session.flush()
    return contact
