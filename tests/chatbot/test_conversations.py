"""Conversations: ownership (bot, waiting, human), idle release and erasure."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.auth.factories import make_user
from tests.contacts.factories import make_contact
from tests.chatbot.factories import customer_says
from toolkit.chatbot import conversations
from toolkit.chatbot.conversations import BOT, HUMAN, SYSTEM, WAITING
from toolkit.chatbot.models import ChatMessage, Conversation, UnansweredQuestion
from toolkit.chatbot import unanswered
from toolkit.contacts import service as contacts
from toolkit.kit.clock import utcnow
from toolkit.kit.errors import NotFound


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
