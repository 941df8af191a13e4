"""Consent registry: purposes, decisions, suppression."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.contacts.factories import make_contact
from toolkit.audit.models import AuditLog
from toolkit.consent import service as consent
from toolkit.consent.models import ConsentEvent
from toolkit.contacts import service as contacts

PUSH = "marketing.line_push"


def event_count(session, contact_id: int) -> int:
    return session.scalar(select(func.count()).where(ConsentEvent.contact_id == contact_id))


@pytest.mark.parametrize("action, state", [("withdraw", "withdrawn"), ("object", "objected")])
def test_refusals_are_recorded_even_without_an_earlier_grant(session, action, state):
    person = make_contact(session)

    change = consent.record(session, contact_id=person.id, purpose=PUSH, action=action, source="keyword")

    assert change.applied and change.state == state
    assert event_count(session, person.id) == 1
    assert consent.status(session, contact_id=person.id)[PUSH]["state"] == state


def test_every_change_is_in_the_audit_chain(session):
    person = make_contact(session)

    change = consent.grant(session, contact_id=person.id, purpose=PUSH, source="admin", actor="user:a@b.c")

    row = session.scalars(select(AuditLog).order_by(AuditLog.id.desc())).first()
    assert row.action == "consent.grant" and row.actor == "user:a@b.c"
    assert row.target_id == str(person.id) and row.details["event_id"] == change.event_id


def test_grant_records_the_notice_version_and_evidence(session):
    person = make_contact(session)

    consent.grant(session, contact_id=person.id, purpose=PUSH, source="follow",
                  evidence={"webhook_event_id": "01H"})

    (event, code), = consent.history(session, contact_id=person.id)[0]
    assert code == PUSH and event.notice_version == "2026-01"
    assert event.evidence == {"webhook_event_id": "01H"} and event.source == "follow"


def test_status_shows_none_for_undecided_purposes(session):
    person = make_contact(session)

    status = consent.status(session, contact_id=person.id)

    assert set(status) == {p.code for p in consent.list_purposes(session)}
    assert all(item["state"] == "none" and item["changed_at"] is None for item in status.values())


def test_unknown_purpose_and_source_are_clear_errors(session):
    person = make_contact(session)

    with pytest.raises(consent.UnknownPurpose, match="known: analytics.aggregate"):
        consent.grant(session, contact_id=person.id, purpose="nope.nope", source="admin")
    with pytest.raises(consent.UnknownSource, match="unknown consent source 'fax'"):
        consent.grant(session, contact_id=person.id, purpose=PUSH, source="fax")


def test_objection_to_all_contact_suppresses_and_survives_erasure(session):
    person = make_contact(session, consent_to={PUSH: "grant"})
    external_id = person.identities[0].external_id

    consent.object_to_all_contact(session, contact_id=person.id, identities=[("line", external_id)], source="admin")
    contacts.erase(session, contact_id=person.id, actor="test")

    assert consent.is_suppressed(session, channel="line", external_id=external_id)
    with pytest.raises(contacts.IdentitySuppressed):
        contacts.upsert_identity(session, external_id=external_id)


def test_a_keyword_opt_out_does_not_suppress(session):
    person = make_contact(session, consent_to={PUSH: "grant"})

    consent.withdraw(session, contact_id=person.id, purpose=PUSH, source="keyword")

    assert not consent.is_suppressed(session, channel="line", external_id=person.identities[0].external_id)


def test_sync_deactivates_purposes_removed_from_config(session, config_dir):
    definitions = consent.load_purpose_file(config_dir / "purposes.yaml")
    consent.sync_purposes(session, [d for d in definitions if d.code != "analytics.aggregate"])

    assert "analytics.aggregate" not in {p.code for p in consent.list_purposes(session)}
    with pytest.raises(consent.UnknownPurpose):
        consent.get_purpose(session, "analytics.aggregate")

    consent.sync_purposes(session, definitions)
    assert consent.get_purpose(session, "analytics.aggregate").active


@pytest.mark.parametrize(
    "text, message",
    [
        ("purposes: []", "purposes"),
        ("purposes: [{code: x}]", "purposes.0.code"),
        (": not yaml :", "not valid YAML"),
    ],
)
def test_a_broken_purposes_file_is_a_clear_error(tmp_path, text, message):
    path = tmp_path / "purposes.yaml"
    path.write_text(text, encoding="utf-8")

    with pytest.raises(consent.PurposeConfigError, match=message):
        consent.load_purpose_file(path)


def test_config_has_the_required_purposes(config_dir):
    purposes = {p.code: p for p in consent.load_purpose_file(config_dir / "purposes.yaml")}

    assert {"service.chat", "marketing.line_push", "marketing.profiling", "analytics.aggregate"} <= purposes.keys()
    assert purposes["service.chat"].lawful_basis == "contract"
    assert purposes["marketing.line_push"].lawful_basis == "consent"
    assert all(p.retention_days > 0 and p.notice.version for p in purposes.values())


def test_erasure_keeps_the_decision_and_how_it_came_but_not_who_or_what_they_said(session):
    person = make_contact(session)
    consent.grant(session, contact_id=person.id, purpose=PUSH, source="api", actor="token:crm",
                  evidence={"request_id": "r-1", "ip": "203.0.113.9", "user_agent": "Mozilla/5.0",
                            "note": "called from 0912345678", "crm_id": "C-77"})
    consent.withdraw(session, contact_id=person.id, purpose=PUSH, source="keyword",
                     evidence={"webhook_event_id": "01W", "user_id": person.identities[0].external_id, "text": "退訂"})
    other = make_contact(session)
    consent.grant(session, contact_id=other.id, purpose=PUSH, source="admin", evidence={"note": "kept"})

    contacts.erase(session, contact_id=person.id, actor="privacy")
    session.expire_all()

    events = session.scalars(select(ConsentEvent).where(ConsentEvent.contact_id == person.id)
                             .order_by(ConsentEvent.id)).all()
    assert [(e.action, e.source, e.actor) for e in events] == [("grant", "api", "token:crm"), ("withdraw", "keyword", None)]
    assert [e.evidence for e in events] == [{"request_id": "r-1", "erased": True},
                                            {"webhook_event_id": "01W", "erased": True}]
    assert consent.status(session, contact_id=person.id)[PUSH]["state"] == "withdrawn"
    assert session.scalar(select(ConsentEvent.evidence).where(ConsentEvent.contact_id == other.id)) == {"note": "kept"}
