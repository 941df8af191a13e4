"""An agent's reply to a customer on LINE, through the outbound pipeline (messaging) so that
no transaction is open while LINE is called: plan_agent_reply (in the request's
transaction: checks, records the message as pending, enqueues its outbound message with
the reply token if one is usable, leased to the request), then the request sends it after
committing (chatbot.deps.deliver) and the pipeline tells record_agent_deliveries how it
went. Pushes LINE did not take yet are retried by the sender loop (messaging.send_due)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
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
from toolkit.messaging import service as messaging
from toolkit.messaging.models import OutboundMessage, OutboundState
from toolkit.messaging.schemas import Claimed, Outbound, Settled

log = logging.getLogger(__name__)

# The outbound messages of agents (messaging.schemas.Outbound.source).
SOURCE = "chatbot.agent_reply"
# An agent's message until the pipeline reports how its send went.
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
    outbound: Claimed | None = None  # its outbound message, leased to the caller to send


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
    reply = AgentReply(
        message_id=message.id, user_id=line_user, reply_token=event.reply_token if event else None,
        messages=[line.text_message(text)], retry_key=line.retry_key("agent-reply", str(message.id)),
    )
    leased = messaging.enqueue_claimed(session, [_outbound(reply, conversation.contact_id)], now=now)
    return dataclasses.replace(reply, outbound=leased[0] if leased else None)


def _outbound(reply: AgentReply, contact_id: int) -> Outbound:
    # Push allowed: service.chat answers the person's own conversation.
    return Outbound(source=SOURCE, source_id=reply.message_id, contact_id=contact_id, recipient=reply.user_id,
                    purpose=SERVICE_PURPOSE, messages=reply.messages, retry_key=reply.retry_key,
                    reply_token=reply.reply_token, push_allowed=True)


def record_agent_delivery(session: Session, *, message_id: int, delivery: str, error: str | None = None) -> None:
    message = session.get(ChatMessage, message_id)
    if message is None or message.sender != AGENT:
        raise MessageNotFound(message_id)
    message.delivery = delivery[:16]
    if error:
        log.warning("agent message %s: %s (%s)", message_id, delivery, error)
    if delivery in (line.FAILED, line.UNKNOWN):  # push_pending is retried (messaging.send_due)
        audit.record(session, actor="system", action="chatbot.agent_reply.undelivered", target_type="chat_message",
                     target_id=message_id, details={"delivery": delivery, "error": (error or "")[:500]})
    session.flush()


def record_agent_deliveries(session: Session, settled: Sequence[Settled]) -> None:
    """The chatbot's delivery listener: how each agent message's send went."""
    for one in settled:
        if one.source_id is None:
            continue
        if one.state == OutboundState.QUEUED:  # LINE did not take it yet: the sender retries
            delivery = line.PUSH_PENDING
        elif one.state == OutboundState.SUPPRESSED:  # the person objected or blocked us meanwhile
            delivery = line.FAILED
        else:
            delivery = str(one.state)
        record_agent_delivery(session, message_id=one.source_id, delivery=delivery, error=one.error)


def enqueue_legacy_pushes(session: Session, *, limit: int = 100) -> int:
    """Agent messages left push_pending by a version from before the outbound pipeline,
    handed to it with the retry key they had (LINE answers 409 if a push got through).
    Contacts who may no longer be messaged are marked failed instead."""
    has_outbound = select(OutboundMessage.id).where(
        OutboundMessage.source == SOURCE, OutboundMessage.source_id == ChatMessage.id).exists()
    rows = session.scalars(
        select(ChatMessage).where(ChatMessage.sender == AGENT, ChatMessage.delivery == line.PUSH_PENDING,
                                  ~has_outbound)
        .order_by(ChatMessage.id).limit(limit)
    ).all()
    planned = []
    for message in rows:
        conversation = session.get(Conversation, message.conversation_id)
        if conversation is None or not may_chat(session, conversation.contact_id):
            message.delivery = line.FAILED
            continue
        reply = AgentReply(
            message_id=message.id, user_id=_line_user_id(session, conversation.contact_id), reply_token=None,
            messages=[line.text_message(message.text)], retry_key=line.retry_key("agent-reply", str(message.id)),
        )
        planned.append(_outbound(reply, conversation.contact_id))
    messaging.enqueue(session, planned)
    session.flush()
    return len(planned)
