"""Drafting alternative questions with the configured LLM (`toolkit faq expand`) and
embedding the bank (`toolkit faq embed`).

Customers rarely use the FAQ's own wording; a few colloquial rewrites of each question
(zh-TW as typed on LINE, English for English entries) give the lexical matcher more ways
to find an entry, with no model at answer time. They are stored as the entry's
generated_questions, never as alt_questions, in a new version by "llm:<model>", so staff
can review them and they are counted apart.

Only the brand's own entry texts are sent, never customer messages, so this runs whenever
an LLM is configured (llm_send_customer_text is about customer text).

Each entry is drafted with no transaction open and stored in its own short transaction:
a failure loses that entry only, and running the command again tops up what is missing
(an entry with per_entry generated questions or more is skipped).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from toolkit.chatbot import embeddings, service
from toolkit.chatbot.analysis import prepare
from toolkit.llm.client import MALFORMED, LlmClient, LlmUnavailable

log = logging.getLogger(__name__)

PARAPHRASE_TASK = "paraphrase_question"
NOTE = "generated alternatives"
MAX_GENERATED_CHARS = 120
EMBED_BATCH_ENTRIES = 32

SYSTEM_PROMPT = (
    "You help a brand's customer service write down how customers really ask a question. The user message is "
    "a JSON task with an FAQ entry's `question` and `answer`, a `language`, a `count` and `avoid` (questions "
    "it already has). Write `count` different questions a customer would send on LINE that this answer "
    "answers: short, colloquial, the way people type on their phones (for zh-TW: Traditional Chinese as used "
    "in Taiwan, everyday words, particles such as 嗎/喔/啊 where natural; for en: casual English). Vary the "
    "wording and the angle; do not repeat `avoid`; no personal details, no numbering. "
    'Reply with JSON only: {"questions": ["...", "..."]}.'
)

Scope = Callable[[], AbstractContextManager[Session]]


@dataclass(frozen=True)
class Draftable:
    """An entry to draft for (plain values: drafting happens with no session open)."""

    key: str
    question: str
    answer: str
    locale: str
    existing: tuple[str, ...]  # question, alternatives and generated questions
    generated: int


@dataclass
class ExpandReport:
    expanded: int = 0  # entries that got at least one new question
    added: int = 0  # questions added
    unchanged: int = 0  # entries the model had nothing new for
    skipped: int = 0  # entries that already had enough generated questions
    failed: list[tuple[str, str]] = field(default_factory=list)  # (key, reason)

    def as_dict(self) -> dict[str, int]:
        return {"expanded": self.expanded, "questions_added": self.added, "unchanged": self.unchanged,
                "skipped": self.skipped, "failed": len(self.failed)}


def plan(session: Session, *, per_entry: int, limit: int | None = None) -> tuple[list[Draftable], int]:
    """The active entries to draft for (at most `limit`), and how many were skipped because
    they already have `per_entry` generated questions or more."""
    todo: list[Draftable] = []
    skipped = 0
    for entry in service.active_entries(session):
        if len(entry.generated_questions or ()) >= per_entry:
            skipped += 1
            continue
        if limit is not None and len(todo) >= limit:
            break
        todo.append(Draftable(entry.key, entry.question, entry.answer, entry.locale,
                              (entry.question, *entry.alt_questions, *entry.generated_questions),
                              len(entry.generated_questions or ())))
    return todo, skipped


def paraphrase_messages(item: Draftable, count: int) -> list[dict[str, str]]:
    task = {
        "task": PARAPHRASE_TASK,
        "question": item.question,
        "answer": item.answer,
        "language": "en" if item.locale.lower().startswith("en") else "zh-TW",
        "count": count,
        "avoid": list(item.existing),
    }
    return [{"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": json.dumps(task, ensure_ascii=False)}]


def _dedupe_key(text: str) -> str:
    return prepare(text).replace(" ", "")


def new_questions(candidates: object, existing: tuple[str, ...], count: int) -> list[str]:
    """The usable, new questions among what the model wrote: strings, not too long, not
    the same as an existing question once normalised (case, width, punctuation, script)."""
    if not isinstance(candidates, list):
        raise LlmUnavailable(MALFORMED, "`questions` is not a list")
    seen = {_dedupe_key(q) for q in existing}
    kept: list[str] = []
    for candidate in candidates:
        if not isinstance(candidate, str):
            continue
        text = " ".join(candidate.split())
        key = _dedupe_key(text)
        if not key or len(text) > MAX_GENERATED_CHARS or key in seen:
            continue
        seen.add(key)
        kept.append(text)
    return kept[:count]


def draft(client: LlmClient, item: Draftable, *, per_entry: int) -> list[str]:
    """New alternative questions for one entry from the model (the network call)."""
    count = per_entry - item.generated
    data = client.chat_json(paraphrase_messages(item, count), temperature=0.7)
    return new_questions(data.get("questions"), item.existing, count)


def store(session: Session, *, key: str, questions: list[str], model: str) -> int:
    """Append `questions` to the entry's generated questions (a new version by llm:<model>);
    how many were new to it (staff may have changed it since it was planned)."""
    entry = service.require_entry(session, key)
    fresh = new_questions(questions, (entry.question, *entry.alt_questions, *entry.generated_questions),
                          len(questions))
    room = service.MAX_ALT_QUESTIONS - len(entry.generated_questions)
    fresh = fresh[:max(room, 0)]
    if fresh:
        service.update_entry(session, key=key, actor=f"llm:{model}", note=NOTE,
                             generated_questions=[*entry.generated_questions, *fresh])
    return len(fresh)


def expand_all(
    client: LlmClient, scope: Scope, *, per_entry: int, limit: int | None = None,
    on_plan: Callable[[int], None] | None = None, on_entry: Callable[[str, int | None], None] | None = None,
) -> ExpandReport:
    """Draft and store alternatives for every active entry that needs them. `scope` opens
    a unit of work (toolkit.db.session_scope); `on_plan(total)` and `on_entry(key, added
    or None on failure)` report progress."""
    report = ExpandReport()
    with scope() as session:
        todo, report.skipped = plan(session, per_entry=per_entry, limit=limit)
    if on_plan:
        on_plan(len(todo))
    for item in todo:
        added: int | None = None
        try:
            questions = draft(client, item, per_entry=per_entry)
            with scope() as session:
                added = store(session, key=item.key, questions=questions, model=client.model)
        except (LlmUnavailable, service.EntryInvalid, service.EntryNotFound) as exc:
            report.failed.append((item.key, exc.message))
            log.warning("faq expand: %s failed: %s", item.key, exc.message)
        else:
            report.added += added
            if added:
                report.expanded += 1
            else:
                report.unchanged += 1
        if on_entry:
            on_entry(item.key, added)
    return report


@dataclass
class EmbedReport:
    embedded: int = 0
    already: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        return {"embedded": self.embedded, "already embedded": self.already, "failed": len(self.failed)}


def _batches(items: list[embeddings.EntryTexts], size: int) -> Iterator[list[embeddings.EntryTexts]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def embed_all(
    client: LlmClient, scope: Scope, *, on_plan: Callable[[int], None] | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> EmbedReport:
    """Embed every active entry whose questions have no embedding under the configured
    embedding model, in batches (each stored in its own transaction)."""
    report = EmbedReport()
    with scope() as session:
        store_ = embeddings.embedding_store(session, model=client.embedding_model)
        missing = list(store_.missing)
        report.already = len(store_.keys)
    if on_plan:
        on_plan(len(missing))
    for batch in _batches(missing, EMBED_BATCH_ENTRIES):
        try:
            # The session starts its transaction at its first statement, after the model
            # has answered: no transaction waits on the network.
            with scope() as session:
                embeddings.embed_entries(session, client, batch)
        except LlmUnavailable as exc:
            report.failed.extend((item.key, exc.message) for item in batch)
        else:
            report.embedded += len(batch)
        if on_batch:
            on_batch(len(batch))
    return report
