"""Conversations on LINE: who owns each one (the bot, nobody yet, a person), its messages,
handing it to people and back, and an agent's reply.

An agent's reply is three steps so that no transaction is open while LINE is called:
plan_agent_reply (in the request's transaction: checks, records the message as pending,
decides reply token or push), send_agent_reply (no session: talks to LINE), and
record_agent_delivery (a second, short transaction).

System notes (handed off, taken, released) are kept as messages with sender "system" and
direction "out" but are never sent: they tell staff what happened in the conversation.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, selectinload

from toolkit.audit import service as audit
from toolkit.chatbot.models import ChatMessage, Conversation, UnansweredQuestion
from toolkit.consent import service as consent
from toolkit.contacts import service as contacts
from toolkit.inbox.handlers import SERVICE_PURPOSE
from toolkit.inbox.models import WebhookEvent
from toolkit.kit.clock import utcnow
from toolkit.kit.errors import ConsentDenied, InvalidInput, NotFound
from toolkit.line import client as line
from toolkit.line.limits import MAX_TEXT_UTF16_UNITS, utf16_units

log = logging.getLogger(__name__)

BOT, WAITING, HUMAN = "bot", "waiting", "human"
STATUSES = (BOT, WAITING, HUMAN)
IN, OUT = "in", "out"
CUSTOMER, BOT_SENDER, AGENT, SYSTEM = "customer", "bot", "agent", "system"
# An agent's message between plan_agent_reply and record_agent_delivery.
PENDING = "pending"
CHANNEL = "line"
# LINE's reply tokens last about a minute; ten seconds of margin for the agent's send.
REPLY_TOKEN_TTL = timedelta(seconds=50)


class ConversationNotFound(NotFound):
    code = "conversation_not_found"

    def __init__(self, conversation_id: int) -> None:
        super().__init__(f"no conversation {conversation_id}", conversation_id=conversation_id)


class MessageNotFound(NotFound):
    code = "chat_message_not_found"

    def __init__(self, message_id: int) -> None:
        super().__init__(f"no agent message {message_id}", message_id=message_id)


class ReplyInvalid(InvalidInput):
    code = "agent_reply_invalid"


class ChatNotAllowed(ConsentDenied):
    code = "chat_not_allowed"

    def __init__(self, contact_id: int) -> None:
        super().__init__(f"contact {contact_id} may not be messaged ({SERVICE_PURPOSE} is not allowed)",
                         contact_id=contact_id)


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


# --- an agent's reply -------------------------------------------------------------------

@dataclass(frozen=True)
class AgentReply:
    """What to send for an agent's message, planned inside a transaction and sent after it."""

    message_id: int
    user_id: str  # the customer's LINE user id
    reply_token: str | None  # None: push
    messages: list[dict[str, Any]]
    retry_key: str  # X-Line-Retry-Key of the push


@dataclass(frozen=True)
class AgentDelivery:
    delivery: str  # reply_sent, push_sent, push_pending (LINE may take it later), failed, unknown
    error: str | None = None


def check_reply_text(text: str) -> str:
    text = text.strip()
    if not text:
        raise ReplyInvalid("the reply is empty")
    if utf16_units(text) > MAX_TEXT_UTF16_UNITS:
        raise ReplyInvalid(f"the reply is longer than one LINE message ({MAX_TEXT_UTF16_UNITS} UTF-16 units)")
    return text


def may_chat(session: Session, contact_id: int) -> bool:
    return contact_id in consent.allowed(session, [contact_id], purpose=SERVICE_PURPOSE, channel=CHANNEL)


def _line_user_id(session: Session, contact_id: int) -> str:
    contact = contacts.require(session, contact_id)
    for identity in contact.identities:
        if identity.channel == CHANNEL and identity.blocked_at is None:
            return identity.external_id
    raise ChatNotAllowed(contact_id)  # the gate passed, so this is a race with an unfollow


def usable_reply_event(
    session: Session, conversation: Conversation, *, now: datetime | None = None,
) -> WebhookEvent | None:
    """The webhook event whose reply token an agent's message may still use: that of the
    customer's latest message, if it came less than REPLY_TOKEN_TTL ago and nothing has
    answered it yet (neither the bot — silent while people own the conversation — nor an
    earlier agent message). Reply tokens are free; pushes count against the quota."""
    now = now or utcnow()
    latest = session.scalar(
        select(ChatMessage).where(ChatMessage.conversation_id == conversation.id, ChatMessage.sender == CUSTOMER)
        .order_by(ChatMessage.id.desc()).limit(1)
    )
    if latest is None or latest.webhook_event_id is None:
        return None
    event = session.get(WebhookEvent, latest.webhook_event_id)
    if event is None or not event.reply_token or event.replies is not None or event.delivery is not None:
        return None
    if event.received_at < now - REPLY_TOKEN_TTL:
        return None
    answered = session.scalar(
        select(func.count()).select_from(ChatMessage)
        .where(ChatMessage.webhook_event_id == event.id, ChatMessage.direction == OUT)
    )
    return None if answered else event


def plan_agent_reply(
    session: Session, *, conversation_id: int, text: str, user_id: int, actor: str, now: datetime | None = None,
) -> AgentReply:
    """Check and record an agent's message (delivery "pending") and plan how it goes out:
    with the reply token of the customer's latest message while it is valid and unused,
    else by push (allowed: service.chat answers the person's own conversation). Takes
    the conversation for the agent unless a person already has it. Raises ReplyInvalid,
    or ChatNotAllowed when the person objected to service.chat (or blocked us)."""
    conversation = require(session, conversation_id)
    text = check_reply_text(text)
    if not may_chat(session, conversation.contact_id):
        raise ChatNotAllowed(conversation.contact_id)
    line_user = _line_user_id(session, conversation.contact_id)
    now = now or utcnow()
    event = usable_reply_event(session, conversation, now=now)
    if conversation.status != HUMAN:
        # An agent who answers owns the conversation: the bot must not talk over them.
        take(session, conversation_id=conversation.id, user_id=user_id, actor=actor)
    message = add_message(session, conversation, direction=OUT, sender=AGENT, text=text, now=now,
                          author_id=user_id, delivery=PENDING, webhook_event_id=event.id if event else None)
    audit.record(session, actor=actor, action="chatbot.agent_reply", target_type="conversation",
                 target_id=conversation.id, details={"message_id": message.id, "via": "reply" if event else "push"})
    return AgentReply(
        message_id=message.id, user_id=line_user, reply_token=event.reply_token if event else None,
        messages=[line.text_message(text)], retry_key=line.retry_key("agent-reply", str(message.id)),
    )


def deliver_agent_reply(client: line.LineClient, reply: AgentReply) -> AgentDelivery:
    """Send a planned agent reply: the reply token first, push (with the reply's retry key,
    so a repeat is answered 409 by LINE, not delivered twice) when it is missing or spent."""
    if reply.reply_token:
        delivery, result = line.send_reply(client, reply_token=reply.reply_token, messages=reply.messages,
                                           push_allowed=True)
        if delivery != line.PUSH_PENDING:
            return AgentDelivery(delivery, result.error if result and delivery != line.REPLY_SENT else None)
    return push_agent_reply(client, reply)


def push_agent_reply(client: line.LineClient, reply: AgentReply) -> AgentDelivery:
    result = client.push(reply.user_id, reply.messages, retry_key=reply.retry_key)
    if result.delivered:
        return AgentDelivery(line.PUSH_SENT)
    if result.retryable:
        return AgentDelivery(line.PUSH_PENDING, f"push got {result.status}: {result.error}")
    return AgentDelivery(line.FAILED, f"push refused ({result.status}): {result.error}")


def send_agent_reply(client: line.LineClient, reply: AgentReply) -> str:
    """deliver_agent_reply's delivery state alone."""
    return deliver_agent_reply(client, reply).delivery


def record_agent_delivery(session: Session, *, message_id: int, delivery: str, error: str | None = None) -> None:
    message = session.get(ChatMessage, message_id)
    if message is None or message.sender != AGENT:
        raise MessageNotFound(message_id)
    message.delivery = delivery[:16]
    if error:
        log.warning("agent message %s: %s (%s)", message_id, delivery, error)
    if delivery in (line.FAILED, line.UNKNOWN):  # push_pending is retried (chatbot.retry_agent_pushes)
        audit.record(session, actor="system", action="chatbot.agent_reply.undelivered", target_type="chat_message",
                     target_id=message_id, details={"delivery": delivery, "error": (error or "")[:500]})
    session.flush()


def pending_pushes(session: Session, *, limit: int = 100) -> list[AgentReply]:
    """Agent messages whose push LINE has not taken yet (429, 5xx, timeout), to push again
    with the same retry key — LINE answers 409 if an earlier try got through. Contacts
    who may no longer be messaged are marked failed instead."""
    rows = session.scalars(
        select(ChatMessage).where(ChatMessage.sender == AGENT, ChatMessage.delivery == line.PUSH_PENDING)
        .order_by(ChatMessage.id).limit(limit)
    ).all()
    plans = []
    for message in rows:
        conversation = session.get(Conversation, message.conversation_id)
        if conversation is None or not may_chat(session, conversation.contact_id):
            message.delivery = line.FAILED
            continue
        plans.append(AgentReply(
            message_id=message.id, user_id=_line_user_id(session, conversation.contact_id), reply_token=None,
            messages=[line.text_message(message.text)], retry_key=line.retry_key("agent-reply", str(message.id)),
        ))
    session.flush()
    return plans


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

contacts.register_erasure_step(erase_contact)
