"""Sending through the LINE sandbox: push, multicast per 500, each send recorded, and a
send whose outcome was lost retried without anyone getting it twice."""

from __future__ import annotations

import secrets as random_tokens
from datetime import timedelta

import pytest

from tests.contacts.factories import make_contact
from tests.messaging.factories import outbound
from toolkit.kit.clock import moved
from toolkit.messaging import jobs, sender
from toolkit.messaging import service as messaging
from toolkit.messaging.channel import line_client
from toolkit.messaging.models import OutboundMessage
from toolkit.messaging.sending import NOT_PUSHED


def delivered_to(line_sandbox, user):
    return [m for m in line_sandbox.messages() if user in m["to"] and m["accepted"]]


def stored(session, id_) -> OutboundMessage:
    session.expire_all()
    return session.get(OutboundMessage, id_)


def send_all() -> int:
    total = 0
    while sent := jobs.send_due():
        total += sent
    return total


def test_a_queued_push_is_sent_with_its_retry_key_and_recorded(session, line_sandbox):
    contact = make_contact(session)
    message = outbound(contact, text="您的訂單已出貨")
    (id_,) = messaging.enqueue(session, [message])

    assert send_all() == 1

    (push,) = delivered_to(line_sandbox, contact.identities[0].external_id)
    assert push["endpoint"] == "push" and push["retry_key"] == message.retry_key
    row = stored(session, id_)
    assert row.state == "push_sent" and row.line_request_id and row.sent_at is not None


def test_a_reply_token_goes_first_and_push_only_where_the_purpose_allows(session, line_sandbox):
    allowed, refused = make_contact(session), make_contact(session)
    tokens = {c.id: random_tokens.token_hex(16) for c in (allowed, refused)}
    for contact in (allowed, refused):
        line_sandbox.register_reply_token(tokens[contact.id], contact.identities[0].external_id, ttl_s=0)
    ids = messaging.enqueue(session, [
        outbound(allowed, reply_token=tokens[allowed.id], push_allowed=True),
        outbound(refused, reply_token=tokens[refused.id], push_allowed=False),
    ])

    send_all()

    assert [m["endpoint"] for m in delivered_to(line_sandbox, allowed.identities[0].external_id)] == ["push"]
    assert delivered_to(line_sandbox, refused.identities[0].external_id) == []
    assert [stored(session, i).state for i in ids] == ["push_sent", "failed"]


def test_a_campaign_batch_goes_out_as_one_multicast_per_500(session, line_sandbox):
    contacts = [make_contact(session) for _ in range(501)]
    messaging.enqueue(session, [outbound(c, text="冬季莓果禮盒上市", group_key="campaign-7:batch-1") for c in contacts])

    assert send_all() == 501

    multicasts = [m for m in line_sandbox.messages() if m["endpoint"] == "multicast"]
    assert sorted(len(m["to"]) for m in multicasts) == [1, 500]
    assert {u for m in multicasts for u in m["to"]} == {c.identities[0].external_id for c in contacts}
    assert messaging.count_by_state(session)["push_sent"] == 501


def test_a_push_sent_but_not_recorded_is_retried_and_answered_409_not_delivered_twice(session, line_sandbox,
                                                                                     monkeypatch):
    contact = make_contact(session)
    (id_,) = messaging.enqueue(session, [outbound(contact)])

    def killed(*args, **kwargs):
        raise SystemExit("killed before recording")

    with monkeypatch.context() as patched, pytest.raises(SystemExit):
        patched.setattr(messaging, "record", killed)
        jobs.send_due()
    assert send_all() == 0  # leased to the dead sender
    with moved(messaging.LEASE * 2):
        assert send_all() == 1

    user = contact.identities[0].external_id
    assert len(delivered_to(line_sandbox, user)) == 1
    assert [m["status"] for m in line_sandbox.messages() if user in m["to"]] == [200, 409]
    assert stored(session, id_).state == "push_sent"


def test_a_multicast_batch_retried_after_a_crash_is_not_delivered_twice(session, line_sandbox, monkeypatch):
    contacts = [make_contact(session) for _ in range(3)]
    messaging.enqueue(session, [outbound(c, group_key="campaign-8:batch-1") for c in contacts])

    with monkeypatch.context() as patched, pytest.raises(SystemExit):
        patched.setattr(messaging, "record", lambda *a, **k: (_ for _ in ()).throw(SystemExit("killed")))
        jobs.send_due()
    with moved(messaging.LEASE * 2):
        send_all()

    for contact in contacts:
        assert len(delivered_to(line_sandbox, contact.identities[0].external_id)) == 1
    assert [m["status"] for m in line_sandbox.messages() if m["endpoint"] == "multicast"] == [200, 409]


def test_an_interrupted_reply_whose_token_was_used_is_never_pushed(session, line_sandbox):
    contact = make_contact(session)
    user = contact.identities[0].external_id
    token = random_tokens.token_hex(16)
    line_sandbox.register_reply_token(token, user)
    (claimed,) = messaging.enqueue_claimed(session, [outbound(contact, reply_token=token, push_allowed=True)])
    client = line_client()
    try:
        sender.attempt(client, [claimed])  # sent; the worker dies before recording it
        (retry,) = messaging.claim(session, now=claimed.locked_until + timedelta(seconds=1))
        (outcome,) = sender.attempt(client, [retry])
    finally:
        client.close()

    assert retry.retried and outcome.state == "unknown" and outcome.error == NOT_PUSHED
    assert len(delivered_to(line_sandbox, user)) == 1


def test_a_row_whose_lease_ran_out_before_its_turn_is_not_sent(session, line_sandbox):
    contact = make_contact(session)
    (claimed,) = messaging.enqueue_claimed(session, [outbound(contact)])
    client = line_client()
    try:
        with moved(messaging.LEASE * 2):
            assert sender.attempt(client, [claimed]) == []
    finally:
        client.close()
    assert delivered_to(line_sandbox, contact.identities[0].external_id) == []


def test_without_a_channel_sends_wait_and_are_retried_with_backoff(session, line_sandbox, monkeypatch):
    contact = make_contact(session)
    (id_,) = messaging.enqueue(session, [outbound(contact)])
    for name in ("TOOLKIT_LINE_API_BASE", "TOOLKIT_LINE_CHANNEL_ACCESS_TOKEN", "TOOLKIT_LINE_SANDBOX"):
        monkeypatch.delenv(name, raising=False)
    from toolkit.settings import get_settings
    get_settings.cache_clear()

    assert jobs.send_due() == 1
    row = stored(session, id_)
    assert row.state == "queued" and row.attempts == 1 and "not set" in row.error
