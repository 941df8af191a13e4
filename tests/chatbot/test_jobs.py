"""The chatbot's worker jobs, run inline on the test session, and the bot's installation
when the worker's loops start."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from tests.auth.factories import make_user
from tests.contacts.factories import make_contact
from tests.inbox.conftest import line_sandbox, sandbox_server  # noqa: F401 - fixtures
from toolkit import worker
from toolkit.chatbot import agent_replies, bot, conversations, jobs
from toolkit.chatbot.conversations import BOT, HUMAN
from toolkit.chatbot.deps import deliver
from toolkit.chatbot.models import ChatMessage
from toolkit.inbox import handlers
from toolkit.messaging.channel import line_client
from toolkit.kit.clock import utcnow
from toolkit.domains import PRODUCT
from toolkit.line import client as line
from toolkit.messaging import jobs as messaging_jobs
from toolkit.messaging import service as messaging


def test_jobs_are_declared_with_their_schedules():
    assert PRODUCT.jobs["chatbot.release_idle"].cron == "*/5 * * * *"
    assert PRODUCT.jobs["chatbot.retry_agent_pushes"].cron == "* * * * *"
    assert PRODUCT.event_handlers["text"] is bot.handle


def test_the_worker_installs_the_bot_while_its_loops_run():
    before = handlers.current_text_handler()
    # No loop threads: only the set-up is under test.
    loops = worker.LoopThreads(dataclasses.replace(PRODUCT, work_loops={}))

    loops.start()
    try:
        assert handlers.current_text_handler() is bot.handle
    finally:
        loops.stop()

    assert handlers.current_text_handler() is before


def test_release_idle_hands_quiet_conversations_back_to_the_bot(session):
    agent = make_user(session, roles=["agent"])
    quiet = conversations.conversation_for(session, contact_id=make_contact(session).id)
    conversations.hand_off(session, conversation_id=quiet.id, reason="keyword")
    conversations.take(session, conversation_id=quiet.id, user_id=agent.id, actor="a")
    quiet.last_message_at = utcnow() - timedelta(minutes=31)
    busy = conversations.conversation_for(session, contact_id=make_contact(session).id)
    conversations.hand_off(session, conversation_id=busy.id, reason="keyword")
    conversations.take(session, conversation_id=busy.id, user_id=agent.id, actor="a")
    session.flush()

    assert jobs.release_idle() >= 1

    session.expire_all()
    assert quiet.status == BOT and busy.status == HUMAN


def test_an_agent_push_line_did_not_take_is_retried_with_the_same_key(session, line_sandbox):  # noqa: F811
    agent = make_user(session, roles=["agent"])
    contact = make_contact(session)
    user = contact.identities[0].external_id
    conversation = conversations.conversation_for(session, contact_id=contact.id)
    plan = agent_replies.plan_agent_reply(session, conversation_id=conversation.id, text="您好，請問還需要協助嗎？",
                                          user_id=agent.id, actor="a")
    assert plan.reply_token is None  # the customer wrote nothing lately: push

    line_sandbox.set_faults({"accept_then_500": 1.0})
    assert deliver(session, plan) == line.PUSH_PENDING
    (message,) = messaging.of_source(session, agent_replies.SOURCE, plan.message_id)
    assert message.state == "queued" and message.next_attempt_at > utcnow()

    line_sandbox.set_faults({})
    assert messaging_jobs.send_due() == 0  # not due yet: backoff
    message.next_attempt_at = utcnow()
    session.flush()
    assert messaging_jobs.send_due() == 1

    session.expire_all()
    assert session.get(ChatMessage, plan.message_id).delivery == line.PUSH_SENT
    pushes = [m for m in line_sandbox.messages() if user in m["to"]]
    assert [m["status"] for m in pushes] == [500, 409]
    assert {m["retry_key"] for m in pushes} == {plan.retry_key}
    assert messaging_jobs.send_due() == 0


def test_an_agent_push_left_pending_by_an_earlier_version_is_handed_to_the_pipeline(session, line_sandbox):  # noqa: F811
    contact = make_contact(session)
    user = contact.identities[0].external_id
    conversation = conversations.conversation_for(session, contact_id=contact.id)
    legacy = conversations.add_message(session, conversation, direction="out", sender="agent", text="稍等",
                                       delivery=line.PUSH_PENDING)
    session.flush()

    assert jobs.retry_agent_pushes() == 1
    assert jobs.retry_agent_pushes() == 0  # handed over once
    assert messaging_jobs.send_due() == 1

    session.expire_all()
    assert session.get(ChatMessage, legacy.id).delivery == line.PUSH_SENT
    (push,) = [m for m in line_sandbox.messages() if user in m["to"]]
    assert push["retry_key"] == line.retry_key("agent-reply", str(legacy.id))
