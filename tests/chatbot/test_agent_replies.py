"""An agent's reply: the reply token while it is fresh and unused, else a push; checks
and the consent gate first."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.auth.factories import make_user
from tests.chatbot.factories import customer_says
from tests.contacts.factories import make_contact
from tests.inbox.conftest import line_sandbox, sandbox_server  # noqa: F401 - fixtures
from toolkit.chatbot import agent_replies, conversations
from toolkit.chatbot.conversations import AGENT, HUMAN
from toolkit.chatbot.deps import deliver
from toolkit.chatbot.models import ChatMessage
from toolkit.consent import service as consent
from toolkit.messaging.channel import line_client
from toolkit.kit.clock import utcnow
from toolkit.kit.errors import ConsentDenied
from toolkit.line import client as line
from toolkit.messaging import sender


def test_an_agent_reply_uses_the_fresh_unused_reply_token(session):
    agent = make_user(session, roles=["agent"])
    contact = make_contact(session)
    conversation, row = customer_says(session, contact, "真人客服")
    conversations.hand_off(session, conversation_id=conversation.id, reason="keyword")

    reply = agent_replies.plan_agent_reply(session, conversation_id=conversation.id, text=" 您好，我來協助您 ",
                                           user_id=agent.id, actor=agent.email)

    assert reply.reply_token == row.reply_token
    assert reply.user_id == contact.identities[0].external_id
    assert reply.messages == [{"type": "text", "text": "您好，我來協助您"}]
    assert reply.retry_key == line.retry_key("agent-reply", str(reply.message_id))
    message = session.get(ChatMessage, reply.message_id)
    assert message.sender == AGENT and message.delivery == "pending" and message.author_id == agent.id
    assert conversation.status == HUMAN and conversation.assignee_id == agent.id  # taken by answering

    # The token is single use: the agent's second message goes by push.
    second = agent_replies.plan_agent_reply(session, conversation_id=conversation.id, text="還有其他問題嗎？",
                                            user_id=agent.id, actor=agent.email)
    assert second.reply_token is None


def test_an_old_or_bot_used_reply_token_means_push(session):
    agent = make_user(session, roles=["agent"])
    contact = make_contact(session)
    conversation, _ = customer_says(session, contact, "在嗎", at=utcnow() - timedelta(seconds=55))
    conversations.hand_off(session, conversation_id=conversation.id, reason="keyword")
    assert agent_replies.plan_agent_reply(session, conversation_id=conversation.id, text="您好",
                                          user_id=agent.id, actor="a").reply_token is None

    _, row = customer_says(session, contact, "真人")
    row.replies = {"purpose": "service.chat", "messages": [line.text_message("稍等")]}  # the bot answered it
    assert agent_replies.plan_agent_reply(session, conversation_id=conversation.id, text="您好",
                                          user_id=agent.id, actor="a").reply_token is None


@pytest.mark.parametrize("text", ["", "   ", "字" * 5001, "😀" * 2501])
def test_an_agent_reply_must_fit_one_line_text_message(session, text):
    agent = make_user(session, roles=["agent"])
    conversation, _ = customer_says(session, make_contact(session), "真人")

    with pytest.raises(agent_replies.ReplyInvalid):
        agent_replies.plan_agent_reply(session, conversation_id=conversation.id, text=text, user_id=agent.id,
                                       actor="a")


def test_no_agent_reply_to_someone_who_objected_to_service_chat(session):
    agent = make_user(session, roles=["agent"])
    contact = make_contact(session)
    conversation, _ = customer_says(session, contact, "真人")
    consent.object_to(session, contact_id=contact.id, purpose="service.chat", source="admin")

    with pytest.raises(ConsentDenied):
        agent_replies.plan_agent_reply(session, conversation_id=conversation.id, text="您好", user_id=agent.id,
                                       actor="a")
    assert not [m for m in conversations.messages(session, conversation_id=conversation.id) if m.sender == AGENT]


def test_sending_an_agent_reply_by_reply_token_then_by_push(session, line_sandbox):
    agent = make_user(session, roles=["agent"])
    contact = make_contact(session)
    user = contact.identities[0].external_id
    conversation, row = customer_says(session, contact, "真人客服")
    line_sandbox.register_reply_token(row.reply_token, user)
    first = agent_replies.plan_agent_reply(session, conversation_id=conversation.id, text="您好",
                                           user_id=agent.id, actor="a")
    assert deliver(session, first) == line.REPLY_SENT

    second = agent_replies.plan_agent_reply(session, conversation_id=conversation.id, text="請問訂單編號？",
                                            user_id=agent.id, actor="a")
    assert deliver(session, second) == line.PUSH_SENT
    # The same outbound message sent again (a retry after a crash) is deduplicated by LINE.
    client = line_client()
    try:
        (again,) = sender.attempt(client, [second.outbound])
    finally:
        client.close()
    assert again.state == "push_sent"

    sent = [m for m in line_sandbox.messages() if user in m["to"] and m["accepted"]]
    assert [m["endpoint"] for m in sent] == ["reply", "push"]
    assert sent[1]["retry_key"] == second.retry_key
    assert session.get(ChatMessage, first.message_id).delivery == line.REPLY_SENT
