"""Whether to answer: a small logistic model over scale-free features of a retrieval.

No raw score enters the decision, only shares, ratios and flags that mean the same on a
3-entry bank and a 2,000-entry one (per signal: jieba words, character n-grams):

    word_rel, char_rel     the best entry's BM25 relative to the query's best possible
                           score (every query term at BM25's saturation)
    margin                 1 - runner-up / best, on the fused relative score
    agree                  1 when words alone and characters alone pick the same best entry
    word_cov_q, char_cov   idf-weighted share of the query covered by the best entry
                           (words: by its questions; characters: anywhere in it)
    word_qcov, char_qcov   idf-weighted share of the best entry's best-matching question
                           covered by the query (the query hits the topic but not the ask?)
    word_unknown           share of the query's words the bank never uses
    short                  1 / number of query words (two-word queries are less certain)

The shipped coefficients (decision.json, next to this module) were fitted on our development query
sets; `calibrate` refits them to a brand's own labelled examples, pulled towards the
current ones so that a few dozen examples cannot swing the model far.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FEATURES: tuple[str, ...] = (
    "word_rel",
    "char_rel",
    "margin",
    "agree",
    "word_cov_q",
    "char_cov",
    "word_qcov",
    "char_qcov",
    "word_unknown",
    "short",
)

# Package data beside this module, so an installed toolkit has it; a path rather than a
# resource because benchmarks/faq.py --refit writes it back in a checkout.
DEFAULT_PATH = Path(__file__).resolve().with_name("decision.json")


@dataclass(frozen=True)
class Rates:
    """How a decision did on labelled examples. Shares of in-scope examples
    (answered_correct, answered_wrong_entry, in_scope_rejected), of out-of-scope ones
    (oos_rejected), and of all (wrong: any answer that was not the expected one)."""

    examples: int
    in_scope: int
    out_of_scope: int
    top1: float
    answered_correct: float
    answered_wrong_entry: float
    in_scope_rejected: float
    oos_rejected: float
    wrong: float
    rejected: float

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


@dataclass(frozen=True)
class Decision:
    """Logistic model: p = sigmoid(intercept + sum(coef * (x - mean) / scale)); answer
    when p >= threshold."""

    coef: tuple[float, ...]
    intercept: float
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    threshold: float = 0.5
    features: tuple[str, ...] = FEATURES
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    def probability(self, values: Mapping[str, float]) -> float:
        z = self.intercept
        for name, c, m, s in zip(self.features, self.coef, self.mean, self.scale, strict=True):
            z += c * (values[name] - m) / s
        return _sigmoid(z)

    def probabilities(self, matrix: np.ndarray) -> np.ndarray:
        z = self.intercept + ((matrix - np.asarray(self.mean)) / np.asarray(self.scale)) @ np.asarray(self.coef)
        return 1.0 / (1.0 + np.exp(-z))

    def answers(self, probability: float) -> bool:
        return probability >= self.threshold

    def with_threshold(self, threshold: float) -> Decision:
        return Decision(self.coef, self.intercept, self.mean, self.scale, threshold, self.features, dict(self.meta))

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": "logistic",
            "features": list(self.features),
            "coef": [round(c, 6) for c in self.coef],
            "intercept": round(self.intercept, 6),
            "mean": [round(m, 6) for m in self.mean],
            "scale": [round(s, 6) for s in self.scale],
            "threshold": round(self.threshold, 4),
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Decision:
        features = tuple(data["features"])
        unknown = set(features) - set(FEATURES)
        if unknown:
            raise ValueError(f"decision uses unknown features: {sorted(unknown)}")
        n = len(features)
        coef, mean, scale = (tuple(float(v) for v in data[k]) for k in ("coef", "mean", "scale"))
        if not (len(coef) == len(mean) == len(scale) == n):
            raise ValueError("decision: coef, mean and scale must have one value per feature")
        if any(s <= 0 for s in scale):
            raise ValueError("decision: every scale must be positive")
        threshold = float(data.get("threshold", 0.5))
        if not 0.0 < threshold < 1.0:
            raise ValueError("decision: threshold must be between 0 and 1")
        return cls(coef, float(data["intercept"]), mean, scale, threshold, features, dict(data.get("meta") or {}))


def load_decision(path: str | Path | None = None) -> Decision:
    """The shipped default (DEFAULT_PATH) or the decision stored at `path`."""
    with open(path or DEFAULT_PATH, encoding="utf-8") as handle:
        return Decision.from_dict(json.load(handle))


def save_decision(decision: Decision, path: str | Path) -> None:
    Path(path).write_text(json.dumps(decision.to_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


# --- fitting ---------------------------------------------------------------------------------

def fit_logistic(
    x: np.ndarray,
    y: np.ndarray,
    *,
    prior: Decision | None = None,
    l2: float = 1.0,
    sample_weight: np.ndarray | None = None,
    features: Sequence[str] = FEATURES,
    iterations: int = 100,
) -> Decision:
    """L2-regularised logistic regression by Newton's method.

    Without `prior`, features are standardised on `x` and the penalty pulls the
    coefficients to zero. With `prior`, its standardisation is kept and the penalty pulls
    towards its coefficients: refitting to a handful of examples moves the model only as
    far as they give reason to."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    if prior is not None:
        mean, scale = np.asarray(prior.mean), np.asarray(prior.scale)
        theta0 = np.r_[prior.intercept, prior.coef]
    else:
        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        scale[scale < 1e-6] = 1.0
        theta0 = np.zeros(x.shape[1] + 1)
    design = np.c_[np.ones(len(y)), (x - mean) / scale]
    penalty = np.full(design.shape[1], l2)
    penalty[0] = l2 * 1e-3 if prior is None else l2  # the intercept is barely penalised from zero
    theta = theta0.copy()
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(design @ theta)))
        gradient = design.T @ (w * (p - y)) + penalty * (theta - theta0)
        hessian = (design * (w * p * (1 - p))[:, None]).T @ design + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if np.abs(step).max() < 1e-9:
            break
    return Decision(
        coef=tuple(float(c) for c in theta[1:]),
        intercept=float(theta[0]),
        mean=tuple(float(m) for m in mean),
        scale=tuple(float(s) for s in scale),
        threshold=prior.threshold if prior is not None else 0.5,
        features=tuple(features),
    )


def rates(top_ids: Sequence[str | None], expected: Sequence[str | None], answered: Sequence[bool]) -> Rates:
    """Rates of a decision's answers (`answered`, with `top_ids` the entries it would
    answer with) against the `expected` ids (None: out of scope)."""
    n = len(expected)
    in_scope = [i for i in range(n) if expected[i] is not None]
    oos = [i for i in range(n) if expected[i] is None]
    correct = sum(1 for i in in_scope if answered[i] and top_ids[i] == expected[i])
    wrong_entry = sum(1 for i in in_scope if answered[i] and top_ids[i] != expected[i])
    oos_answered = sum(1 for i in oos if answered[i])
    top1 = sum(1 for i in in_scope if top_ids[i] == expected[i])

    def share(count: int, total: int) -> float:
        return count / total if total else 0.0

    return Rates(
        examples=n,
        in_scope=len(in_scope),
        out_of_scope=len(oos),
        top1=share(top1, len(in_scope)),
        answered_correct=share(correct, len(in_scope)),
        answered_wrong_entry=share(wrong_entry, len(in_scope)),
        in_scope_rejected=share(len(in_scope) - correct - wrong_entry, len(in_scope)),
        oos_rejected=share(len(oos) - oos_answered, len(oos)),
        wrong=share(wrong_entry + oos_answered, n),
        rejected=share(n - sum(1 for a in answered if a), n),
    )


def choose_threshold(
    probabilities: np.ndarray,
    correct: np.ndarray,
    in_scope: np.ndarray,
    *,
    min_oos_rejection: float = 0.9,
    wrong_cost: float = 2.0,
) -> float:
    """The threshold that maximises answered-correct minus `wrong_cost` x wrong answers,
    among thresholds that reject at least `min_oos_rejection` of the out-of-scope
    examples (when there are any). Returned halfway between two neighbouring
    probabilities so that it does not sit on an example."""
    p = np.asarray(probabilities, dtype=np.float64)
    candidates = np.unique(np.r_[p, 1.0])
    best, best_value = 0.5, -math.inf
    oos = ~in_scope
    for i, t in enumerate(candidates):
        answered = p >= t
        if oos.any() and (1 - answered[oos].mean()) < min_oos_rejection:
            continue
        value = (answered & correct).sum() - wrong_cost * (answered & ~correct).sum()
        if value > best_value:
            lower = candidates[i - 1] if i > 0 else 0.0
            best, best_value = (lower + t) / 2 if i > 0 else t / 2, value
    return float(min(max(best, 0.01), 0.99))
