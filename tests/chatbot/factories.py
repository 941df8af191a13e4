"""Factories for FAQ entries and calibrations, through the service (versions and audit
rows included), so tests see what production code would have written."""

from __future__ import annotations

import itertools
from datetime import datetime
from collections.abc import Iterable, Sequence

from sqlalchemy.orm import Session

from tests.inbox.factories import event, store
from toolkit.chatbot import conversations, service, unanswered
from toolkit.chatbot.conversations import CUSTOMER, IN
from toolkit.chatbot.decision import Decision, load_decision
from toolkit.chatbot.models import Conversation, FaqDecision, FaqEntry, UnansweredQuestion
from toolkit.contacts.models import Contact
from toolkit.inbox.models import WebhookEvent

_counter = itertools.count(1)

# A small retail bank: distinct enough that each question finds its own entry.
RETAIL: Sequence[dict] = (
    {"key": "ship-fee", "question": "運費怎麼計算？滿多少免運？", "category": "配送",
     "answer": "單筆訂單滿 NT$990 免運費，未滿收運費 NT$100。", "alt_questions": ["運費多少", "免運門檻"]},
    {"key": "return", "question": "退貨要怎麼申請？", "category": "退換貨",
     "answer": "七天鑑賞期內在「我的訂單」點選申請退貨，物流會到府取件。", "alt_questions": ["我要退貨"]},
    {"key": "points", "question": "會員點數可以怎麼使用？", "category": "會員",
     "answer": "每 1 點折抵 1 元，最多折抵訂單金額的 30%。", "alt_questions": ["點數怎麼用"]},
)


def make_entry(
    session: Session,
    *,
    key: str | None = None,
    question: str | None = None,
    answer: str | None = None,
    category: str = "",
    alt_questions: Iterable[str] = (),
    generated_questions: Iterable[str] = (),
    locale: str = "zh-TW",
    active: bool = True,
    actor: str = "test",
) -> FaqEntry:
    """An entry saved through service.save_entry (version 1 when new)."""
    n = next(_counter)
    content = service.checked_content(
        question=question or f"測試問題 {n}？", answer=f"測試答案 {n}。" if answer is None else answer, category=category,
        alt_questions=alt_questions, generated_questions=generated_questions, locale=locale, active=active,
    )
    entry, _ = service.save_entry(session, key=key or f"T{n}", content=content, actor=actor)
    return entry


def make_retail_bank(session: Session) -> list[FaqEntry]:
    """The three entries of RETAIL."""
    return [make_entry(session, **row) for row in RETAIL]


def make_calibration(
    session: Session, *, decision: Decision | None = None, report: dict | None = None,
    examples: int = 10, source: str = "test.jsonl", actor: str = "test",
) -> FaqDecision:
    """A stored calibration (the shipped default decision unless one is given)."""
    return service.save_calibration(
        session, decision=decision or load_decision(), report=report or {}, examples=examples,
        source=source, actor=actor,
    )


def customer_says(
    session: Session, contact: Contact, text: str, *, at: datetime | None = None,
) -> tuple[Conversation, WebhookEvent]:
    """A customer's message as the bot records it, with its stored webhook event (received
    `at`, now unless told)."""
    (row,) = store(session, event("message", contact.identities[0].external_id, text=text))
    if at is not None:
        row.received_at = at
    conversation = conversations.conversation_for(session, contact_id=contact.id)
    conversations.add_message(session, conversation, direction=IN, sender=CUSTOMER, text=text,
                              webhook_event_id=row.id, now=at)
    return conversation, row


def queue_questions(session: Session, *texts: str, best: str | None = None) -> list[UnansweredQuestion]:
    """Open questions in the unanswered queue (no contact, no message)."""
    return [unanswered.record(session, text=text, contact_id=None, message_id=None, best_entry_key=best, score=0.1)
            for text in texts]
