"""The unanswered queue: questions the bot was not sure about, grouped for staff, who turn
a group into a new FAQ entry or into alternative questions of an existing one (one step
each), or dismiss it.

Grouping is lexical and local (no model): each question becomes a TF-IDF vector of the
matcher's words (normalised text, jieba, particles dropped, everyday words also read as
their formal ones); a question joins the group whose first question it is most similar
to, or starts a new one. At most the newest GROUPING_CAP open questions are grouped, so
the page stays fast whatever the backlog.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from toolkit.audit import service as audit
from toolkit.chatbot import service
from toolkit.chatbot.analysis import Analyzer, expand, prepare
from toolkit.chatbot.models import FaqEntry, UnansweredQuestion
from toolkit.kit.clock import utcnow
from toolkit.kit.errors import Conflict, InvalidInput
from toolkit.llm import masking

OPEN, RESOLVED, DISMISSED = "open", "resolved", "dismissed"
GROUPING_CAP = 2000
# Two questions are one group from this cosine of their word vectors. On the retail
# paraphrase sets (eval-data/queries: typos, 注音文, keywords, long messages) about 85% of
# the pairs it puts together belong together, and it finds a fifth of all such pairs:
# a mixed group would add a wrong alternative question, so precision comes first.
SIMILAR = 0.45
# Words that say nothing about which question it is, on top of the matcher's stopwords
# (Simplified, as the words are): modal verbs and helpers. 「可以用信用卡分期嗎」 and
# 「信用卡能分期付款嗎」 are one question.
FILLER_WORDS = frozenset("可以 能 能够 会 用 要 需要 有 没有 可 得 帮 帮忙 帮我 麻烦 怎么 怎么样 如何".split())


class QuestionsNotOpen(Conflict):
    code = "unanswered_not_open"


class KeyTaken(Conflict):
    code = "faq_entry_exists"

    def __init__(self, key: str) -> None:
        super().__init__(f"an FAQ entry {key!r} already exists; add the questions to it instead", key=key)


class NoQuestions(InvalidInput):
    code = "unanswered_none_selected"


def record(
    session: Session, *, text: str, contact_id: int | None, message_id: int | None,
    best_entry_key: str | None, score: float,
) -> UnansweredQuestion:
    question = UnansweredQuestion(text=text, contact_id=contact_id, message_id=message_id,
                                  best_entry_key=best_entry_key, score=float(score), status=OPEN)
    session.add(question)
    session.flush()
    return question


def open_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(UnansweredQuestion)
                          .where(UnansweredQuestion.status == OPEN)) or 0


# --- grouping ---------------------------------------------------------------------------

@dataclass
class UnansweredGroup:
    representative: str
    questions: list[UnansweredQuestion]
    count: int
    best_entry_key: str | None
    latest_at: datetime
    ids: list[int] = field(default_factory=list)


@lru_cache(maxsize=1)
def _analyzer() -> Analyzer:
    return Analyzer()  # jieba's shared dictionary, no bank terms: parsed once per process


def features(text: str) -> Counter[str]:
    """The words a question is compared by: jieba words without particles and pronouns,
    plus the formal words its everyday ones stand for (synonyms.py)."""
    prepared = prepare(text)
    words = _analyzer().words(f"{prepared} {expand(prepared)}")
    return Counter(w for w in words if w.strip() and w not in FILLER_WORDS)


def _vectors(texts: Sequence[str]) -> list[dict[str, float]]:
    """Unit TF-IDF vectors, the IDF taken over the texts being grouped (smoothed, so that
    in a small queue of paraphrases their shared words still count fully)."""
    counts = [features(t) for t in texts]
    df = Counter(term for c in counts for term in c)
    n = len(counts)
    vectors = []
    for c in counts:
        v = {t: (1 + math.log(k)) * (math.log((n + 1) / (df[t] + 1)) + 1) for t, k in c.items()}
        norm = math.sqrt(sum(x * x for x in v.values())) or 1.0
        vectors.append({t: x / norm for t, x in v.items()})
    return vectors


def cluster(texts: Sequence[str], *, threshold: float = SIMILAR) -> list[list[int]]:
    """Greedy clustering of `texts` (indexes, in the given order): each joins the group
    whose first text it is most similar to (cosine), at `threshold` or above, else starts
    one. An inverted index from word to group keeps it near-linear."""
    seeds: list[dict[str, float]] = []
    groups: list[list[int]] = []
    postings: dict[str, list[int]] = {}
    for index, mine in enumerate(_vectors(texts)):
        candidates = {g for term in mine for g in postings.get(term, ())}
        best, best_score = None, threshold
        for g in sorted(candidates):
            seed = seeds[g]
            score = sum(x * seed.get(t, 0.0) for t, x in mine.items())
            if score >= best_score and (best is None or score > best_score):
                best, best_score = g, score
        if best is None:
            best = len(groups)
            groups.append([])
            seeds.append(mine)
            for term in mine:
                postings.setdefault(term, []).append(best)
        groups[best].append(index)
    return groups


def groups(session: Session, *, limit: int = 50) -> list[UnansweredGroup]:
    """Open questions grouped by similarity, biggest group first (then most recent)."""
    rows = list(session.scalars(
        select(UnansweredQuestion).where(UnansweredQuestion.status == OPEN)
        .order_by(UnansweredQuestion.id.desc()).limit(GROUPING_CAP)
    ))
    result = []
    for members in cluster([q.text for q in rows]):
        questions = [rows[i] for i in members]
        result.append(_group(questions))
    result.sort(key=lambda g: (-g.count, -g.latest_at.timestamp(), g.representative))
    return result[:limit]


def _group(questions: list[UnansweredQuestion]) -> UnansweredGroup:
    # The wording asked most often (the newest on a tie: questions come newest first).
    texts = Counter(" ".join(q.text.split()) for q in questions)
    representative = max(texts, key=lambda t: texts[t])
    keys = Counter(q.best_entry_key for q in questions if q.best_entry_key)
    best_key = keys.most_common(1)[0][0] if keys else None
    return UnansweredGroup(
        representative=representative, questions=questions, count=len(questions), best_entry_key=best_key,
        latest_at=max(q.created_at for q in questions), ids=[q.id for q in questions],
    )


# --- resolving --------------------------------------------------------------------------

def _open_questions(session: Session, question_ids: Sequence[int]) -> list[UnansweredQuestion]:
    if not question_ids:
        raise NoQuestions("no questions selected")
    rows = list(session.scalars(
        select(UnansweredQuestion)
        .where(UnansweredQuestion.id.in_(set(question_ids)), UnansweredQuestion.status == OPEN)
        .order_by(UnansweredQuestion.id)
    ))
    if not rows:
        raise QuestionsNotOpen("none of these questions is open any more (resolved or dismissed meanwhile)")
    return rows


def _as_questions(rows: Sequence[UnansweredQuestion]) -> list[str]:
    """The customers' wordings, once each, without the phone numbers, e-mail addresses and
    ID numbers some carry (they become part of the bank, which staff and the LLM see);
    one too long to be a question is left out."""
    texts = dict.fromkeys(masking.without_identifiers(q.text) for q in rows)
    return [t for t in texts if t and len(t) <= service.MAX_QUESTION]


def _close(rows: Sequence[UnansweredQuestion], *, status: str, actor: str, entry_key: str | None) -> None:
    now = utcnow()
    for row in rows:
        row.status, row.resolved_entry_key, row.resolved_by, row.resolved_at = status, entry_key, actor, now


def resolve_as_new_entry(
    session: Session, *, question_ids: list[int], key: str, question: str, answer: str, category: str, actor: str,
) -> FaqEntry:
    """A new entry answering the group; the customers' own wordings become its
    alternative questions, so the bot answers them next time."""
    rows = _open_questions(session, question_ids)
    key = service.check_key(key)
    if service.get_entry(session, key) is not None:
        raise KeyTaken(key)
    content = service.checked_content(question=question, answer=answer, category=category,
                                      alt_questions=_as_questions(rows)[: service.MAX_ALT_QUESTIONS])
    entry, _ = service.save_entry(session, key=key, content=content, actor=actor,
                                  note=f"from {len(rows)} unanswered question(s)")
    _close(rows, status=RESOLVED, actor=actor, entry_key=entry.key)
    audit.record(session, actor=actor, action="faq.unanswered.new_entry", target_type="faq_entry",
                 target_id=entry.key, details={"questions": [r.id for r in rows]})
    session.flush()
    return entry


def resolve_as_alt_question(session: Session, *, question_ids: list[int], entry_key: str, actor: str) -> FaqEntry:
    """The group's wordings become alternative questions of an existing entry (one new
    version of it)."""
    rows = _open_questions(session, question_ids)
    entry = service.require_entry(session, entry_key)
    known = {entry.question, *entry.alt_questions}
    added = [t for t in _as_questions(rows) if t not in known]
    room = service.MAX_ALT_QUESTIONS - len(entry.alt_questions)
    if added and room > 0:
        entry = service.update_entry(session, key=entry.key, actor=actor, note=f"{len(added[:room])} alternative "
                                     "question(s) from the unanswered queue",
                                     alt_questions=[*entry.alt_questions, *added[:room]])
    _close(rows, status=RESOLVED, actor=actor, entry_key=entry.key)
    audit.record(session, actor=actor, action="faq.unanswered.alt_question", target_type="faq_entry",
                 target_id=entry.key, details={"questions": [r.id for r in rows], "added": len(added[:room])})
    session.flush()
    return entry


def dismiss(session: Session, *, question_ids: list[int], actor: str) -> int:
    """Not a question for the FAQ (chit-chat, a one-off): out of the queue. Returns how many."""
    if not question_ids:
        return 0
    rows = list(session.scalars(select(UnansweredQuestion).where(
        UnansweredQuestion.id.in_(set(question_ids)), UnansweredQuestion.status == OPEN)))
    _close(rows, status=DISMISSED, actor=actor, entry_key=None)
    if rows:
        audit.record(session, actor=actor, action="faq.unanswered.dismiss", target_type="unanswered_question",
                     details={"questions": sorted(r.id for r in rows)})
    session.flush()
    return len(rows)
