"""Examples for fitting the decision, and the fits themselves.

The decision learns "answer or not" from three kinds of examples, so that it holds on banks
and queries it was not fitted on:

* labelled queries on their bank: positive when the best entry is the expected one;
* the same in-scope queries on the bank *without* their expected entry ("leave the entry
  out"): negatives that look exactly like real near-misses, a customer asking about
  something close to what the bank holds;
* pseudo-queries on random sub-banks of 20 to 900 entries (words dropped from an entry's
  question, or two of its keywords), asked of banks that hold that entry (positive when
  found) or not (negative): the same features at many bank sizes, so that nothing in
  the model depends on the size of the bank.

`calibrate` does the first two with a brand's own examples and refits the shipped model
towards them.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from toolkit.chatbot.analysis import STOPWORDS, Analyzer, prepare
from toolkit.chatbot.bank import Entry, Example
from toolkit.chatbot.decision import FEATURES, Decision, Rates, choose_threshold, fit_logistic, rates
from toolkit.chatbot.matcher import FaqIndex

FILLERS_BEFORE = ("请问", "想问一下", "我想知道", "不好意思", "")
FILLERS_AFTER = ("吗", "怎么办", "谢谢", "要怎么做", "")


@dataclass
class LabelledFeatures:
    """Feature rows with their labels (1: the best entry is the right answer)."""

    x: np.ndarray
    correct: np.ndarray  # bool: answering with the best entry would be right
    in_scope: np.ndarray  # bool: some entry of the bank answers it
    top_ids: list[str | None]
    expected: list[str | None]
    weight: np.ndarray

    @classmethod
    def empty(cls) -> LabelledFeatures:
        return cls(np.zeros((0, len(FEATURES))), np.zeros(0, bool), np.zeros(0, bool), [], [], np.zeros(0))

    def __add__(self, other: LabelledFeatures) -> LabelledFeatures:
        return LabelledFeatures(
            np.vstack([self.x, other.x]),
            np.r_[self.correct, other.correct],
            np.r_[self.in_scope, other.in_scope],
            self.top_ids + other.top_ids,
            self.expected + other.expected,
            np.r_[self.weight, other.weight],
        )

    def __len__(self) -> int:
        return len(self.correct)


def labelled(index: FaqIndex, examples: Iterable[Example], *, weight: float = 1.0) -> LabelledFeatures:
    """Features of `examples` on `index`; an expected id the bank does not hold counts as
    out of scope."""
    rows, correct, in_scope, top_ids, expected = [], [], [], [], []
    known = {e.id for e in index.entries}
    for example in examples:
        retrieval, values = index.features(example.query)
        top = index.entries[int(retrieval.order[0])].id if retrieval is not None and retrieval.fused[0] > 0 else None
        answerable = example.expected_id is not None and example.expected_id in known
        rows.append([values[name] for name in FEATURES])
        correct.append(answerable and top == example.expected_id)
        in_scope.append(answerable)
        top_ids.append(top)
        expected.append(example.expected_id if answerable else None)
    n = len(rows)
    return LabelledFeatures(
        np.asarray(rows, dtype=np.float64).reshape(n, len(FEATURES)),
        np.asarray(correct, bool),
        np.asarray(in_scope, bool),
        top_ids,
        expected,
        np.full(n, weight),
    )


def leave_out(index: FaqIndex, examples: Sequence[Example], *, weight: float = 1.0, share: float = 0.25) -> LabelledFeatures:
    """The in-scope examples asked of the bank without their expected entries: realistic
    near-misses, all negative. Entries are left out in groups of at most `share` of the
    bank (one rebuild per group), so that the bank stays much the same."""
    expected = sorted({e.expected_id for e in examples if e.expected_id is not None})
    if not expected or len(index) < 4:
        return LabelledFeatures.empty()
    per_group = max(1, int(len(index) * share))
    out = LabelledFeatures.empty()
    for start in range(0, len(expected), per_group):
        removed = set(expected[start : start + per_group])
        smaller = index.rebuilt([e for e in index.entries if e.id not in removed])
        asked = [Example(e.query, None, e.style) for e in examples if e.expected_id in removed]
        out = out + labelled(smaller, asked, weight=weight)
    return out


def pseudo_queries(question: str, rng: random.Random, analyzer: Analyzer) -> list[str]:
    """Two made-up customer messages from an entry's question: some of its words in
    order between fillers, and two of its keywords."""
    words = [w for w in analyzer.words(prepare(question)) if w not in STOPWORDS]
    if len(words) < 2:
        return []
    kept = [w for w in words if rng.random() < 0.6] or [rng.choice(words)]
    sentence = rng.choice(FILLERS_BEFORE) + "".join(kept) + rng.choice(FILLERS_AFTER)
    content = [w for w in words if len(w) >= 2] or words
    keywords = " ".join(rng.sample(content, min(2, len(content))))
    return [sentence, keywords]


def synthetic(
    entries: Sequence[Entry],
    *,
    sizes: Sequence[int] = (20, 60, 200, 900),
    repeats: int = 2,
    per_side: int = 50,
    exclude: Iterable[str] = (),
    seed: int = 13,
    weight: float = 0.3,
    decision: Decision,
) -> LabelledFeatures:
    """Pseudo-queries on random sub-banks of `entries` (see the module docstring).
    Entries in `exclude` (those of a held-out query set) never give queries."""
    rng = random.Random(seed)
    excluded = set(exclude)
    out = LabelledFeatures.empty()
    for size in sizes:
        for _ in range(repeats):
            if size >= len(entries):
                continue
            bank = rng.sample(list(entries), size)
            index = FaqIndex.build(bank, decision=decision)
            inside = {e.id for e in bank}
            bank_questions = [_bigrams(e.question) for e in bank]
            asked_in = [e for e in bank if e.id not in excluded]
            asked_out = [
                e for e in rng.sample(list(entries), min(len(entries), 4 * per_side))
                if e.id not in inside and e.id not in excluded and not _near_duplicate(e.question, bank_questions)
            ]
            examples = []
            for entry, expected in [(e, e.id) for e in rng.sample(asked_in, min(per_side, len(asked_in)))] + [
                (e, None) for e in asked_out[:per_side]
            ]:
                for query in pseudo_queries(entry.question, rng, index.analyzer):
                    examples.append(Example(query, expected, "pseudo"))
            out = out + labelled(index, examples, weight=weight)
    return out


def _bigrams(text: str) -> set[str]:
    text = prepare(text).replace(" ", "")
    return {text[i : i + 2] for i in range(len(text) - 1)}


def _near_duplicate(question: str, bank: Sequence[set[str]], limit: float = 0.6) -> bool:
    grams = _bigrams(question)
    return any(len(grams & other) / max(1, len(grams | other)) >= limit for other in bank)


def fit(
    data: LabelledFeatures,
    threshold_data: LabelledFeatures,
    *,
    prior: Decision | None = None,
    l2: float = 1.0,
    min_oos_rejection: float = 0.9,
    meta: dict | None = None,
) -> tuple[Decision, Rates]:
    """Fit the logistic model on `data`, then pick its threshold on `threshold_data` (real
    labelled queries) and report the rates there."""
    model = fit_logistic(data.x, data.correct, prior=prior, l2=l2, sample_weight=data.weight)
    p = model.probabilities(threshold_data.x)
    threshold = choose_threshold(p, threshold_data.correct, threshold_data.in_scope, min_oos_rejection=min_oos_rejection)
    decision = Decision(model.coef, model.intercept, model.mean, model.scale, threshold, model.features, dict(meta or {}))
    answered = [bool(a) and top is not None for a, top in zip(p >= threshold, threshold_data.top_ids, strict=True)]
    return decision, rates(threshold_data.top_ids, threshold_data.expected, answered)


def evaluate(index: FaqIndex, examples: Iterable[Example], decision: Decision | None = None) -> Rates:
    """How `decision` (default: the index's) does on labelled examples."""
    decision = decision or index.decision
    tops, expected, answered = [], [], []
    for example in examples:
        match = index.match(example.query, decision=decision)
        tops.append(match.top_id)
        expected.append(example.expected_id)
        answered.append(match.answered)
    return rates(tops, expected, answered)


def calibrate(
    index: FaqIndex,
    examples: Iterable[Example],
    *,
    min_oos_rejection: float = 0.9,
    l2: float = 5.0,
) -> Decision:
    """Refit the index's decision to a brand's labelled examples (`expected_id` None for
    questions the bank should not answer) and return it, with how it does on those
    examples in `decision.meta["report"]` (answered-correct, wrong and rejected rates).

    The model is pulled towards the index's current decision (`l2`), so a few dozen
    examples adjust it rather than replace it; in-scope examples are also asked without
    their entry, as near-misses. The threshold is the one that answers the most examples
    correctly (a wrong answer costing two right ones) while rejecting at least
    `min_oos_rejection` of the out-of-scope examples."""
    examples = list(examples)
    unknown = sorted({e.expected_id for e in examples if e.expected_id is not None} - {e.id for e in index.entries})
    if unknown:
        raise ValueError(f"examples expect entries the bank does not hold: {unknown[:5]}")
    base = index.decision
    real = labelled(index, examples)
    near = leave_out(index, examples, weight=0.5)
    data = real + near
    if data.correct.any() and not data.correct.all():
        model = fit_logistic(data.x, data.correct, prior=base, l2=l2, sample_weight=data.weight)
    else:  # one class only: nothing to learn the boundary from
        model = base
    # The threshold is chosen on the real examples; near-misses stand in for out-of-scope
    # examples when the brand gave fewer than five.
    chosen = real if (~real.in_scope).sum() >= 5 else real + near
    p = model.probabilities(chosen.x)
    threshold = choose_threshold(p, chosen.correct, chosen.in_scope, min_oos_rejection=min_oos_rejection)
    decision = Decision(model.coef, model.intercept, model.mean, model.scale, threshold, model.features)
    report = evaluate(index, examples, decision)
    meta = {
        "fitted": "calibrate",
        "examples": len(examples),
        "in_scope": report.in_scope,
        "out_of_scope": report.out_of_scope,
        "near_misses": len(near),
        "min_oos_rejection": min_oos_rejection,
        "report": report.as_dict(),
    }
    return Decision(decision.coef, decision.intercept, decision.mean, decision.scale, threshold, decision.features, meta)


def fit_default(
    banks: Sequence[tuple[str, Sequence[Entry], Sequence[Example]]],
    *,
    synthetic_bank: Sequence[Entry],
    exclude: Iterable[str] = (),
    min_oos_rejection: float = 0.92,
    l2: float = 1.0,
    near_miss_weight: float = 0.3,
    synthetic_weight: float = 0.2,
) -> tuple[Decision, Rates]:
    """The shipped decision: fitted on the labelled queries of each (name, entries,
    examples) bank, their leave-the-entry-out near-misses and pseudo-queries on sub-banks
    of `synthetic_bank` (never from the entries in `exclude`), with its threshold chosen on
    the labelled queries alone. Deterministic."""
    neutral = Decision((0.0,) * len(FEATURES), 0.0, (0.0,) * len(FEATURES), (1.0,) * len(FEATURES))
    real = LabelledFeatures.empty()
    near = LabelledFeatures.empty()
    counts = {}
    for name, entries, examples in banks:
        index = FaqIndex.build(entries, decision=neutral)
        real = real + labelled(index, examples)
        near = near + leave_out(index, examples, weight=near_miss_weight)
        counts[name] = {"entries": len(entries), "examples": len(examples)}
    pseudo = synthetic(synthetic_bank, exclude=exclude, weight=synthetic_weight, decision=neutral)
    meta = {
        "fitted": "default",
        "banks": counts,
        "near_misses": len(near),
        "pseudo_queries": len(pseudo),
        "min_oos_rejection": min_oos_rejection,
        "l2": l2,
    }
    decision, report = fit(real + near + pseudo, real, l2=l2, min_oos_rejection=min_oos_rejection, meta=meta)
    decision.meta["report"] = {k: round(v, 4) if isinstance(v, float) else v for k, v in report.as_dict().items()}
    return decision, report
