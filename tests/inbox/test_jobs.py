"""The worker's side of the inbox: handle, answer through LINE (the sandbox), retry."""

from __future__ import annotations

from sqlalchemy import select

from tests.inbox.factories import event, line_user_id, store
from toolkit.consent import service as consent
from toolkit.contacts import service as contacts
from toolkit.inbox import handlers, jobs, service
from toolkit.inbox.handlers import Outcome
from toolkit.inbox.models import WebhookEvent
from toolkit.line.client import text_message


def arrive(session, line_sandbox, *events, valid_tokens=True):
    """Store events as the webhook does; their reply tokens are valid at the sandbox."""
    rows = store(session, *events)
    for row in rows:
        if valid_tokens and row.reply_token:
            line_sandbox.register_reply_token(row.reply_token, row.user_id)
    return rows


def run_worker(session) -> None:
    while jobs.process_events():
        pass
    session.expire_all()


def sent(line_sandbox, user):
    return [m for m in line_sandbox.messages() if user in m["to"] and m["accepted"]]


def test_a_follow_is_welcomed_once_by_reply(session, line_sandbox):
    user = line_user_id()
    (row,) = arrive(session, line_sandbox, event("follow", user))

    run_worker(session)

    (welcome,) = sent(line_sandbox, user)
    assert welcome["endpoint"] == "reply" and "取消訂閱" in welcome["messages"][0]["text"]
    assert row.status == "done" and row.delivery == "reply_sent"
    contact = contacts.require_by_external_id(session, user)
    assert contact.display_name.startswith("Sandbox user")  # from LINE's profile API


def test_opt_out_is_confirmed_once_and_excludes_marketing(session, line_sandbox):
    user = line_user_id()
    arrive(session, line_sandbox, event("follow", user), event("message", user, text="取消訂閱"))

    run_worker(session)

    welcome, confirmation = sent(line_sandbox, user)
    assert "訂閱" in confirmation["messages"][0]["text"]
    contact = contacts.require_by_external_id(session, user)
    assert consent.allowed(session, [contact.id], purpose="marketing.line_push", channel="line") == set()


def test_redelivered_and_duplicated_events_produce_exactly_one_reply(session, line_sandbox):
    user = line_user_id()
    follow = event("follow", user)
    arrive(session, line_sandbox, follow)
    run_worker(session)
    arrive(session, line_sandbox, {**follow, "deliveryContext": {"isRedelivery": True}}, follow)

    run_worker(session)

    assert len(sent(line_sandbox, user)) == 1


def test_an_expired_reply_token_falls_back_to_push_with_a_retry_key(session, line_sandbox):
    user = line_user_id()
    arrive(session, line_sandbox, event("follow", user), valid_tokens=False)

    run_worker(session)

    (welcome,) = sent(line_sandbox, user)
    assert welcome["endpoint"] == "push" and welcome["retry_key"]


def test_line_down_retries_the_push_with_the_same_key_and_sends_once(session, line_sandbox):
    user = line_user_id()
    (row,) = arrive(session, line_sandbox, event("follow", user), valid_tokens=False)
    line_sandbox.set_faults({"accept_then_500": 1.0})
    run_worker(session)
    assert row.status == "pending" and row.delivery == "push_pending"  # retried later

    line_sandbox.set_faults({})
    row.next_attempt_at = row.received_at
    session.flush()
    run_worker(session)

    pushes = [m for m in line_sandbox.messages() if user in m["to"]]
    assert [m["status"] for m in pushes] == [500, 409]
    assert len({m["retry_key"] for m in pushes}) == 1
    assert row.status == "done" and row.delivery == "push_sent"


def test_a_crash_mid_reply_never_leads_to_a_second_message(session, line_sandbox):
    user = line_user_id()
    (row,) = arrive(session, line_sandbox, event("follow", user))
    row.handled_at = row.received_at
    row.replies = {"purpose": "service.chat", "messages": [text_message("hi")]}
    row.delivery = "reply_pending"  # as a worker killed after sending leaves it
    session.flush()

    run_worker(session)

    assert sent(line_sandbox, user) == []
    assert row.status == "done" and row.delivery == "unknown"


def test_other_text_goes_to_the_registered_text_handler(session, line_sandbox):
    user = line_user_id()
    arrive(session, line_sandbox, event("message", user, text="營業時間？"))
    handlers.register_text_handler(lambda s, ctx: Outcome("answered", [text_message(f"you said {ctx.text}")]))
    try:
        run_worker(session)
    finally:
        handlers.register_text_handler(None)

    (answer,) = sent(line_sandbox, user)
    assert answer["messages"][0]["text"] == "you said 營業時間？"


def test_a_handler_that_raises_is_retried_not_dropped(session, line_sandbox):
    user = line_user_id()
    (row,) = arrive(session, line_sandbox, event("message", user, text="boom"))

    def broken(s, ctx):
        raise RuntimeError("handler exploded")

    handlers.register_text_handler(broken)
    try:
        run_worker(session)
    finally:
        handlers.register_text_handler(None)

    assert row.status == "pending" and row.attempts == 1 and "handler exploded" in row.last_error
    assert row.next_attempt_at > row.received_at


def test_events_of_other_types_are_marked_ignored(session, line_sandbox):
    beacon = {**event("follow", line_user_id()), "type": "beacon"}
    (row,) = arrive(session, line_sandbox, beacon)

    run_worker(session)

    assert session.scalar(select(WebhookEvent.status).where(WebhookEvent.id == row.id)) == "ignored"
    assert service.count_by_status(session).get("ignored", 0) >= 1
