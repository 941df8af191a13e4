"""The outbound pipeline's rows: enqueue, claim (with the consent gate), record, erase."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from tests.contacts.factories import make_contact
from tests.messaging.factories import outbound
from toolkit.consent import service as consent
from toolkit.kit.clock import utcnow
from toolkit.messaging import service as messaging
from toolkit.messaging.models import OutboundMessage, OutboundState
from toolkit.messaging.schemas import SendOutcome


def row(session, id_) -> OutboundMessage:
    session.expire_all()
    return session.get(OutboundMessage, id_)


def test_a_queued_message_is_claimed_once_until_its_lease_runs_out(session):
    contact = make_contact(session)
    (id_,) = messaging.enqueue(session, [outbound(contact)])

    (claimed,) = messaging.claim(session)
    assert claimed.id == id_ and claimed.attempts == 1 and not claimed.retried
    assert messaging.claim(session) == []  # leased
    assert row(session, id_).state == "sending"

    (again,) = messaging.claim(session, now=utcnow() + messaging.LEASE + timedelta(seconds=1))
    assert again.id == id_ and again.attempts == 2 and again.retried  # the sender died mid-send


@pytest.mark.parametrize("refusal", ["objected", "no marketing consent", "blocked", "suppressed", "no contact"])
def test_the_consent_gate_is_asked_right_before_sending(session, refusal):
    purpose = "marketing.line_push" if refusal == "no marketing consent" else "service.chat"
    contact = make_contact(session, consent_to={"marketing.line_push": "grant"} if purpose != "service.chat" else None)
    message = outbound(contact, purpose=purpose)
    if refusal == "no contact":
        message = dataclasses.replace(message, contact_id=None)
    (id_,) = messaging.enqueue(session, [message])
    # After the decision to send, before the send:
    if refusal == "objected":
        consent.object_to(session, contact_id=contact.id, purpose="service.chat", source="admin")
    elif refusal == "no marketing consent":
        consent.withdraw(session, contact_id=contact.id, purpose=purpose, source="admin")
    elif refusal == "blocked":
        contact.identities[0].blocked_at = utcnow()
    elif refusal == "suppressed":
        consent.suppress(session, identities=[("line", contact.identities[0].external_id)], reason="test")
    session.flush()

    assert messaging.claim(session) == []

    refused = row(session, id_)
    assert refused.state == "suppressed" and "consent gate" in refused.error
    assert messaging.claim(session, now=utcnow() + timedelta(hours=1)) == []  # final


def test_a_granted_marketing_message_passes_the_gate(session):
    contact = make_contact(session, consent_to={"marketing.line_push": "grant"})
    messaging.enqueue(session, [outbound(contact, purpose="marketing.line_push")])

    assert len(messaging.claim(session)) == 1


def test_enqueue_claimed_leases_to_the_caller_and_stores_refusals_as_suppressed(session):
    welcome = make_contact(session)
    objector = make_contact(session, consent_to={"service.chat": "object"})

    claimed = messaging.enqueue_claimed(session, [outbound(welcome), outbound(objector)])

    assert [c.recipient for c in claimed] == [welcome.identities[0].external_id]
    states = dict(session.execute(select(OutboundMessage.contact_id, OutboundMessage.state)).all())
    assert states[welcome.id] == "sending" and states[objector.id] == "suppressed"
    assert messaging.claim(session) == []  # the caller holds the lease


def test_one_recipients_messages_are_claimed_one_at_a_time_in_order(session):
    contact, other = make_contact(session), make_contact(session)
    first, second, third = messaging.enqueue(session, [outbound(contact, text=f"#{n}") for n in range(3)])
    (elsewhere,) = messaging.enqueue(session, [outbound(other)])

    claimed = {c.id: c for c in messaging.claim(session)}
    assert sorted(claimed) == [first, elsewhere]
    assert messaging.claim(session) == []  # #2 waits for #1 to be settled
    messaging.record(session, [SendOutcome(claimed[first], OutboundState.PUSH_SENT)])

    assert [c.id for c in messaging.claim(session)] == [second]
    assert messaging.claim(session) == []  # #3 waits for #2
    assert row(session, third).state == "queued"


def test_a_send_line_did_not_take_is_queued_with_backoff_then_failed_after_the_last_attempt(session):
    contact = make_contact(session)
    (id_,) = messaging.enqueue(session, [outbound(contact)])
    now = utcnow()
    for attempt in range(1, messaging.MAX_ATTEMPTS + 1):
        (claimed,) = messaging.claim(session, now=now)
        assert claimed.attempts == attempt
        messaging.record(session, [SendOutcome(claimed, None, "push got 500: boom")], now=now)
        stored = row(session, id_)
        if attempt < messaging.MAX_ATTEMPTS:
            assert stored.state == "queued" and stored.next_attempt_at == now + messaging.backoff(attempt)
            now = stored.next_attempt_at
    assert stored.state == "failed" and "gave up after 8 attempts" in stored.error
    assert messaging.claim(session, now=now + timedelta(days=1)) == []


def test_a_delivered_send_is_recorded_with_its_request_id_and_forgets_the_reply_token(session):
    contact = make_contact(session)
    (claimed,) = messaging.enqueue_claimed(session, [outbound(contact, reply_token="t" * 32)])

    messaging.record(session, [SendOutcome(claimed, OutboundState.REPLY_SENT, request_id="req-1",
                                           reply_token_spent=True)])

    stored = row(session, claimed.id)
    assert (stored.state, stored.line_request_id, stored.reply_token) == ("reply_sent", "req-1", None)
    assert stored.sent_at is not None and stored.locked_until is None
    assert messaging.count_by_state(session)["reply_sent"] >= 1


def test_erasure_stops_what_is_unsent_and_keeps_nothing_said(session):
    contact = make_contact(session)
    (sent_one,) = messaging.enqueue_claimed(session, [outbound(contact, text="secret words")])
    messaging.record(session, [SendOutcome(sent_one, OutboundState.PUSH_SENT)])
    (unsent,) = messaging.enqueue(session, [outbound(contact, text="more secret words")])

    messaging.erase_contact(session, contact.id)

    rows = session.scalars(select(OutboundMessage).where(OutboundMessage.contact_id == contact.id)).all()
    session.expire_all()
    assert {r.id: r.state for r in rows} == {sent_one.id: "push_sent", unsent: "suppressed"}
    assert all(r.messages == [] and r.recipient == "erased" for r in rows)
    assert messaging.claim(session) == []


def test_the_state_column_refuses_a_state_that_is_not_in_the_enum(session):
    contact = make_contact(session)
    (id_,) = messaging.enqueue(session, [outbound(contact)])
    with pytest.raises(IntegrityError), session.begin_nested():
        session.execute(text("UPDATE outbound_message SET state = 'sent' WHERE id = :id"), {"id": id_})


def test_a_retry_key_is_used_by_one_message_only(session):
    contact = make_contact(session)
    message = outbound(contact)
    messaging.enqueue(session, [message])
    with pytest.raises(IntegrityError), session.begin_nested():
        messaging.enqueue(session, [message])
