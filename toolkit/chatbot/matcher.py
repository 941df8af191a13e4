"""The FAQ matcher: an index over a bank's entries that answers a customer's message with
one entry or declines.

    index = FaqIndex.build(entries, extra_terms=["晴川", "LINE Pay"])
    match = index.match("退貨要怎麼辦 😭")
    match.answered, match.entry_id, match.score      # score: the decision's probability

Pure and local: no database, no network, no model. Building the TPE bank (1,877 entries)
takes about 3 s; a query about a millisecond (p99 1.5 ms, benchmarks/faq.py). An index is
immutable, so one can be shared by threads; a changed bank gets a new index.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from toolkit.chatbot.analysis import Analyzer, bank_terms, prepare
from toolkit.chatbot.bank import Entry
from toolkit.chatbot.decision import FEATURES, Decision, load_decision
from toolkit.chatbot.retrieval import Retrieval, RetrievalConfig, Retriever

CANDIDATES = 5


@dataclass(frozen=True)
class Match:
    """The matcher's answer to one message. `entry_id` is the entry to answer with (None
    when the decision declines); `candidates` are the best entries with their fused
    retrieval scores whatever the decision; `features` are what the decision saw."""

    entry_id: str | None
    score: float
    answered: bool
    candidates: list[tuple[str, float]] = field(default_factory=list)
    features: dict[str, float] = field(default_factory=dict)

    @property
    def top_id(self) -> str | None:
        """The best candidate, answered or not."""
        return self.candidates[0][0] if self.candidates else None


def _index_text(text: str) -> str:
    # Bank text often carries HTML entities (the open data's titles do: 交通維持&gt;...).
    return prepare(html.unescape(text))


class FaqIndex:
    def __init__(
        self,
        entries: Sequence[Entry],
        retriever: Retriever | None,
        decision: Decision,
        *,
        extra_terms: tuple[str, ...] = (),
        config: RetrievalConfig | None = None,
    ) -> None:
        self.entries = tuple(entries)
        self._retriever = retriever
        self.decision = decision
        self.extra_terms = extra_terms
        self.config = config or RetrievalConfig()
        self._position = {e.id: i for i, e in enumerate(self.entries)}

    @classmethod
    def build(
        cls,
        entries: Iterable[Entry],
        *,
        extra_terms: Iterable[str] = (),
        decision: Decision | None = None,
        config: RetrievalConfig | None = None,
    ) -> FaqIndex:
        """Index `entries` (ids must be unique). `extra_terms`: the brand's own words
        (product names, programme names) for jieba, on top of the phrases mined from the
        bank's questions. `decision`: the default is the shipped toolkit/chatbot/decision.json."""
        entries = list(entries)
        ids = [e.id for e in entries]
        if len(set(ids)) != len(ids):
            duplicates = sorted({i for i in ids if ids.count(i) > 1})
            raise ValueError(f"duplicate entry ids: {duplicates[:5]}")
        decision = decision or load_decision()
        extra = tuple(extra_terms)
        config = config or RetrievalConfig()
        if not entries:
            return cls(entries, None, decision, extra_terms=extra, config=config)
        questions = [q for e in entries for q in (e.question, *e.alt_questions)]
        analyzer = Analyzer([*bank_terms(html.unescape(q) for q in questions), *extra])
        row_text: list[str] = []
        row_entry: list[int] = []
        for i, entry in enumerate(entries):
            for question in (entry.question, *entry.alt_questions):
                row_text.append(_index_text(question))
                row_entry.append(i)
        answers = [_index_text(e.answer) for e in entries]
        retriever = Retriever(row_text, np.asarray(row_entry), answers, analyzer, config)
        return cls(entries, retriever, decision, extra_terms=extra, config=config)

    def rebuilt(self, entries: Iterable[Entry], *, decision: Decision | None = None) -> FaqIndex:
        """A new index over `entries` with this one's brand terms, settings and decision."""
        return FaqIndex.build(entries, extra_terms=self.extra_terms, decision=decision or self.decision, config=self.config)

    def with_decision(self, decision: Decision) -> FaqIndex:
        """The same index answering with another decision (nothing is rebuilt)."""
        return FaqIndex(self.entries, self._retriever, decision, extra_terms=self.extra_terms, config=self.config)

    @property
    def analyzer(self) -> Analyzer:
        if self._retriever is None:
            return Analyzer(self.extra_terms)
        return self._retriever.analyzer

    def __len__(self) -> int:
        return len(self.entries)

    def entry(self, entry_id: str) -> Entry:
        return self.entries[self._position[entry_id]]

    def retrieve(self, query: str, k: int = CANDIDATES) -> Retrieval | None:
        """The raw retrieval (None for an empty bank or a message with no text)."""
        prepared = prepare(query)
        if self._retriever is None or not prepared:
            return None
        return self._retriever.retrieve(prepared, k)

    def features(self, query: str, k: int = CANDIDATES) -> tuple[Retrieval | None, dict[str, float]]:
        retrieval = self.retrieve(query, k)
        return retrieval, features_of(retrieval)

    def match(self, query: str, *, decision: Decision | None = None, k: int = CANDIDATES) -> Match:
        """Match one message; `decision` overrides the index's (e.g. a brand's calibrated one)."""
        decision = decision or self.decision
        retrieval, values = self.features(query, k)
        if retrieval is None:
            return Match(None, 0.0, False, [], values)
        candidates = [(self.entries[i].id, round(float(s), 6)) for i, s in zip(retrieval.order, retrieval.fused, strict=True)]
        probability = decision.probability(values)
        answered = decision.answers(probability) and retrieval.fused[0] > 0
        return Match(candidates[0][0] if answered else None, probability, answered, candidates, values)


def features_of(retrieval: Retrieval | None) -> dict[str, float]:
    """The decision's scale-free features of a retrieval (all zero when nothing was
    retrieved)."""
    if retrieval is None or retrieval.fused[0] <= 0:
        return dict.fromkeys(FEATURES, 0.0) | {"word_unknown": 1.0, "short": 1.0}
    best = retrieval.fused[0]
    runner_up = retrieval.fused[1] if len(retrieval.fused) > 1 else 0.0
    top = int(retrieval.order[0])
    return {
        "word_rel": float(retrieval.word_rel[0]),
        "char_rel": float(retrieval.char_rel[0]),
        "margin": float(1.0 - runner_up / best),
        "agree": float(retrieval.word_top == top and retrieval.char_top == top),
        "word_cov_q": float(retrieval.word_cov_q[0]),
        "char_cov": float(retrieval.char_cov[0]),
        "word_qcov": float(retrieval.word_question_cov),
        "char_qcov": float(retrieval.char_question_cov),
        "word_unknown": float(retrieval.word_unknown),
        "short": 1.0 / max(retrieval.n_words, 1),
    }
