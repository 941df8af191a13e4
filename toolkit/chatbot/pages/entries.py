"""FAQ entries: the list with counts, creating and editing (each save a new version), the
version history, reviewing generated questions; trying a question; the accuracy report."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from toolkit.chatbot import bot, service
from toolkit.chatbot.decision import load_decision
from toolkit.chatbot.deps import PageEntry, PageFaqReader, PageFaqWriter
from toolkit.chatbot.models import FaqEntry
from toolkit.chatbot.pages.common import Csrf, context, entry_url, error_message, lines
from toolkit.chatbot.schemas import (
    LINE_PATTERN,
    MAX_ALT_QUESTIONS,
    MAX_ANSWER,
    MAX_CATEGORY,
    MAX_QUERY,
    MAX_QUESTION,
)
from toolkit.kit.deps import PageDep, SessionDep
from toolkit.web.templating import render

pages = APIRouter()

FORM_ERRORS = (service.EntryInvalid, service.EntryExists)
# Alternative questions are typed one a line.
AltLines = Annotated[str, Form(max_length=MAX_ALT_QUESTIONS * (MAX_QUESTION + 2))]
Question = Annotated[str, Form(max_length=MAX_QUESTION)]
Answer = Annotated[str, Form(max_length=MAX_ANSWER * 2)]  # the service counts UTF-16 units
Category = Annotated[str, Form(max_length=MAX_CATEGORY)]
Note = Annotated[str, Form(max_length=200, pattern=LINE_PATTERN)]
EMPTY_FORM = {"key": "", "question": "", "answer": "", "category": "", "alt_questions": ""}


# --- entries ------------------------------------------------------------------------------

@pages.get("/admin/faq")
def entry_list(
    request: Request,
    session: SessionDep,
    _actor: PageFaqReader,
    page: PageDep,
    search: Annotated[str, Query(max_length=200, pattern=LINE_PATTERN)] = "",
    category: Annotated[str, Query(max_length=MAX_CATEGORY, pattern=LINE_PATTERN)] = "",
    state: Literal["", "active", "inactive"] = "",
) -> Response:
    active = {"active": True, "inactive": False}.get(state)
    rows, total = service.list_entries(session, search=search or None, category=category or None, active=active,
                                       limit=page.limit, offset=page.offset)
    values = context(request, session, entries=rows, total=total, page=page, search=search, category=category,
                     state=state, categories=service.categories(session), counts=service.counts(session))
    return render(request, "chatbot/entries.html", values)


def _entry_page(request: Request, session: Session, entry: FaqEntry | None, *, form: dict[str, Any] | None = None,
                error: str | None = None, done: str | None = None, status_code: int = 200) -> Response:
    if form is None and entry is not None:
        form = {"question": entry.question, "answer": entry.answer, "category": entry.category,
                "alt_questions": "\n".join(entry.alt_questions)}
    values = context(request, session, entry=entry, form=form or EMPTY_FORM, error=error, done=done,
                     categories=service.categories(session))
    return render(request, "chatbot/entry.html", values, status_code=status_code)


@pages.get("/admin/faq/new")
def new_entry_page(
    request: Request,
    session: SessionDep,
    _actor: PageFaqWriter,
    question: Annotated[str, Query(max_length=MAX_QUESTION)] = "",
) -> Response:
    return _entry_page(request, session, None, form=EMPTY_FORM | {"question": question})


@pages.post("/admin/faq/new", dependencies=Csrf)
def create_entry(
    request: Request,
    session: SessionDep,
    actor: PageFaqWriter,
    key: Annotated[str, Form(max_length=200)],
    question: Question,
    answer: Answer,
    category: Category = "",
    alt_questions: AltLines = "",
) -> Response:
    try:
        content = service.checked_content(question=question, answer=answer, category=category,
                                          alt_questions=lines(alt_questions))
        entry = service.create_entry(session, key=key, content=content, actor=actor.audit_name)
    except FORM_ERRORS as exc:
        form = {"key": key, "question": question, "answer": answer, "category": category,
                "alt_questions": alt_questions}
        return _entry_page(request, session, None, form=form, error=error_message(request, exc),
                           status_code=exc.status_code)
    return RedirectResponse(entry_url(entry.key, "?done=created"), status_code=303)


# Suffixed routes before the bare `{key:path}` one, which would swallow them.
@pages.get("/admin/faq/entries/{key:path}/versions")
def entry_versions(request: Request, session: SessionDep, entry: PageEntry) -> Response:
    values = context(request, session, entry=entry, versions=service.entry_versions(session, entry.key))
    return render(request, "chatbot/versions.html", values)


@pages.post("/admin/faq/entries/{key:path}/edit", dependencies=Csrf)
def edit_entry(
    request: Request,
    session: SessionDep,
    entry: PageEntry,
    actor: PageFaqWriter,
    question: Question,
    answer: Answer,
    category: Category = "",
    alt_questions: AltLines = "",
    note: Note = "",
) -> Response:
    version = entry.version
    try:
        service.update_entry(session, key=entry.key, actor=actor.audit_name, note=note.strip() or None,
                             question=question, answer=answer, category=category, alt_questions=lines(alt_questions))
    except FORM_ERRORS as exc:
        form = {"question": question, "answer": answer, "category": category, "alt_questions": alt_questions}
        return _entry_page(request, session, entry, form=form, error=error_message(request, exc),
                           status_code=exc.status_code)
    done = "saved" if entry.version != version else "unchanged"
    return RedirectResponse(entry_url(entry.key, f"?done={done}"), status_code=303)


@pages.post("/admin/faq/entries/{key:path}/active", dependencies=Csrf)
def set_active(
    session: SessionDep, entry: PageEntry, actor: PageFaqWriter, active: Annotated[bool, Form()],
) -> Response:
    service.update_entry(session, key=entry.key, actor=actor.audit_name,
                         note="activated" if active else "deactivated", active=active)
    return RedirectResponse(entry_url(entry.key, f"?done={'activated' if active else 'deactivated'}"), status_code=303)


@pages.post("/admin/faq/entries/{key:path}/generated", dependencies=Csrf)
def review_generated(
    session: SessionDep,
    entry: PageEntry,
    actor: PageFaqWriter,
    question: Annotated[str, Form(max_length=MAX_QUESTION)],
    verdict: Annotated[Literal["keep", "delete"], Form()],
) -> Response:
    service.review_generated(session, key=entry.key, question=question, keep=verdict == "keep",
                             actor=actor.audit_name)
    return RedirectResponse(entry_url(entry.key, f"?done={'kept' if verdict == 'keep' else 'deleted'}#generated"),
                            status_code=303)


@pages.get("/admin/faq/entries/{key:path}")
def entry_page(
    request: Request,
    session: SessionDep,
    entry: PageEntry,
    done: Literal["created", "saved", "unchanged", "activated", "deactivated", "kept", "deleted"] | None = None,
) -> Response:
    return _entry_page(request, session, entry, done=done)


# --- trying a question, accuracy -----------------------------------------------------------

@pages.get("/admin/faq/try")
def try_question(
    request: Request,
    session: SessionDep,
    _actor: PageFaqReader,
    q: Annotated[str, Query(max_length=MAX_QUERY)] = "",
) -> Response:
    result = service.describe_match(session, query=q, found=bot.faq_answer(session, q)) if q.strip() else None
    return render(request, "chatbot/try.html", context(request, session, q=q, result=result))


@pages.get("/admin/faq/accuracy")
def accuracy(request: Request, session: SessionDep, _actor: PageFaqReader) -> Response:
    calibration = service.latest_calibration(session)
    report = calibration.report if calibration else {}
    previous = next((report[k] for k in ("previous", "before") if isinstance(report.get(k), dict)), None)
    values = context(
        request, session, calibration=calibration, report=report, previous=previous,
        threshold=(calibration.decision if calibration else {}).get("threshold"),
        default=load_decision().meta.get("report") or {},
    )
    return render(request, "chatbot/accuracy.html", values)
