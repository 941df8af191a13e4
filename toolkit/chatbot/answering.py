"""The one function the bot calls: answer(session, text) -> Match.

Without a configured LLM, or with llm_send_customer_text off (the default), it is exactly
service.match(session, text) and touches no network. With both, the customer's message is
masked (toolkit.llm.masking) and two semantic signals check the lexical match:

1. embeddings: the masked message's cosine with every entry's questions
   (toolkit.chatbot.embeddings; entries not embedded yet are embedded in the same request
   when there are few, else the signal sits out until `toolkit faq embed` has run);
2. a rerank/verify chat completion that sees the masked message and the top candidates
   (lexical and embedding ones, fused by reciprocal rank) with their answers and names
   the one that answers it, or none.

The decision, with the lexical decision's answer A (or none) and its best candidate T:

    lexical answers A, model picks A                      -> answer A      (confirmed)
    lexical answers A, model abstains                     -> no answer     (vetoed)
    lexical answers A, model picks B, embeddings' top = B -> answer B      (overruled)
    lexical answers A, model picks B, otherwise           -> no answer     (disputed)
    lexical unsure,    model picks B, embeddings' top = B -> answer B      (rescued)
    lexical unsure,    anything else                      -> no answer     (declined)

A model alone never adds an answer: it takes two signals out of three to answer against
the lexical decision, and the model alone can withhold one (a wrong answer costs more than
a handoff to a person). The score stays the lexical decision's probability; the features
say what the semantic signals saw.

Any failure of the model (429, 5xx, timeout, an answer that is not the documented shape
or not our JSON) gives back the lexical match unchanged: never no answer, never an
exception. All calls of one answer share one time budget, llm_timeout_s. Outcomes are
counted in toolkit_faq_semantic_total.

The calls happen inside the caller's transaction (the worker's, for a LINE event): up to
llm_timeout_s with that transaction open.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from prometheus_client import Counter
from sqlalchemy import select
from sqlalchemy.orm import Session

from toolkit.chatbot import embeddings, service
from toolkit.chatbot.analysis import prepare
from toolkit.chatbot.matcher import Match
from toolkit.chatbot.models import FaqEntry
from toolkit.llm.client import MALFORMED, TIMEOUT, LlmClient, LlmConfig, LlmUnavailable
from toolkit.llm.masking import mask
from toolkit.settings import get_settings

log = logging.getLogger(__name__)

FAQ_SEMANTIC = Counter(
    "toolkit_faq_semantic_total", "FAQ answers checked by the semantic signals, by outcome", ["outcome"]
)

RERANK_CANDIDATES = 5
RRF_K = 60  # reciprocal-rank fusion's usual constant: ranks matter, score scales do not
# Entries embedded on the spot when they have no embedding yet; more wait for `toolkit faq embed`.
LAZY_EMBED_LIMIT = 32
ANSWER_CHARS = 400  # of each candidate's answer in the rerank prompt
OTHER_QUESTIONS = 5  # of each candidate's alternative questions in the rerank prompt
MIN_CALL_S = 0.2  # less budget than this left: do not start another call

CHOOSE_TASK = "choose_faq"
SYSTEM_PROMPT = (
    "You check a customer-service FAQ bot for a brand on LINE. The user message is a JSON task: "
    "`message` is what a customer wrote (personal details are masked as [PHONE], [EMAIL], [ID], [CARD], "
    "[NUMBER]); `candidates` are FAQ entries, each with an `id`, a `question`, `other_questions` (other ways "
    "customers ask it) and its `answer`. "
    "Decide which candidate's answer answers what the customer asks. If none of them does, or the customer "
    "is complaining, chatting, or asking something the answers do not cover, choose none. "
    'Reply with JSON only: {"choice": "<id>"} or {"choice": "none"}.'
)

CONFIRMED, VETOED, OVERRULED, DISPUTED, RESCUED, DECLINED, FALLBACK = (
    "confirmed", "vetoed", "overruled", "disputed", "rescued", "declined", "fallback",
)


@dataclass(frozen=True)
class Semantic:
    """What the semantic signals said about one message."""

    candidates: tuple[str, ...]  # the keys shown to the model, best fused first
    pick: str | None  # the model's choice (None: it abstained)
    embedding_top: str | None  # None when the embedding signal sat out
    cosines: dict[str, float]


def answer(session: Session, text: str) -> Match:
    """The bot's answer to a customer's message (see the module docstring)."""
    lexical = service.match(session, text)
    settings = get_settings()
    # A message the lexical path finds nothing for still goes on: embeddings can find an
    # entry that shares no word with it (another language, other words for the same thing).
    if not settings.llm_reads_customer_text or not service.current_index(session).entries:
        return lexical
    masked = mask(text)
    if not prepare(masked):
        return lexical
    try:
        semantic = consult(session, _client(LlmConfig.from_settings(settings)), masked, lexical,
                           budget_s=settings.llm_timeout_s)
    except LlmUnavailable as exc:
        FAQ_SEMANTIC.labels(FALLBACK).inc()
        log.info("FAQ semantic signals unavailable (%s): lexical answer kept", exc.reason)
        return lexical
    except Exception:  # noqa: BLE001 - the customer gets the lexical answer whatever went wrong here
        FAQ_SEMANTIC.labels(FALLBACK).inc()
        log.exception("FAQ semantic signals failed: lexical answer kept")
        return lexical
    outcome, match = combine(lexical, semantic)
    FAQ_SEMANTIC.labels(outcome).inc()
    return match


_clients: dict[LlmConfig, LlmClient] = {}
_clients_lock = threading.Lock()


def _client(config: LlmConfig | None) -> LlmClient:
    """One client (one connection pool, one cool-down) per configuration and process. Real
    time: no retries, the answer's budget allows one attempt per call."""
    if config is None:
        raise LlmUnavailable("not_configured")
    with _clients_lock:
        client = _clients.get(config)
        if client is None:
            client = _clients[config] = LlmClient(config, max_retries=0, cool_down=True)
        return client


def reset_clients() -> None:
    """Close and forget the cached clients (after the settings change)."""
    with _clients_lock:
        for client in _clients.values():
            client.close()
        _clients.clear()


class _Budget:
    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def left(self) -> float:
        remaining = self.deadline - time.monotonic()
        if remaining < MIN_CALL_S:
            raise LlmUnavailable(TIMEOUT, "the answer's time budget is spent")
        return remaining


def consult(session: Session, client: LlmClient, masked: str, lexical: Match, *, budget_s: float) -> Semantic:
    """Ask the embeddings and the rerank model about `masked` (already masked text)."""
    budget = _Budget(budget_s)
    store = embeddings.embedding_store(session, model=client.embedding_model)
    pending = store.missing if len(store.missing) <= LAZY_EMBED_LIMIT else ()
    if store.missing and not pending:
        _warn_unembedded(store)
    with session.begin_nested():  # a failed write must not poison the caller's transaction
        [query_vector] = embeddings.embed_entries(session, client, pending, extra=[masked], timeout_s=budget.left())
    if pending:
        store = embeddings.embedding_store(session, model=client.embedding_model)
    cosines = store.scores(query_vector) if store.complete else {}
    embedding_order = sorted(cosines, key=lambda key: -cosines[key])
    candidates = fuse([key for key, _ in lexical.candidates], embedding_order[:RERANK_CANDIDATES])
    pick = rerank(session, client, masked, candidates[:RERANK_CANDIDATES], timeout_s=budget.left())
    return Semantic(tuple(candidates[:RERANK_CANDIDATES]), pick, embedding_order[0] if embedding_order else None,
                    cosines)


_warned: set[tuple[str, int]] = set()


def _warn_unembedded(store: embeddings.EmbeddingStore) -> None:
    # Once per model and count, not once per customer message.
    if (store.model, len(store.missing)) not in _warned:
        _warned.add((store.model, len(store.missing)))
        log.warning("%d FAQ entries have no %s embeddings: the embedding signal sits out until "
                    "`toolkit faq embed` has run", len(store.missing), store.model)


def fuse(*rankings: Sequence[str]) -> list[str]:
    """Keys by reciprocal-rank fusion of the rankings (ties: first seen first)."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, key in enumerate(ranking, start=1):
            scores[key] = scores.get(key, 0.0) + 1.0 / (RRF_K + rank)
    return sorted(scores, key=lambda key: -scores[key])


def rerank(session: Session, client: LlmClient, masked: str, keys: Sequence[str], *, timeout_s: float) -> str | None:
    """The key of the candidate the model says answers `masked`, or None."""
    entries = {e.key: e for e in session.scalars(select(FaqEntry).where(FaqEntry.key.in_(list(keys))))}
    shown = [entries[key] for key in keys if key in entries]
    if not shown:
        return None
    labels = {str(i): entry.key for i, entry in enumerate(shown, start=1)}
    data = client.chat_json(rerank_messages(masked, shown), timeout_s=timeout_s)
    choice = data.get("choice")
    choice = str(choice).strip().lower() if isinstance(choice, (str, int)) and not isinstance(choice, bool) else None
    if choice == "none":
        return None
    if choice not in labels:
        raise LlmUnavailable(MALFORMED, f"the model chose {data.get('choice')!r}, not a candidate or none")
    return labels[choice]


def rerank_messages(masked: str, entries: Sequence[FaqEntry]) -> list[dict[str, str]]:
    task = {
        "task": CHOOSE_TASK,
        "message": masked,
        "candidates": [
            {"id": str(i), "question": e.question,
             "other_questions": [*e.alt_questions, *e.generated_questions][:OTHER_QUESTIONS],
             "answer": e.answer[:ANSWER_CHARS]}
            for i, e in enumerate(entries, start=1)
        ],
    }
    return [{"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": json.dumps(task, ensure_ascii=False)}]


def combine(lexical: Match, semantic: Semantic) -> tuple[str, Match]:
    """The decision table of the module docstring: (outcome, match)."""
    pick, top = semantic.pick, semantic.embedding_top
    if lexical.answered and pick == lexical.entry_id:
        outcome, chosen = CONFIRMED, pick
    elif lexical.answered and pick is None:
        outcome, chosen = VETOED, None
    elif lexical.answered:
        outcome, chosen = (OVERRULED, pick) if top == pick else (DISPUTED, None)
    elif pick is not None and top == pick:
        outcome, chosen = RESCUED, pick
    else:
        outcome, chosen = DECLINED, None
    candidates = list(lexical.candidates) + [(key, 0.0) for key in semantic.candidates
                                             if key not in dict(lexical.candidates)]
    if chosen is not None:  # the answer first, as its best candidate
        candidates.sort(key=lambda item: item[0] != chosen)
    features = {
        **lexical.features,
        "semantic": 1.0,
        "model_abstained": float(pick is None),
        "model_agrees": float(pick is not None and pick == lexical.top_id),
        "embedding_agrees": float(top is not None and top == pick),
        "embedding_cos": round(semantic.cosines.get(pick or lexical.top_id or "", 0.0), 6),
    }
    return outcome, replace(lexical, entry_id=chosen, answered=chosen is not None, candidates=candidates,
                            features=features)

