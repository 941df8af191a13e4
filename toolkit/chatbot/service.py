"""FAQ entries (versioned), the index the bot answers from, and the brand's decision.

The matcher itself is a pure library (toolkit.chatbot.matcher); this module keeps its
bank in the database. An index is built from the active entries and cached per process
until an entry or the calibrated decision changes (a cheap fingerprint query per match).
"""

from __future__ import annotations

import threading
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from toolkit.audit import service as audit
from toolkit.chatbot.bank import Entry
from toolkit.chatbot.decision import Decision, load_decision
from toolkit.chatbot.matcher import FaqIndex, Match
from toolkit.chatbot.models import FaqDecision, FaqEntry, FaqEntryVersion
from toolkit.chatbot.schemas import MatchCandidate, MatchRead
from toolkit.kit.clock import utcnow
from toolkit.kit.errors import Conflict, InvalidInput, NotFound
from toolkit.kit.memo import memoised
from toolkit.line import limits

MAX_KEY = 64
MAX_CATEGORY = 100
MAX_QUESTION = 1000
# An answer is sent in one reply of up to five text messages (answer_texts: split at line
# breaks); the TPE open-data bank has an answer of 5,088 UTF-16 units.
MAX_ANSWER = limits.MAX_MESSAGES * limits.MAX_TEXT_UTF16_UNITS
MAX_ALT_QUESTIONS = 100
CREATED, UPDATED, UNCHANGED = "created", "updated", "unchanged"
CONTENT_FIELDS = ("question", "alt_questions", "generated_questions", "answer", "category", "locale", "active")


class EntryNotFound(NotFound):
    code = "faq_entry_not_found"

    def __init__(self, key: str) -> None:
        super().__init__(f"no FAQ entry {key!r}", key=key)


class EntryInvalid(InvalidInput):
    code = "faq_entry_invalid"


class EntryExists(Conflict):
    code = "faq_entry_exists"

    def __init__(self, key: str) -> None:
        super().__init__(f"FAQ entry {key!r} already exists", key=key)


@dataclass(frozen=True)
class EntryContent:
    """What an entry says; saving the same content again changes nothing."""

    question: str
    answer: str
    category: str = ""
    alt_questions: tuple[str, ...] = ()
    generated_questions: tuple[str, ...] = ()
    locale: str = "zh-TW"
    active: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {
            "question": self.question, "alt_questions": list(self.alt_questions),
            "generated_questions": list(self.generated_questions), "answer": self.answer,
            "category": self.category, "locale": self.locale, "active": self.active,
        }


def _clean_questions(values: Iterable[str], question: str) -> tuple[str, ...]:
    seen = {question}
    kept = []
    for value in values:
        text = " ".join(str(value).split())
        if text and text not in seen:
            seen.add(text)
            kept.append(text)
    return tuple(kept)


# Whitespace text may hold; any other control character is refused (PostgreSQL refuses
# NUL outright, and none of them belongs in a chat message), as the importer does.
ALLOWED_CONTROLS = frozenset("\n\r\t")


def _check_text(value: str, name: str) -> None:
    if any(unicodedata.category(ch) in ("Cc", "Cs") and ch not in ALLOWED_CONTROLS for ch in value):
        raise EntryInvalid(f"{name} holds a control character")


def checked_content(
    *, question: str, answer: str, category: str = "", alt_questions: Iterable[str] = (),
    generated_questions: Iterable[str] = (), locale: str = "zh-TW", active: bool = True,
) -> EntryContent:
    """Validate and tidy an entry's content; raise EntryInvalid saying what is wrong."""
    alt_questions, generated_questions = tuple(alt_questions), tuple(generated_questions)
    for name, value in (("question", question), ("answer", answer), ("category", category),
                        *(("an alternative question", q) for q in (*alt_questions, *generated_questions))):
        _check_text(str(value), name)
    question = " ".join(question.split())
    answer = answer.strip()
    if not question:
        raise EntryInvalid("question is empty")
    # An empty answer is allowed: a bank may hold questions nobody has answered yet (the
    # TPE open data does); the bot treats a match on one as not sure and offers a person.
    if len(question) > MAX_QUESTION:
        raise EntryInvalid(f"question is longer than {MAX_QUESTION} characters")
    if limits.utf16_units(answer) > MAX_ANSWER or len(answer_texts(answer)) > limits.MAX_MESSAGES:
        raise EntryInvalid(f"answer does not fit in {limits.MAX_MESSAGES} LINE text messages "
                           f"({limits.MAX_TEXT_UTF16_UNITS} UTF-16 units each)")
    category = " ".join(category.split())
    if len(category) > MAX_CATEGORY:
        raise EntryInvalid(f"category is longer than {MAX_CATEGORY} characters")
    alts = _clean_questions(alt_questions, question)
    generated = tuple(q for q in _clean_questions(generated_questions, question) if q not in alts)
    if len(alts) > MAX_ALT_QUESTIONS or len(generated) > MAX_ALT_QUESTIONS:
        raise EntryInvalid(f"more than {MAX_ALT_QUESTIONS} alternative questions")
    if any(len(q) > MAX_QUESTION for q in (*alts, *generated)):
        raise EntryInvalid(f"an alternative question is longer than {MAX_QUESTION} characters")
    return EntryContent(question, answer, category, alts, generated, locale or "zh-TW", active)


def answer_texts(answer: str) -> list[str]:
    """The text messages an answer is sent as (one, unless it is longer than LINE takes)."""
    return limits.split_text(answer)


def check_key(key: str) -> str:
    key = key.strip()
    if not key:
        raise EntryInvalid("id is empty")
    if len(key) > MAX_KEY or not key.isprintable():
        raise EntryInvalid(f"id {key[:40]!r} is not a valid id (1-{MAX_KEY} printable characters)")
    return key


# --- entries ----------------------------------------------------------------------------

def get_entry(session: Session, key: str) -> FaqEntry | None:
    return session.scalar(select(FaqEntry).where(FaqEntry.key == key))


def require_entry(session: Session, key: str) -> FaqEntry:
    entry = get_entry(session, key)
    if entry is None:
        raise EntryNotFound(key)
    return entry


def content_of(entry: FaqEntry) -> EntryContent:
    return EntryContent(
        entry.question, entry.answer, entry.category, tuple(entry.alt_questions or ()),
        tuple(entry.generated_questions or ()), entry.locale, entry.active,
    )


def save_entry(
    session: Session, *, key: str, content: EntryContent, actor: str, note: str | None = None,
    audited: bool = True,
) -> tuple[FaqEntry, str]:
    """Create the entry `key` or give it new content as a new version. Returns the entry
    and CREATED, UPDATED or UNCHANGED (same content: no new version). `audited=False`
    leaves the audit record to the caller (an import records one for the whole run)."""
    key = check_key(key)
    if note:
        _check_text(note, "note")
    entry = get_entry(session, key)
    now = utcnow()
    if entry is None:
        entry = FaqEntry(key=key, version=1, created_at=now)
        session.add(entry)
        outcome = CREATED
    elif content_of(entry) == content:
        return entry, UNCHANGED
    else:
        entry.version += 1
        outcome = UPDATED
    for name, value in content.as_dict().items():
        setattr(entry, name, value)
    entry.updated_at, entry.updated_by = now, actor
    session.flush()
    session.add(FaqEntryVersion(entry_id=entry.id, version=entry.version, content=content.as_dict(),
                                changed_at=now, changed_by=actor, note=note))
    if audited:
        audit.record(session, actor=actor, action=f"faq.entry.{'create' if outcome == CREATED else 'update'}",
                     target_type="faq_entry", target_id=key, details={"version": entry.version, "note": note})
    session.flush()
    return entry, outcome


def create_entry(
    session: Session, *, key: str, content: EntryContent, actor: str, note: str | None = None,
) -> FaqEntry:
    """A new entry; EntryExists when `key` is taken (staff creating by hand must not
    overwrite an entry by picking a used id; save_entry is the upsert)."""
    if get_entry(session, check_key(key)) is not None:
        raise EntryExists(key.strip())
    entry, _ = save_entry(session, key=key, content=content, actor=actor, note=note)
    return entry


def update_entry(session: Session, *, key: str, actor: str, note: str | None = None, **changes: Any) -> FaqEntry:
    """Change some fields of an existing entry (a new version when anything changed)."""
    entry = require_entry(session, key)
    unknown = set(changes) - set(CONTENT_FIELDS)
    if unknown:
        raise EntryInvalid(f"unknown field(s): {', '.join(sorted(unknown))}")
    current = content_of(entry).as_dict() | changes
    entry, _ = save_entry(session, key=key, content=checked_content(**current), actor=actor, note=note)
    return entry


def add_alt_question(session: Session, *, key: str, question: str, actor: str) -> FaqEntry:
    entry = require_entry(session, key)
    return update_entry(session, key=key, actor=actor, note="alternative question added",
                        alt_questions=[*entry.alt_questions, question])


def review_generated(session: Session, *, key: str, question: str, keep: bool, actor: str) -> FaqEntry:
    """Staff's verdict on one LLM-drafted question of an entry: keep it (it becomes a
    staff-written alternative) or delete it. A question no longer among the drafts (a
    second click, another reviewer) changes nothing."""
    entry = require_entry(session, key)
    if question not in entry.generated_questions:
        return entry
    changes: dict[str, Any] = {"generated_questions": [q for q in entry.generated_questions if q != question]}
    if keep:
        changes["alt_questions"] = [*entry.alt_questions, question]
    return update_entry(session, key=key, actor=actor, note=f"generated question {'kept' if keep else 'deleted'}",
                        **changes)


def list_entries(
    session: Session, *, search: str | None = None, category: str | None = None,
    active: bool | None = None, limit: int = 50, offset: int = 0,
) -> tuple[list[FaqEntry], int]:
    query = select(FaqEntry)
    if search:
        pattern = f"%{search.strip()}%"
        query = query.where(or_(FaqEntry.key.ilike(pattern), FaqEntry.question.ilike(pattern),
                                FaqEntry.answer.ilike(pattern)))
    if category:
        query = query.where(FaqEntry.category == category)
    if active is not None:
        query = query.where(FaqEntry.active == active)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(FaqEntry.key).limit(limit).offset(offset)).all()
    return list(rows), total


def categories(session: Session) -> list[str]:
    return list(session.scalars(select(FaqEntry.category).distinct().order_by(FaqEntry.category)))


def entry_versions(session: Session, key: str) -> list[FaqEntryVersion]:
    entry = require_entry(session, key)
    return list(session.scalars(select(FaqEntryVersion).where(FaqEntryVersion.entry_id == entry.id)
                                .order_by(FaqEntryVersion.version.desc())))


def counts(session: Session) -> dict[str, int]:
    """Entries, active entries, and staff-written vs generated alternative questions."""
    rows = session.execute(select(FaqEntry.active, FaqEntry.alt_questions, FaqEntry.generated_questions)).all()
    return {
        "entries": len(rows), "active": sum(1 for r in rows if r.active),
        "alt_questions": sum(len(r.alt_questions or ()) for r in rows),
        "generated_questions": sum(len(r.generated_questions or ()) for r in rows),
    }


def as_bank_entry(entry: FaqEntry) -> Entry:
    """The matcher's view: staff-written and generated alternatives are both matched."""
    return Entry(entry.key, entry.question, entry.answer, entry.category,
                 (*entry.alt_questions, *entry.generated_questions))


def active_entries(session: Session) -> list[FaqEntry]:
    return list(session.scalars(select(FaqEntry).where(FaqEntry.active.is_(True)).order_by(FaqEntry.key)))


# --- the decision -----------------------------------------------------------------------

def latest_calibration(session: Session) -> FaqDecision | None:
    return session.scalar(select(FaqDecision).order_by(FaqDecision.id.desc()).limit(1))


def current_decision(session: Session) -> Decision:
    """The brand's calibrated decision, or the shipped default when it has none."""
    calibration = latest_calibration(session)
    return Decision.from_dict(calibration.decision) if calibration else load_decision()


def save_calibration(
    session: Session, *, decision: Decision, report: dict[str, Any], examples: int, source: str, actor: str,
) -> FaqDecision:
    row = FaqDecision(decision=decision.to_dict(), report=report, examples=examples, source=source,
                      created_by=actor)
    session.add(row)
    audit.record(session, actor=actor, action="faq.calibrate", target_type="faq_decision",
                 details={"examples": examples, "source": source, **{k: v for k, v in report.items() if k != "by_style"}})
    session.flush()
    return row


# --- the index --------------------------------------------------------------------------

_cache_lock = threading.Lock()
_cached: tuple[tuple[Any, ...], FaqIndex] | None = None


def _fingerprint(session: Session) -> tuple[Any, ...]:
    # Any change to an entry bumps its version and updated_at; a new calibration adds a row.
    entries = session.execute(
        select(func.count(FaqEntry.id), func.coalesce(func.sum(FaqEntry.version), 0), func.max(FaqEntry.updated_at))
    ).one()
    decision_id = session.scalar(select(func.max(FaqDecision.id)))
    return (session.get_bind().engine.url.render_as_string(), *entries, decision_id)


def build_index(entries: Sequence[FaqEntry], decision: Decision) -> FaqIndex:
    # Categories are the brand's own words (its product lines, programme names): jieba
    # should keep them whole.
    terms = sorted({e.category for e in entries if e.category})
    return FaqIndex.build([as_bank_entry(e) for e in entries], extra_terms=terms, decision=decision)


def current_index(session: Session) -> FaqIndex:
    """The index over the active entries with the current decision, built once per change."""
    global _cached
    # Once per memo scope (a batch of webhook events): the bank does not change within one.
    fingerprint = memoised(session, "chatbot.faq_fingerprint", lambda: _fingerprint(session))
    cached = _cached
    if cached is not None and cached[0] == fingerprint:
        return cached[1]
    with _cache_lock:
        if _cached is not None and _cached[0] == fingerprint:
            return _cached[1]
        index = build_index(active_entries(session), current_decision(session))
        _cached = (fingerprint, index)
        return index


def answer_of(session: Session, key: str) -> str | None:
    """The answer the bot gives for entry `key`, as the current index holds it (no query);
    None when the entry is inactive, gone or waiting for an answer."""
    index = current_index(session)
    try:
        return index.entry(key).answer or None
    except KeyError:
        entry = get_entry(session, key)
        if entry is None or not entry.active:
            return None
        return entry.answer or None


def match(session: Session, query: str) -> Match:
    return current_index(session).match(query)


def describe_match(session: Session, *, query: str, found: Match) -> MatchRead:
    """What the bot answers to `query` (`found`, as the bot matched it), with the
    candidates' questions and the answer's text, for staff trying a question."""
    keys = [key for key, _ in found.candidates]
    entries = {e.key: e for e in session.scalars(select(FaqEntry).where(FaqEntry.key.in_(keys)))} if keys else {}
    answer = entries[found.entry_id].answer if found.entry_id in entries else None
    return MatchRead(
        query=query, entry_id=found.entry_id, best_id=found.top_id, score=round(found.score, 4),
        answered=found.answered, answer=answer,
        candidates=[MatchCandidate(entry_id=key, score=round(score, 4),
                                   question=entries[key].question if key in entries else None)
                    for key, score in found.candidates],
        features={name: round(value, 4) for name, value in found.features.items()},
    )
