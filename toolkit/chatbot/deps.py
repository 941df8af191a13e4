"""Who may do what with the FAQ bot, and the loaders that turn a path id into a row (404
when there is none), for the API (bearer tokens) and the admin pages (session cookie).

Each loader depends on its permission, so a caller without it gets 401/403 before the
lookup and never learns whether the entry or conversation exists.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path
from sqlalchemy.orm import Session

from toolkit.auth.deps import api_permission, page_permission
from toolkit.auth.service import Actor
from toolkit.chatbot import agent_replies, conversations, service
from toolkit.chatbot.agent_replies import AgentReply
from toolkit.chatbot.models import ChatMessage, Conversation, FaqEntry
from toolkit.chatbot.schemas import MAX_KEY
from toolkit.messaging.channel import NoChannel, line_client
from toolkit.kit.deps import IdPath, SessionDep
from toolkit.kit.errors import PermissionDenied
from toolkit.messaging import sender
from toolkit.messaging import service as messaging
from toolkit.messaging.models import OutboundState
from toolkit.messaging.schemas import SendOutcome

READ, WRITE, AGENT = "faq.read", "faq.write", "chat.agent"

ApiFaqReader = Annotated[Actor, Depends(api_permission(READ))]
ApiFaqWriter = Annotated[Actor, Depends(api_permission(WRITE))]
ApiAgent = Annotated[Actor, Depends(api_permission(AGENT))]
PageFaqReader = Annotated[Actor, Depends(page_permission(READ))]
PageFaqWriter = Annotated[Actor, Depends(page_permission(WRITE))]
PageAgent = Annotated[Actor, Depends(page_permission(AGENT))]

# An entry's key is the brand's own id and may hold any printable character, "/" included:
# routes take it with the `path` converter (`{key:path}`), suffixed routes declared first.
KeyPath = Annotated[str, Path(min_length=1, max_length=MAX_KEY, description="The entry's id (`key`)")]


def api_entry(key: KeyPath, session: SessionDep, _actor: ApiFaqReader) -> FaqEntry:
    return service.require_entry(session, key)


def page_entry(key: KeyPath, session: SessionDep, _actor: PageFaqReader) -> FaqEntry:
    return service.require_entry(session, key)


def api_conversation(conversation_id: IdPath, session: SessionDep, _actor: ApiAgent) -> Conversation:
    return conversations.require(session, conversation_id)


def page_conversation(conversation_id: IdPath, session: SessionDep, _actor: PageAgent) -> Conversation:
    return conversations.require(session, conversation_id)


ApiEntry = Annotated[FaqEntry, Depends(api_entry)]
PageEntry = Annotated[FaqEntry, Depends(page_entry)]
ApiConversation = Annotated[Conversation, Depends(api_conversation)]
PageConversation = Annotated[Conversation, Depends(page_conversation)]


def agent_id(actor: Actor) -> int:
    """The staff user acting as an agent (conversations are assigned to users)."""
    if actor.user_id is None:
        raise PermissionDenied("only a staff user can take or answer a conversation")
    return actor.user_id


def deliver(session: Session, reply: AgentReply) -> str:
    """Send an agent's reply that `plan_agent_reply` stored and leased, and record how it
    went; the message's delivery state.

    The transaction that stored the message and its outbound row is committed first: the
    message exists before LINE hears of it (a crash after the send leaves a leased row
    that the sender loop retries safely, never a sent one we do not know about), and no
    transaction is held across the HTTP call (on SQLite it would hold the write lock the
    sandbox and the webhook need). The outcome is recorded in the next transaction,
    which the request commits."""
    session.commit()
    if reply.outbound is not None:
        try:
            client = line_client()
        except NoChannel as exc:
            outcomes = [SendOutcome(reply.outbound, OutboundState.FAILED, str(exc))]
        else:
            try:
                outcomes = sender.attempt(client, [reply.outbound])
            finally:
                client.close()
        messaging.record(session, outcomes)
    message = session.get(ChatMessage, reply.message_id)
    assert message is not None  # committed above
    session.refresh(message)
    return message.delivery or agent_replies.PENDING
