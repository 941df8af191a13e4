"""Conversations: ownership (bot, waiting, human), agent replies (reply token or push),
idle release and erasure."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.auth.factories import make_user
from tests.contacts.factories import make_contact
from tests.inbox.conftest import line_sandbox, sandbox_server  # noqa: F401 - fixtures
from tests.inbox.factories import event, store
from toolkit.chatbot import conversations
from toolkit.chatbot.conversations import AGENT, BOT, CUSTOMER, HUMAN, IN, SYSTEM, WAITING
from toolkit.chatbot.models import ChatMessage, Conversation, UnansweredQuestion
from toolkit.chatbot import unanswered
from toolkit.consent import service as consent
from toolkit.contacts import service as contacts
from toolkit.inbox.channel import line_client
from toolkit.kit.clock import utcnow
from toolkit.kit.errors import ConsentDenied, NotFound
from toolkit.line import client as line


def customer_says(session, contact, text, *, at=None):
    """A customer message as the bot records it: with its stored webhook event."""
    external_id = contact.identities[0].external_id
    (row,) = store(session, event("message", external_id, text=text))
    if at is not None:
        row.received_at = at
    conversation = conversations.conversation_for(session, contact_id=contact.id)
    conversations.add_message(session, conversation, direction=IN, sender=CUSTOMER, text=text,
                              webhook_event_id=row.id, now=at)
    return conversation, row


def test_conversation_for_creates_one_bot_owned_conversation_per_contact(session):
    contact = make_contact(session)

    first = conversations.conversation_for(session, contact_id=contact.id)
    again = conversations.conversation_for(session, contact_id=contact.id)

    assert first.id == again.id and first.status == BOT and first.misses == 0
    assert conversations.get(session, first.id) is first
    with pytest.raises(NotFound):
        conversations.require(session, 10**9)


def test_hand_off_take_and_release(session):
    agent = make_user(session, roles=["agent"])
    contact = make_contact(session)
    conversation, _ = customer_says(session, contact, "我要客訴")
    waiting_before = conversations.waiting_count(session)

    conversations.hand_off(session, conversation_id=conversation.id, reason="complaint")
    assert conversation.status == WAITING and conversation.handoff_reason == "complaint"
    assert conversation.handoff_at is not None
    assert conversations.waiting_count(session) == waiting_before + 1

    conversations.take(session, conversation_id=conversation.id, user_id=agent.id, actor=agent.email)
    assert conversation.status == HUMAN and conversation.assignee_id == agent.id
    assert conversations.waiting_count(session) == waiting_before

    conversation.misses = 2
    conversations.release(session, conversation_id=conversation.id, actor=agent.email)
    assert conversation.status == BOT and conversation.assignee_id is None and conversation.misses == 0
    notes = [m.text for m in conversations.messages(session, conversation_id=conversation.id) if m.sender == SYSTEM]
    assert notes[0] == "handed off: complaint" and notes[-1].startswith("released to the bot (agent)")


def test_list_conversations_newest_activity_first_with_contacts(session):
    older, newer = make_contact(session, display_name="Older"), make_contact(session, display_name="Newer")
    now = utcnow()
    customer_says(session, older, "在嗎", at=now - timedelta(minutes=5))
    waiting, _ = customer_says(session, newer, "真人", at=now)
    conversations.hand_off(session, conversation_id=waiting.id, reason="keyword")

    rows, total = conversations.list_conversations(session, limit=500)
    names = [c.contact.display_name for c in rows]
    assert names.index("Newer") < names.index("Older") and total >= 2

    rows, total = conversations.list_conversations(session, status=WAITING, limit=500)
    assert waiting in rows and all(c.status == WAITING for c in rows)


def test_messages_are_oldest_first_and_limited_to_the_newest(session):
    contact = make_contact(session)
    for n in range(5):
        conversation, _ = customer_says(session, contact, f"第{n}則")

    texts = [m.text for m in conversations.messages(session, conversation_id=conversation.id, limit=3)]

    assert texts == ["第2則", "第3則", "第4則"]


def test_an_agent_reply_uses_the_fresh_unused_reply_token(session):
    agent = make_user(session, roles=["agent"])
    contact = make_contact(session)
    conversation, row = customer_says(session, contact, "真人客服")
    conversations.hand_off(session, conversation_id=conversation.id, reason="keyword")

    reply = conversations.plan_agent_reply(session, conversation_id=conversation.id, text=" 您好，我來協助您 ",
                                           user_id=agent.id, actor=agent.email)

    assert reply.reply_token == row.reply_token
    assert reply.user_id == contact.identities[0].external_id
    assert reply.messages == [{"type": "text", "text": "您好，我來協助您"}]
    assert reply.retry_key == line.retry_key("agent-reply", str(reply.message_id))
    message = session.get(ChatMessage, reply.message_id)
    assert message.sender == AGENT and message.delivery == "pending" and message.author_id == agent.id
    assert conversation.status == HUMAN and conversation.assignee_id == agent.id  # taken by answering

    # The token is single use: the agent's second message goes by push.
    second = conversations.plan_agent_reply(session, conversation_id=conversation.id, text="還有其他問題嗎？",
                                            user_id=agent.id, actor=agent.email)
    assert second.reply_token is None


def test_an_old_or_bot_used_reply_token_means_push(session):
    agent = make_user(session, roles=["agent"])
    contact = make_contact(session)
    conversation, _ = customer_says(session, contact, "在嗎", at=utcnow() - timedelta(seconds=55))
    conversations.hand_off(session, conversation_id=conversation.id, reason="keyword")
    assert conversations.plan_agent_reply(session, conversation_id=conversation.id, text="您好",
                                          user_id=agent.id, actor="a").reply_token is None

    _, row = customer_says(session, contact, "真人")
    row.replies = {"purpose": "service.chat", "messages": [line.text_message("稍等")]}  # the bot answered it
    assert conversations.plan_agent_reply(session, conversation_id=conversation.id, text="您好",
                                          user_id=agent.id, actor="a").reply_token is None


@pytest.mark.parametrize("text", ["", "   ", "字" * 5001, "😀" * 2501])
def test_an_agent_reply_must_fit_one_line_text_message(session, text):
    agent = make_user(session, roles=["agent"])
    conversation, _ = customer_says(session, make_contact(session), "真人")

    with pytest.raises(conversations.ReplyInvalid):
        conversations.plan_agent_reply(session, conversation_id=conversation.id, text=text, user_id=agent.id,
                                       actor="a")


def test_no_agent_reply_to_someone_who_objected_to_service_chat(session):
    agent = make_user(session, roles=["agent"])
    contact = make_contact(session)
    conversation, _ = customer_says(session, contact, "真人")
    consent.object_to(session, contact_id=contact.id, purpose="service.chat", source="admin")

    with pytest.raises(ConsentDenied):
        conversations.plan_agent_reply(session, conversation_id=conversation.id, text="您好", user_id=agent.id,
                                       actor="a")
    assert not [m for m in conversations.messages(session, conversation_id=conversation.id) if m.sender == AGENT]


def test_sending_an_agent_reply_by_reply_token_then_by_push(session, line_sandbox):
    agent = make_user(session, roles=["agent"])
    contact = make_contact(session)
    user = contact.identities[0].external_id
    conversation, row = customer_says(session, contact, "真人客服")
    line_sandbox.register_reply_token(row.reply_token, user)
    client = line_client()
    try:
        first = conversations.plan_agent_reply(session, conversation_id=conversation.id, text="您好",
                                               user_id=agent.id, actor="a")
        assert conversations.send_agent_reply(client, first) == line.REPLY_SENT
        conversations.record_agent_delivery(session, message_id=first.message_id, delivery=line.REPLY_SENT)

        second = conversations.plan_agent_reply(session, conversation_id=conversation.id, text="請問訂單編號？",
                                                user_id=agent.id, actor="a")
        assert conversations.send_agent_reply(client, second) == line.PUSH_SENT
        # The same plan sent again (a double click, a retry) is deduplicated by LINE.
        assert conversations.send_agent_reply(client, second) == line.PUSH_SENT
    finally:
        client.close()

    sent = [m for m in line_sandbox.messages() if user in m["to"] and m["accepted"]]
    assert [m["endpoint"] for m in sent] == ["reply", "push"]
    assert sent[1]["retry_key"] == second.retry_key
    assert session.get(ChatMessage, first.message_id).delivery == line.REPLY_SENT


def test_release_idle_returns_quiet_conversations_to_the_bot(session):
    agent = make_user(session, roles=["agent"])
    now = utcnow()
    quiet, _ = customer_says(session, make_contact(session), "真人", at=now - timedelta(minutes=45))
    conversations.hand_off(session, conversation_id=quiet.id, reason="keyword", now=now - timedelta(minutes=45))
    conversations.take(session, conversation_id=quiet.id, user_id=agent.id, actor="a")
    busy, _ = customer_says(session, make_contact(session), "真人", at=now - timedelta(minutes=5))
    conversations.hand_off(session, conversation_id=busy.id, reason="keyword", now=now - timedelta(minutes=5))

    released = conversations.release_idle(session, idle_minutes=30, now=now)

    assert released >= 1
    assert quiet.status == BOT and busy.status == WAITING


def test_release_idle_waits_for_opening_time_after_a_handoff_while_closed(session):
    now = utcnow()
    conversation, _ = customer_says(session, make_contact(session), "真人", at=now - timedelta(hours=3))
    conversations.hand_off(session, conversation_id=conversation.id, reason="keyword", now=now - timedelta(hours=3))

    # People come back in an hour: the customer was promised someone then.
    conversations.release_idle(session, idle_minutes=30, now=now, opens_after=lambda t: now + timedelta(hours=1))
    assert conversation.status == WAITING

    # Opened 40 minutes ago and nobody answered: back to the bot.
    conversations.release_idle(session, idle_minutes=30, now=now, opens_after=lambda t: now - timedelta(minutes=40))
    assert conversation.status == BOT


def test_erasing_a_contact_deletes_their_conversation_messages_and_questions(session):
    contact = make_contact(session)
    conversation, _ = customer_says(session, contact, "我的電話是0912345678，東西還沒到")
    message = conversations.messages(session, conversation_id=conversation.id)[0]
    unanswered.record(session, text=message.text, contact_id=contact.id, message_id=message.id,
                      best_entry_key=None, score=0.1)
    other = make_contact(session)
    kept, _ = customer_says(session, other, "運費多少")

    contacts.erase(session, contact_id=contact.id, actor="privacy")

    count = select(func.count()).select_from
    assert session.scalar(count(Conversation).where(Conversation.contact_id == contact.id)) == 0
    assert session.scalar(count(ChatMessage).where(ChatMessage.conversation_id == conversation.id)) == 0
    assert session.scalar(count(UnansweredQuestion).where(UnansweredQuestion.contact_id == contact.id)) == 0
    assert conversations.messages(session, conversation_id=kept.id)[0].text == "運費多少"
