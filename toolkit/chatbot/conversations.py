"""Conversations on LINE: who owns each one (the bot, nobody yet, a person), its messages,
handing it to people and back. An agent's reply is in toolkit.chatbot.agent_replies.

System notes (handed off, taken, released) are kept as messages with sender "system" and
direction "out" but are never sent: they tell staff what happened in the conversation.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, selectinload

from toolkit.audit import service as audit
from toolkit.chatbot.models import ChatMessage, Conversation, UnansweredQuestion
from toolkit.consent import service as consent
from toolkit.inbox.handlers import SERVICE_PURPOSE
from toolkit.kit.clock import utcnow
from toolkit.kit.errors import NotFound

BOT, WAITING, HUMAN = "bot", "waiting", "human"
STATUSES = (BOT, WAITING, HUMAN)
IN, OUT = "in", "out"
CUSTOMER, BOT_SENDER, AGENT, SYSTEM = "customer", "bot", "agent", "system"
CHANNEL = "line"


class ConversationNotFound(NotFound):
    code = "conversation_not_found"

    def __init__(self, conversation_id: int) -> None:
        super().__init__(f"no conversation {conversation_id}", conversation_id=conversation_id)


# --- reading ----------------------------------------------------------------------------

def get(session: Session, conversation_id: int) -> Conversation | None:
    return session.get(Conversation, conversation_id)


def require(session: Session, conversation_id: int) -> Conversation:
    conversation = get(session, conversation_id)
    if conversation is None:
        raise ConversationNotFound(conversation_id)
    return conversation


def find(session: Session, *, contact_id: int) -> Conversation | None:
    return session.scalar(select(Conversation).where(Conversation.contact_id == contact_id))


def by_contacts(session: Session, contact_ids: Sequence[int]) -> dict[int, Conversation]:
    """The conversations of these contacts (those that have one), in one query per 500."""
    found: dict[int, Conversation] = {}
    for start in range(0, len(contact_ids), 500):
        chunk = contact_ids[start : start + 500]
        rows = session.scalars(select(Conversation).where(Conversation.contact_id.in_(chunk)))
        found.update((conversation.contact_id, conversation) for conversation in rows)
    return found


def conversation_for(session: Session, *, contact_id: int) -> Conversation:
    """The contact's conversation, created (owned by the bot) on their first message.

    INSERT ... ON CONFLICT DO NOTHING: two workers handling two messages of one new
    contact at once both end up with the one row instead of a unique-key error."""
    conversation = find(session, contact_id=contact_id)
    if conversation is not None:
        return conversation
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    now = utcnow()
    # Values as parameters and the conflict target as a column: a statement SQLAlchemy caches.
    session.execute(
        insert(Conversation.__table__).on_conflict_do_nothing(index_elements=[Conversation.__table__.c.contact_id]),
        {"contact_id": contact_id, "status": BOT, "misses": 0, "last_message_at": now, "created_at": now},
    )
    conversation = find(session, contact_id=contact_id)
    assert conversation is not None
    return conversation


def list_conversations(
    session: Session, *, status: str | None = None, limit: int = 50, offset: int = 0,
) -> tuple[list[Conversation], int]:
    """Newest activity first, each with its contact loaded."""
    query = select(Conversation)
    if status:
        query = query.where(Conversation.status == status)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.options(selectinload(Conversation.contact))
        .order_by(Conversation.last_message_at.desc(), Conversation.id.desc())
        .limit(limit).offset(offset)
    ).all()
    return list(rows), total


def waiting_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Conversation).where(Conversation.status == WAITING)) or 0


def counts(session: Session) -> dict[str, int]:
    """Conversations in each status (every status present, zero when none)."""
    rows = session.execute(select(Conversation.status, func.count()).group_by(Conversation.status)).all()
    return {s: 0 for s in STATUSES} | {status: count for status, count in rows}


def messages(session: Session, *, conversation_id: int, limit: int = 200) -> list[ChatMessage]:
    """The newest `limit` messages, oldest first."""
    newest = (select(ChatMessage).where(ChatMessage.conversation_id == conversation_id)
              .order_by(ChatMessage.id.desc()).limit(limit))
    return list(reversed(session.scalars(newest).all()))


def last_bot_message_at(session: Session, *, conversation_id: int) -> datetime | None:
    """When the bot last said something in the conversation (None: never)."""
    return session.scalar(select(func.max(ChatMessage.created_at)).where(
        ChatMessage.conversation_id == conversation_id, ChatMessage.sender == BOT_SENDER))


# --- recording --------------------------------------------------------------------------

def add_message(
    session: Session, conversation: Conversation, *, direction: str, sender: str, text: str,
    now: datetime | None = None, flush: bool = True, **fields: Any,
) -> ChatMessage:
    """Append a message; customer, bot and agent messages count as activity. `flush` False
    leaves the INSERT to the next flush (the message has no id until then)."""
    now = now or utcnow()
    message = ChatMessage(conversation_id=conversation.id, direction=direction, sender=sender, text=text,
                          created_at=now, **fields)
    session.add(message)
    if sender != SYSTEM:
        conversation.last_message_at = now
    if sender == CUSTOMER:
        conversation.last_customer_at = now
    if flush:
        session.flush()
    return message


def _note(session: Session, conversation: Conversation, text: str, now: datetime) -> ChatMessage:
    return add_message(session, conversation, direction=OUT, sender=SYSTEM, text=text, now=now)


# --- ownership --------------------------------------------------------------------------

def hand_off(session: Session, *, conversation_id: int, reason: str, now: datetime | None = None) -> Conversation:
    """Give the conversation to people: it waits in the agents' inbox, and the bot is
    silent until it is released. A conversation already with people keeps its reason."""
    conversation = require(session, conversation_id)
    if conversation.status != BOT:
        return conversation
    now = now or utcnow()
    conversation.status, conversation.assignee_id = WAITING, None
    conversation.handoff_reason, conversation.handoff_at = reason[:64], now
    _note(session, conversation, f"handed off: {reason}", now)
    return conversation


def take(session: Session, *, conversation_id: int, user_id: int, actor: str) -> Conversation:
    """An agent takes the conversation (from the queue, or over from a colleague)."""
    conversation = require(session, conversation_id)
    now = utcnow()
    if conversation.status == HUMAN and conversation.assignee_id == user_id:
        return conversation
    conversation.status, conversation.assignee_id = HUMAN, user_id
    conversation.handoff_at = conversation.handoff_at or now
    _note(session, conversation, f"taken by {actor}", now)
    audit.record(session, actor=actor, action="chatbot.conversation.take", target_type="conversation",
                 target_id=conversation.id, details={"assignee_id": user_id})
    return conversation


def release(session: Session, *, conversation_id: int, actor: str, reason: str = "agent",
            now: datetime | None = None) -> Conversation:
    """Back to the bot: it answers again, with a fresh count of misses."""
    conversation = require(session, conversation_id)
    if conversation.status == BOT:
        return conversation
    now = now or utcnow()
    conversation.status, conversation.assignee_id = BOT, None
    conversation.handoff_reason, conversation.handoff_at, conversation.misses = None, None, 0
    _note(session, conversation, f"released to the bot ({reason}) by {actor}", now)
    audit.record(session, actor=actor, action="chatbot.conversation.release", target_type="conversation",
                 target_id=conversation.id, details={"reason": reason})
    return conversation


def release_idle(session: Session, *, idle_minutes: int, now: datetime | None = None,
                 opens_after: Any = None) -> int:
    """Conversations with people (waiting or taken) where nothing was said for
    `idle_minutes` go back to the bot. Returns how many.

    `opens_after(t)`: when people are next at work from t (the business hours). A
    conversation handed off while closed was promised a person at the next opening: its
    idle time counts from that opening, not from the handoff."""
    now = now or utcnow()
    cutoff = now - timedelta(minutes=idle_minutes)
    idle = session.scalars(
        select(Conversation).where(Conversation.status.in_((WAITING, HUMAN)), Conversation.last_message_at < cutoff)
        .order_by(Conversation.id)
    ).all()
    released = 0
    for conversation in idle:
        if conversation.status == WAITING and opens_after is not None:
            since = max(conversation.last_message_at, conversation.handoff_at or conversation.last_message_at)
            if opens_after(since) > cutoff:
                continue
        release(session, conversation_id=conversation.id, actor="system", reason="idle", now=now)
        released += 1
    return released


# --- consent --------------------------------------------------------------------------

def may_chat(session: Session, contact_id: int) -> bool:
    return contact_id in consent.allowed(session, [contact_id], purpose=SERVICE_PURPOSE, channel=CHANNEL)


# --- erasure ----------------------------------------------------------------------------

def erase_contact(session: Session, contact_id: int) -> None:
    """Erasure of a person (contacts.service.erase): their conversation and every message
    in it, and the questions they left in the unanswered queue."""
    conversation_ids = select(Conversation.id).where(Conversation.contact_id == contact_id).scalar_subquery()
    message_ids = select(ChatMessage.id).where(ChatMessage.conversation_id.in_(conversation_ids))
    session.execute(delete(UnansweredQuestion).where(
        (UnansweredQuestion.contact_id == contact_id) | UnansweredQuestion.message_id.in_(message_ids)))
    session.execute(delete(ChatMessage).where(ChatMessage.conversation_id.in_(conversation_ids)))
    session.execute(delete(Conversation).where(Conversation.contact_id == contact_id))
