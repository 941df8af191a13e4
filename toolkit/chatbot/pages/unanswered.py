"""The unanswered queue: questions the bot was not sure about, grouped; each group becomes
a new entry, alternative questions of an existing entry, or is dismissed, in one step."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from toolkit.chatbot import service, unanswered
from toolkit.chatbot.deps import PageFaqReader, PageFaqWriter
from toolkit.chatbot.pages.common import Csrf, context, error_message
from toolkit.chatbot.schemas import MAX_ANSWER, MAX_CATEGORY, MAX_KEY, MAX_QUESTION, MAX_SELECTED, QuestionIds
from toolkit.kit.deps import SessionDep
from toolkit.kit.errors import ToolkitError
from toolkit.web.templating import render

pages = APIRouter()

PATH = "/admin/faq/unanswered"
Ids = Annotated[QuestionIds, Form(min_length=1, max_length=MAX_SELECTED)]
Key = Annotated[str, Form(max_length=MAX_KEY * 2)]  # the service says what is wrong with a bad one
Done = Literal["new_entry", "alt_question", "dismissed"]
GROUPS_SHOWN = 50


def _queue_page(request: Request, session: Session, *, done: str | None = None, key: str | None = None,
                failed: dict[str, Any] | None = None, error: str | None = None, status_code: int = 200) -> Response:
    entries = service.active_entries(session)
    values = context(
        request, session, groups=unanswered.groups(session, limit=GROUPS_SHOWN), done=done, done_key=key,
        entries={e.key: e for e in entries}, categories=service.categories(session), failed=failed or {},
        error=error,
    )
    return render(request, "chatbot/unanswered.html", values, status_code=status_code)


def _failed(request: Request, session: Session, exc: ToolkitError, **form: Any) -> Response:
    # The page again, with what was typed kept in the group it was typed into.
    return _queue_page(request, session, failed=form, error=error_message(request, exc), status_code=exc.status_code)


@pages.get(PATH)
def queue(
    request: Request,
    session: SessionDep,
    _actor: PageFaqReader,
    done: Done | None = None,
    key: Annotated[str | None, Query(max_length=MAX_KEY)] = None,
) -> Response:
    return _queue_page(request, session, done=done, key=key)


@pages.post(f"{PATH}/new-entry", dependencies=Csrf)
def new_entry(
    request: Request,
    session: SessionDep,
    actor: PageFaqWriter,
    question_ids: Ids,
    key: Key,
    question: Annotated[str, Form(max_length=MAX_QUESTION)],
    answer: Annotated[str, Form(max_length=MAX_ANSWER * 2)],
    category: Annotated[str, Form(max_length=MAX_CATEGORY)] = "",
) -> Response:
    try:
        entry = unanswered.resolve_as_new_entry(session, question_ids=question_ids, key=key, question=question,
                                                answer=answer, category=category, actor=actor.audit_name)
    except (service.EntryInvalid, unanswered.KeyTaken, unanswered.QuestionsNotOpen) as exc:
        return _failed(request, session, exc, action="new_entry", ids=question_ids, key=key, question=question,
                       answer=answer, category=category)
    return RedirectResponse(f"{PATH}?{urlencode({'done': 'new_entry', 'key': entry.key})}", status_code=303)


@pages.post(f"{PATH}/alt-question", dependencies=Csrf)
def alt_question(
    request: Request, session: SessionDep, actor: PageFaqWriter, question_ids: Ids, entry_key: Key,
) -> Response:
    try:
        entry = unanswered.resolve_as_alt_question(session, question_ids=question_ids, entry_key=entry_key.strip(),
                                                   actor=actor.audit_name)
    except (service.EntryNotFound, service.EntryInvalid, unanswered.QuestionsNotOpen) as exc:
        return _failed(request, session, exc, action="alt_question", ids=question_ids, entry_key=entry_key)
    return RedirectResponse(f"{PATH}?{urlencode({'done': 'alt_question', 'key': entry.key})}", status_code=303)


@pages.post(f"{PATH}/dismiss", dependencies=Csrf)
def dismiss(session: SessionDep, actor: PageFaqWriter, question_ids: Ids) -> Response:
    unanswered.dismiss(session, question_ids=question_ids, actor=actor.audit_name)
    return RedirectResponse(f"{PATH}?done=dismissed", status_code=303)
