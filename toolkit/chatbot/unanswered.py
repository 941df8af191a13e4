"""The unanswered queue: questions the bot was not sure about, grouped for staff, who turn
a group into a new FAQ entry or into alternative questions of an existing one (one step
each), or dismiss it.

Grouping is lexical and cheap (no model, no jieba): each question becomes the character
bigrams of its normalised text without particles and pronouns, plus those of the formal
words its everyday ones stand for (synonyms.py); a question joins the group whose first
question it overlaps most (Dice coefficient), or starts a new one. At most the newest
GROUPING_CAP open questions are grouped, so the page stays fast whatever the backlog.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from toolkit.audit import service as audit
from toolkit.chatbot import service
from toolkit.chatbot.analysis import expand, prepare
from toolkit.chatbot.models import FaqEntry, UnansweredQuestion
from toolkit.kit.clock import utcnow
from toolkit.kit.errors import Conflict, InvalidInput

OPEN, RESOLVED, DISMISSED = "open", "resolved", "dismissed"
GROUPING_CAP = 2000
# Two questions are one group from this overlap of their bigrams (0..1). Paraphrases of
# one question score about 0.5-0.8; different questions on one subject (信用卡分期 vs
# 信用卡刷幾次) about 0.3-0.4.
SIMILAR = 0.45
# Characters that carry no meaning for "which question is this" (particles, pronouns,
# polite openers); removed before the bigrams so 「請問可以退貨嗎」 and 「退貨」 meet.
NOISE_CHARS = frozenset("的了嗎吗呢吧啊呀喔哦嘛啦耶欸唉呃呵哈嗯我你您他妳請問想要能可以會是有沒麻煩一下")


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


def features(text: str) -> frozenset[str]:
    """The bigrams a question is compared by (unigrams for a one-character question)."""
    prepared = prepare(text)
    core = "".join(ch for ch in prepared if ch not in NOISE_CHARS)
    runs = [*core.split(), *expand(prepared).split()]
    grams = {run[i : i + 2] for run in runs for i in range(len(run) - 1)}
    return frozenset(grams or {ch for run in runs for ch in run})


def similarity(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return 2 * len(a & b) / (len(a) + len(b))


def cluster(texts: Sequence[str], *, threshold: float = SIMILAR) -> list[list[int]]:
    """Greedy clustering of `texts` (indexes, in the given order): each joins the group
    whose first text it is most similar to, at `threshold` or above, else starts one.
    An inverted index from bigram to group keeps it near-linear."""
    seeds: list[frozenset[str]] = []
    groups: list[list[int]] = []
    postings: dict[str, list[int]] = {}
    for index, text in enumerate(texts):
        mine = features(text)
        candidates = {g for gram in mine for g in postings.get(gram, ())}
        best, best_score = None, threshold
        for g in sorted(candidates):
            score = similarity(mine, seeds[g])
            if score >= best_score and (best is None or score > best_score):
                best, best_score = g, score
        if best is None:
            best = len(groups)
            groups.append([])
            seeds.append(mine)
            for gram in mine:
                postings.setdefault(gram, []).append(best)
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
        select(UnansweredQuestion).where(UnansweredQuestion.id.in_(set(question_ids)), UnansweredQuestion.status == OPEN)
        .order_by(UnansweredQuestion.id)
    ))
    if not rows:
        raise QuestionsNotOpen("none of these questions is open any more (resolved or dismissed meanwhile)")
    return rows


def _as_questions(rows: Sequence[UnansweredQuestion]) -> list[str]:
    """The customers' wordings, once each; one too long to be a question is left out."""
    texts = dict.fromkeys(" ".join(q.text.split()) for q in rows)
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
