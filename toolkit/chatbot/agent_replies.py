"""An agent's reply to a customer on LINE, in three steps so that no transaction is open
while LINE is called: plan_agent_reply (in the request's transaction: checks, records the
message as pending, decides reply token or push), deliver_agent_reply (no session: talks
to LINE), and record_agent_delivery (a second, short transaction). Pushes LINE did not
take yet are tried again by the chatbot.retry_agent_pushes job (pending_pushes)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from toolkit.audit import service as audit
from toolkit.chatbot.conversations import AGENT, CHANNEL, CUSTOMER, HUMAN, OUT, add_message, may_chat, require, take
from toolkit.chatbot.models import ChatMessage, Conversation
from toolkit.contacts import service as contacts
from toolkit.inbox.handlers import SERVICE_PURPOSE
from toolkit.inbox.models import WebhookEvent
from toolkit.kit.clock import utcnow
from toolkit.kit.errors import ConsentDenied, InvalidInput, NotFound
from toolkit.line import client as line
from toolkit.line.limits import MAX_TEXT_UTF16_UNITS, utf16_units

log = logging.getLogger(__name__)

# An agent's message between plan_agent_reply and record_agent_delivery.
PENDING = "pending"
# LINE's reply tokens last about a minute; ten seconds of margin for the agent's send.
REPLY_TOKEN_TTL = timedelta(seconds=50)


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
