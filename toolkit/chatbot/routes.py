"""REST API of the FAQ bot: entries (versioned, by their `key`), trying a question, the
unanswered queue, and the agents' side of conversations. Admin pages live in pages.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from toolkit.chatbot import agent_replies, bot, conversations, service, unanswered
from toolkit.chatbot.deps import (
    ApiAgent,
    ApiConversation,
    ApiEntry,
    ApiFaqReader,
    ApiFaqWriter,
    KeyPath,
    agent_id,
    deliver,
)
from toolkit.chatbot.models import ChatMessage, Conversation, FaqDecision, FaqEntry, FaqEntryVersion
from toolkit.chatbot.schemas import (
    LINE_PATTERN,
    MAX_CATEGORY,
    AgentReplyCreate,
    CalibrationRead,
    ChatMessageList,
    ChatMessageRead,
    ConversationList,
    ConversationRead,
    ConversationStatus,
    Dismissed,
    EntryCreate,
    EntryList,
    EntryRead,
    EntryReplace,
    EntryUpdate,
    EntryVersionRead,
    MatchQuery,
    MatchRead,
    QuestionSelection,
    ResolveAsAltQuestion,
    ResolveAsNewEntry,
    UnansweredGroupList,
    UnansweredGroupRead,
)
from toolkit.kit.deps import PageDep, SessionDep
from toolkit.kit.errors import NotFound
from toolkit.kit.openapi import CONFLICT, NOT_FOUND, PROTECTED

faq = APIRouter(prefix="/api/v1/faq", tags=["faq"], responses=PROTECTED)
chat = APIRouter(prefix="/api/v1/chat", tags=["chat"], responses=PROTECTED)


class NoCalibration(NotFound):
    code = "faq_no_calibration"


def _content(data: EntryCreate | EntryReplace) -> service.EntryContent:
    fields = data.model_dump(include=set(service.CONTENT_FIELDS))
    return service.checked_content(**fields)


# --- entries ------------------------------------------------------------------------------

@faq.get("/entries", response_model=EntryList, summary="List FAQ entries")
def list_entries(
    session: SessionDep,
    _actor: ApiFaqReader,
    page: PageDep,
    search: Annotated[str | None, Query(max_length=200, pattern=LINE_PATTERN,
                                        description="Part of the id, question or answer")] = None,
    category: Annotated[str | None, Query(max_length=MAX_CATEGORY, pattern=LINE_PATTERN)] = None,
    active: Annotated[bool | None, Query(description="Only active (true) or inactive (false) entries")] = None,
) -> EntryList:
    rows, count = service.list_entries(session, search=search, category=category, active=active,
                                       limit=page.limit, offset=page.offset)
    return EntryList(data=[EntryRead.model_validate(e) for e in rows], count=count)


@faq.post("/entries", status_code=201, response_model=EntryRead, summary="Create a FAQ entry",
          responses=CONFLICT)
def create_entry(data: EntryCreate, session: SessionDep, actor: ApiFaqWriter) -> FaqEntry:
    return service.create_entry(session, key=data.key, content=_content(data), actor=actor.audit_name)


# Suffixed routes first: `{key:path}` would also match ".../versions".
@faq.get("/entries/{key:path}/versions", response_model=list[EntryVersionRead],
         summary="Every version of a FAQ entry, newest first", responses=NOT_FOUND)
def entry_versions(entry: ApiEntry, session: SessionDep) -> list[FaqEntryVersion]:
    return service.entry_versions(session, entry.key)


@faq.post("/entries/{key:path}/deactivate", response_model=EntryRead,
          summary="Stop answering with a FAQ entry (kept, with its versions)", responses=NOT_FOUND)
def deactivate_entry(entry: ApiEntry, session: SessionDep, actor: ApiFaqWriter) -> FaqEntry:
    return service.update_entry(session, key=entry.key, actor=actor.audit_name, note="deactivated", active=False)


@faq.post("/entries/{key:path}/activate", response_model=EntryRead,
          summary="Answer with a deactivated FAQ entry again", responses=NOT_FOUND)
def activate_entry(entry: ApiEntry, session: SessionDep, actor: ApiFaqWriter) -> FaqEntry:
    return service.update_entry(session, key=entry.key, actor=actor.audit_name, note="activated", active=True)


@faq.get("/entries/{key:path}", response_model=EntryRead, summary="Get a FAQ entry", responses=NOT_FOUND)
def read_entry(entry: ApiEntry) -> FaqEntry:
    return entry


@faq.put("/entries/{key:path}", response_model=EntryRead, responses={201: {"description": "Created"}},
         summary="Create a FAQ entry or replace its content (a new version when it differs)")
def replace_entry(key: KeyPath, data: EntryReplace, session: SessionDep, actor: ApiFaqWriter,
                  response: Response) -> FaqEntry:
    entry, outcome = service.save_entry(session, key=key, content=_content(data), actor=actor.audit_name,
                                        note=data.note)
    response.status_code = 201 if outcome == service.CREATED else 200
    return entry


@faq.patch("/entries/{key:path}", response_model=EntryRead, responses=NOT_FOUND,
           summary="Change some fields of a FAQ entry (a new version when anything changes)")
def update_entry(entry: ApiEntry, data: EntryUpdate, session: SessionDep, actor: ApiFaqWriter) -> FaqEntry:
    return service.update_entry(session, key=entry.key, actor=actor.audit_name, note=data.note, **data.changes())


# --- trying a question, the decision -----------------------------------------------------

@faq.post("/match", response_model=MatchRead, summary="What the bot would answer to a question now")
def match_question(data: MatchQuery, session: SessionDep, _actor: ApiFaqReader) -> MatchRead:
    return service.describe_match(session, query=data.query, found=bot.faq_answer(session, data.query))


@faq.get("/calibration", response_model=CalibrationRead, responses=NOT_FOUND,
         summary="The decision fitted by the last `toolkit faq calibrate`, with its rates")
def latest_calibration(session: SessionDep, _actor: ApiFaqReader) -> FaqDecision:
    calibration = service.latest_calibration(session)
    if calibration is None:
        raise NoCalibration("no calibration yet: the shipped default decision is in use")
    return calibration


# --- the unanswered queue ----------------------------------------------------------------

@faq.get("/unanswered", response_model=UnansweredGroupList, summary="Open unanswered questions, grouped")
def unanswered_groups(
    session: SessionDep,
    _actor: ApiFaqReader,
    limit: Annotated[int, Query(ge=1, le=500, description="Groups, biggest first")] = 50,
) -> UnansweredGroupList:
    rows = unanswered.groups(session, limit=limit)
    return UnansweredGroupList(data=[UnansweredGroupRead.model_validate(g) for g in rows],
                               open=unanswered.open_count(session))


@faq.post("/unanswered/new-entry", status_code=201, response_model=EntryRead, responses=CONFLICT,
          summary="Answer unanswered questions with a new entry (their wordings become its alternatives)")
def resolve_as_new_entry(data: ResolveAsNewEntry, session: SessionDep, actor: ApiFaqWriter) -> FaqEntry:
    return unanswered.resolve_as_new_entry(session, question_ids=data.question_ids, key=data.key,
                                           question=data.question, answer=data.answer, category=data.category,
                                           actor=actor.audit_name)


@faq.post("/unanswered/alt-question", response_model=EntryRead, responses={**NOT_FOUND, **CONFLICT},
          summary="Add unanswered questions to an existing entry as alternative questions")
def resolve_as_alt_question(data: ResolveAsAltQuestion, session: SessionDep, actor: ApiFaqWriter) -> FaqEntry:
    return unanswered.resolve_as_alt_question(session, question_ids=data.question_ids, entry_key=data.entry_key,
                                              actor=actor.audit_name)


@faq.post("/unanswered/dismiss", response_model=Dismissed, summary="Take questions out of the unanswered queue")
def dismiss_unanswered(data: QuestionSelection, session: SessionDep, actor: ApiFaqWriter) -> Dismissed:
    return Dismissed(dismissed=unanswered.dismiss(session, question_ids=data.question_ids, actor=actor.audit_name))


# --- conversations (the agents' side) -----------------------------------------------------

@chat.get("/conversations", response_model=ConversationList, summary="List conversations, newest activity first")
def list_conversations(
    session: SessionDep, _actor: ApiAgent, page: PageDep, status: ConversationStatus | None = None,
) -> ConversationList:
    rows, count = conversations.list_conversations(session, status=status, limit=page.limit, offset=page.offset)
    return ConversationList(data=[ConversationRead.model_validate(c) for c in rows], count=count,
                            waiting=conversations.waiting_count(session))


@chat.get("/conversations/{conversation_id}", response_model=ConversationRead, summary="Get a conversation",
          responses=NOT_FOUND)
def read_conversation(conversation: ApiConversation) -> Conversation:
    return conversation


@chat.get("/conversations/{conversation_id}/messages", response_model=ChatMessageList, responses=NOT_FOUND,
          summary="A conversation's messages, oldest first")
def conversation_messages(
    conversation: ApiConversation, session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500, description="The newest this many")] = 200,
) -> ChatMessageList:
    rows = conversations.messages(session, conversation_id=conversation.id, limit=limit)
    return ChatMessageList(data=[ChatMessageRead.model_validate(m) for m in rows], count=len(rows))


@chat.post("/conversations/{conversation_id}/take", response_model=ConversationRead, responses=NOT_FOUND,
           summary="Take a conversation: you answer it, the bot stays silent")
def take_conversation(conversation: ApiConversation, session: SessionDep, actor: ApiAgent) -> Conversation:
    return conversations.take(session, conversation_id=conversation.id, user_id=agent_id(actor),
                              actor=actor.audit_name)


@chat.post("/conversations/{conversation_id}/release", response_model=ConversationRead, responses=NOT_FOUND,
           summary="Give a conversation back to the bot")
def release_conversation(conversation: ApiConversation, session: SessionDep, actor: ApiAgent) -> Conversation:
    return conversations.release(session, conversation_id=conversation.id, actor=actor.audit_name)


@chat.post("/conversations/{conversation_id}/reply", status_code=201, response_model=ChatMessageRead,
           summary="Answer the customer as a person (reply token while valid, else push)",
           responses={**NOT_FOUND, 403: {"description": "Your role may not, or the customer may not be messaged"}})
def reply(conversation: ApiConversation, data: AgentReplyCreate, session: SessionDep, actor: ApiAgent) -> ChatMessage:
    planned = agent_replies.plan_agent_reply(session, conversation_id=conversation.id, text=data.text,
                                             user_id=agent_id(actor), actor=actor.audit_name)
    deliver(session, planned)
    return session.get_one(ChatMessage, planned.message_id)
