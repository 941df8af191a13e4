"""The agents' inbox: conversations by status (handoffs waiting for a person first in
mind), one conversation with its messages, and taking, answering and releasing it."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from toolkit.auth import service as auth
from toolkit.chatbot import agent_replies, conversations, service
from toolkit.chatbot.deps import PageAgent, PageConversation, agent_id, deliver
from toolkit.chatbot.models import Conversation
from toolkit.chatbot.pages.common import Csrf, context, error_message
from toolkit.chatbot.schemas import MAX_MESSAGE_TEXT, TEXT_PATTERN, ConversationStatus
from toolkit.kit.deps import PageDep, SessionDep
from toolkit.line.client import FAILED
from toolkit.web.templating import render

pages = APIRouter()

PATH = "/admin/chat"
Done = Literal["taken", "released", "sent", "failed"]
HISTORY = 200


def _staff(session: Session) -> dict[int, str]:
    # Staff are a handful of users: one query for every assignee and author on the page.
    return {user.id: user.email for user in auth.list_users(session)}


@pages.get(PATH)
def conversation_list(
    request: Request, session: SessionDep, _actor: PageAgent, page: PageDep, status: ConversationStatus | None = None,
) -> Response:
    rows, total = conversations.list_conversations(session, status=status, limit=page.limit, offset=page.offset)
    values = context(request, session, rows=rows, total=total, page=page, status=status,
                     counts=conversations.counts(session), staff=_staff(session))
    return render(request, "chatbot/conversations.html", values)


# Before /admin/chat/{conversation_id}: "waiting" is no conversation id.
@pages.get(f"{PATH}/waiting")
def waiting(session: SessionDep, _actor: PageAgent) -> dict[str, int]:
    """The nav badge's count, polled by every page an agent has open."""
    return {"waiting": conversations.waiting_count(session)}


def _thread(session: Session, conversation: Conversation) -> dict[str, object]:
    messages = conversations.messages(session, conversation_id=conversation.id, limit=HISTORY)
    keys = {m.entry_key for m in messages if m.entry_key}
    return {
        "conversation": conversation, "messages": messages, "staff": _staff(session),
        "entries": {key: service.get_entry(session, key) for key in keys},
    }


def _conversation_page(request: Request, session: Session, conversation: Conversation, *, done: str | None = None,
                       error: str | None = None, text: str = "", status_code: int = 200) -> Response:
    values = context(request, session, **_thread(session, conversation), done=done, error=error, text=text,
                     may_chat=conversations.may_chat(session, conversation.contact_id))
    return render(request, "chatbot/conversation.html", values, status_code=status_code)


@pages.get(f"{PATH}/{{conversation_id}}")
def conversation_page(
    request: Request, session: SessionDep, conversation: PageConversation, done: Done | None = None,
) -> Response:
    return _conversation_page(request, session, conversation, done=done)


@pages.get(f"{PATH}/{{conversation_id}}/messages")
def conversation_messages(request: Request, session: SessionDep, conversation: PageConversation) -> Response:
    """The messages alone (an HTML fragment), for the page's refresh."""
    return render(request, "chatbot/_messages.html", context(request, session, **_thread(session, conversation)))


@pages.post(f"{PATH}/{{conversation_id}}/take", dependencies=Csrf)
def take(session: SessionDep, conversation: PageConversation, actor: PageAgent) -> Response:
    conversations.take(session, conversation_id=conversation.id, user_id=agent_id(actor), actor=actor.audit_name)
    return RedirectResponse(f"{PATH}/{conversation.id}?done=taken", status_code=303)


@pages.post(f"{PATH}/{{conversation_id}}/release", dependencies=Csrf)
def release(session: SessionDep, conversation: PageConversation, actor: PageAgent) -> Response:
    conversations.release(session, conversation_id=conversation.id, actor=actor.audit_name)
    return RedirectResponse(f"{PATH}/{conversation.id}?done=released", status_code=303)


@pages.post(f"{PATH}/{{conversation_id}}/reply", dependencies=Csrf)
def reply(
    request: Request,
    session: SessionDep,
    conversation: PageConversation,
    actor: PageAgent,
    text: Annotated[str, Form(max_length=MAX_MESSAGE_TEXT * 2, pattern=TEXT_PATTERN)],
) -> Response:
    conversation_id = conversation.id  # read before the commit in deliver()
    try:
        planned = agent_replies.plan_agent_reply(session, conversation_id=conversation_id, text=text,
                                                 user_id=agent_id(actor), actor=actor.audit_name)
    except (agent_replies.ReplyInvalid, agent_replies.ChatNotAllowed) as exc:
        return _conversation_page(request, session, conversation, error=error_message(request, exc), text=text,
                                  status_code=exc.status_code)
    delivery = deliver(session, planned)
    return RedirectResponse(f"{PATH}/{conversation_id}?done={'failed' if delivery == FAILED else 'sent'}",
                            status_code=303)
