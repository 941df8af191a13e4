"""The gate: who may be processed for a purpose on a channel."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from toolkit.consent import gate
from toolkit.consent import service as consent
from toolkit.contacts import service as contacts
from toolkit.contacts.models import Contact
from tests.contacts.factories import make_contact

PUSH = "marketing.line_push"
CHAT = "service.chat"


def test_consent_purpose_needs_a_grant(session):
    granted = make_contact(session, consent_to={PUSH: "grant"})
    never_asked = make_contact(session)
    withdrawn = make_contact(session, consent_to={PUSH: "withdraw"})

    allowed = consent.allowed(session, [granted.id, never_asked.id, withdrawn.id], purpose=PUSH, channel="line")

    assert allowed == {granted.id}


def test_contract_purpose_passes_unless_refused(session):
    plain = make_contact(session)
    objected = make_contact(session, consent_to={CHAT: "object"})
    withdrew = make_contact(session, consent_to={CHAT: "withdraw"})

    allowed = consent.allowed(session, [plain.id, objected.id, withdrew.id], purpose=CHAT, channel="line")

    assert allowed == {plain.id}


def test_blocked_channel_never_passes(session):
    blocked = make_contact(session, consent_to={PUSH: "grant"}, blocked=True)

    assert consent.allowed(session, [blocked.id], purpose=PUSH, channel="line") == set()
    assert consent.allowed(session, [blocked.id], purpose=CHAT, channel="line") == set()


def test_suppressed_identity_never_passes_even_with_a_grant(session):
    person = make_contact(session, consent_to={PUSH: "grant"})
    consent.suppress(session, identities=[("line", person.identities[0].external_id)], reason="objection")

    assert consent.allowed(session, [person.id], purpose=PUSH, channel="line") == set()
    assert consent.allowed(session, [person.id], purpose=CHAT, channel="line") == set()
    assert consent.allowed(session, [person.id], purpose="marketing.profiling", channel=None) == set()


def test_erased_contact_never_passes(session):
    person = make_contact(session, consent_to={PUSH: "grant", "analytics.aggregate": "grant"})
    contacts.erase(session, contact_id=person.id, actor="test")

    assert consent.allowed(session, [person.id], purpose=PUSH, channel="line") == set()
    assert consent.allowed(session, [person.id], purpose=CHAT, channel="line") == set()
    assert consent.allowed(session, [person.id], purpose="analytics.aggregate", channel=None) == set()


def test_accepts_a_sql_selectable_of_ids(session):
    granted = make_contact(session, display_name="Selectable A", consent_to={PUSH: "grant"})
    make_contact(session, display_name="Selectable B")
    ids = select(Contact.id).where(Contact.display_name.like("Selectable %"))

    assert consent.allowed(session, ids, purpose=PUSH, channel="line") == {granted.id}


def test_large_id_lists_do_not_become_one_parameter_each(session):
    granted = make_contact(session, consent_to={PUSH: "grant"})
    ids = list(range(10_000_000, 10_025_000)) + [granted.id]

    assert consent.allowed(session, ids, purpose=PUSH, channel="line") == {granted.id}


def test_empty_input_is_empty(session):
    assert consent.allowed(session, [], purpose=PUSH, channel="line") == set()


def test_unknown_purpose_is_a_clear_error(session):
    with pytest.raises(consent.InvalidInput, match="unknown purpose 'marketing.sms'"):
        consent.allowed(session, [1], purpose="marketing.sms", channel="line")


def test_refused_marketing_stays_refused_until_a_new_grant(session):
    """個資法 Art. 20(2): after a refusal, marketing never passes again until a new grant."""
    person = make_contact(session, consent_to={PUSH: "grant"})
    consent.withdraw(session, contact_id=person.id, purpose=PUSH, source="keyword")
    assert consent.allowed(session, [person.id], purpose=PUSH, channel="line") == set()

    refollow = consent.grant(session, contact_id=person.id, purpose=PUSH, source="follow")
    assert not refollow.applied
    assert consent.allowed(session, [person.id], purpose=PUSH, channel="line") == set()

    consent.grant(session, contact_id=person.id, purpose=PUSH, source="keyword", evidence={"text": "訂閱"})
    assert consent.allowed(session, [person.id], purpose=PUSH, channel="line") == {person.id}


def test_objection_to_marketing_is_not_overturned_by_an_import(session):
    person = make_contact(session, consent_to={PUSH: "object"})

    result = consent.grant(session, contact_id=person.id, purpose=PUSH, source="import")

    assert not result.applied and result.state == "objected"
    assert consent.allowed(session, [person.id], purpose=PUSH, channel="line") == set()


def test_a_large_dense_id_list_is_gated_like_a_small_one(session, monkeypatch):
    """Big, dense lists take a range scan intersected in Python instead of ANY(array)."""
    people = [make_contact(session, consent_to={PUSH: "grant"}) for _ in range(3)]
    make_contact(session, consent_to={PUSH: "withdraw"})
    ids = [p.id for p in people] + [max(p.id for p in people) + 1]
    expected = consent.allowed(session, ids, purpose=PUSH, channel="line")

    monkeypatch.setattr(gate, "DENSE_LIST_MIN", 1)

    assert consent.allowed(session, ids, purpose=PUSH, channel="line") == expected == {p.id for p in people}
