"""Contacts and their channel identities."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.contacts.factories import line_id, make_contact
from toolkit.audit.models import AuditLog
from toolkit.consent import service as consent
from toolkit.contacts import service


def test_upsert_creates_then_updates_then_leaves_alone(session: Session) -> None:
    ext = line_id()

    created = service.upsert_identity(session, external_id=ext, display_name="A", locale="en")
    changed = service.upsert_identity(session, external_id=ext, display_name="B")
    same = service.upsert_identity(session, external_id=ext, display_name="B", locale=None)

    assert (created.created, created.changed) == (True, True)
    assert (changed.created, changed.changed) == (False, True)
    assert (same.created, same.changed) == (False, False)
    assert created.contact.id == changed.contact.id == same.contact.id
    assert (same.contact.display_name, same.contact.locale) == ("B", "en")
    identity = same.contact.identities[0]
    assert identity.external_hash == consent.identity_hash(session, "line", ext)


def test_upsert_refuses_a_suppressed_identity(session: Session) -> None:
    ext = line_id()
    consent.suppress(session, identities=[("line", ext)], reason="objection")

    with pytest.raises(service.IdentitySuppressed):
        service.upsert_identity(session, external_id=ext)
    assert service.get_by_external_id(session, ext) is None


def test_identities_are_per_channel(session: Session) -> None:
    ext = line_id()
    line = service.upsert_identity(session, external_id=ext).contact
    other = service.upsert_identity(session, external_id=ext, channel="web").contact

    assert line.id != other.id
    assert service.get_by_external_id(session, ext, channel="web").id == other.id


def test_create_audits_and_refuses_an_existing_identity(session: Session) -> None:
    ext = line_id()

    contact = service.create(session, external_id=ext, actor="user:ops@example.com", display_name="New")

    entry = session.scalars(select(AuditLog).where(AuditLog.action == "contact.create")
                            .order_by(AuditLog.id.desc())).first()
    assert entry.target_id == str(contact.id) and entry.actor == "user:ops@example.com"
    with pytest.raises(service.IdentityExists) as caught:
        service.create(session, external_id=ext, actor="test")
    assert caught.value.details == {"contact_id": contact.id}


def test_require_raises_not_found(session: Session) -> None:
    with pytest.raises(service.ContactNotFound):
        service.require_by_external_id(session, "Unobody")
    with pytest.raises(service.ContactNotFound):
        service.require(session, 10**12)


def test_erase_removes_what_identifies_and_blocks_readding(session: Session) -> None:
    person = make_contact(session, display_name="Erase Me", consent_to={"marketing.line_push": "grant"})
    ext = person.identities[0].external_id

    service.erase(session, contact_id=person.id, actor="test")

    assert person.erased_at is not None
    assert (person.display_name, person.locale, person.identities) == (None, None, [])
    assert service.get_by_external_id(session, ext) is None
    assert consent.is_suppressed(session, channel="line", external_id=ext)
    with pytest.raises(service.IdentitySuppressed):
        service.upsert_identity(session, external_id=ext)


def test_list_searches_names_and_id_prefixes_literally(session: Session) -> None:
    tag = line_id()[:12]
    percent = make_contact(session, display_name=f"{tag} 100% real")
    plain = make_contact(session, display_name=f"{tag} plain")
    by_id = make_contact(session, external_id=f"{tag}_x")
    erased = make_contact(session, display_name=f"{tag} erased")
    service.erase(session, contact_id=erased.id, actor="test")

    everyone, total = service.list_contacts(session, search=tag)
    literal, _ = service.list_contacts(session, search=f"{tag} 100%")
    underscore, _ = service.list_contacts(session, search=f"{tag}_")

    assert [c.id for c in everyone] == [by_id.id, plain.id, percent.id] and total == 3
    assert [c.id for c in literal] == [percent.id]
    assert [c.id for c in underscore] == [by_id.id]


def test_a_search_with_a_nul_character_is_answered_not_refused(session: Session) -> None:
    tag = line_id()[:12]
    named = make_contact(session, display_name=f"{tag} plain")

    found, total = service.list_contacts(session, search=f"{tag}\x00")

    assert [c.id for c in found] == [named.id] and total == 1


def test_list_pages(session: Session) -> None:
    tag = line_id()[:12]
    made = [make_contact(session, display_name=f"{tag} {i}") for i in range(3)]

    page, total = service.list_contacts(session, search=tag, limit=2, offset=1)

    assert total == 3
    assert [c.id for c in page] == [made[1].id, made[0].id]
