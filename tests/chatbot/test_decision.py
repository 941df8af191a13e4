from __future__ import annotations

import json
import random

import numpy as np
import pytest

from toolkit.chatbot import Decision, FaqIndex, calibrate, evaluate, load_decision
from toolkit.chatbot.bank import Example, load_examples
from toolkit.chatbot.decision import DEFAULT_PATH, FEATURES, choose_threshold, rates, save_decision

from .conftest import QUERIES, examples


def test_shipped_decision_is_scale_free_logistic() -> None:
    data = json.loads(DEFAULT_PATH.read_text(encoding="utf-8"))
    assert data["model"] == "logistic" and data["features"] == list(FEATURES)
    decision = load_decision()
    assert 0 < decision.threshold < 1
    assert len(decision.coef) == len(FEATURES)
    # Nothing that grows with the bank: every feature is a share, a ratio or a flag.
    assert set(FEATURES) == {
        "word_rel", "char_rel", "margin", "agree", "word_cov_q", "char_cov",
        "word_qcov", "char_qcov", "word_unknown", "short",
    }


def test_decision_round_trip(tmp_path) -> None:
    decision = load_decision()
    path = tmp_path / "decision.json"
    save_decision(decision.with_threshold(0.42), path)
    again = load_decision(path)
    assert again.threshold == 0.42 and again.coef == pytest.approx(decision.coef, abs=1e-6)
    bad = decision.to_dict() | {"features": ["raw_bm25"]}
    with pytest.raises(ValueError, match="unknown features"):
        Decision.from_dict(bad)


def test_rates() -> None:
    r = rates(["a", "b", "c", "x"], ["a", "b", None, None], [True, False, True, False])
    assert (r.in_scope, r.out_of_scope) == (2, 2)
    assert r.answered_correct == 0.5 and r.in_scope_rejected == 0.5
    assert r.oos_rejected == 0.5 and r.wrong == 0.25 and r.rejected == 0.5


def test_choose_threshold() -> None:
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    correct = np.array([True, True, False, True, False, False])
    in_scope = np.array([True, True, True, True, False, False])
    # A wrong answer costs two right ones: stop above the wrong one at 0.7.
    assert 0.7 < choose_threshold(p, correct, in_scope, min_oos_rejection=1.0) <= 0.8
    # Cheaper wrong answers: take 0.6 as well, but never the out-of-scope 0.5.
    assert 0.5 < choose_threshold(p, correct, in_scope, min_oos_rejection=1.0, wrong_cost=0.5) <= 0.6


def test_calibration_changes_the_decision_and_reports_rates(retail_index: FaqIndex) -> None:
    labelled = examples("retail_dev")
    decision = calibrate(retail_index, labelled)
    assert decision != retail_index.decision
    report = decision.meta["report"]
    assert report["examples"] == len(labelled)
    for key in ("answered_correct", "wrong", "rejected", "oos_rejected"):
        assert 0.0 <= report[key] <= 1.0
    assert report["oos_rejected"] >= 0.9  # the default floor for the threshold
    # The report is what the decision does on those examples.
    assert evaluate(retail_index, labelled, decision).as_dict() == report
    # And it generalises to the retail queries it was not fitted on.
    held = evaluate(retail_index.with_decision(decision), examples("retail_heldout"))
    assert held.answered_correct > 0.6 and held.oos_rejected >= 0.8


def test_calibration_with_only_in_scope_examples(three_index: FaqIndex) -> None:
    labelled = [Example("退貨怎麼退", "return"), Example("運費多少", "ship"), Example("點數", "points")]
    decision = calibrate(three_index, labelled)
    assert decision.meta["report"]["in_scope"] == 3
    with pytest.raises(ValueError, match="does not hold"):
        calibrate(three_index, [Example("x", "nope")])


def test_shipped_decision_on_three_entry_banks(retail_entries) -> None:
    """Uncalibrated, on banks of three entries drawn from the retail bank: a held-out
    query is answered with its entry when the bank has it, and declined when it does not
    (the only words it shares with the bank are then 可以, 嗎, 怎麼 ...)."""
    by_id = {e.id: e for e in retail_entries}
    rng = random.Random(7)
    in_bank = not_in_bank = 0
    held_out = [e for e in load_examples(QUERIES / "retail_heldout.jsonl") if e.expected_id]
    for example in held_out:
        others = sorted(set(by_id) - {example.expected_id})
        with_it = FaqIndex.build([by_id[example.expected_id], *(by_id[i] for i in rng.sample(others, 2))])
        without_it = FaqIndex.build([by_id[i] for i in rng.sample(others, 3)])
        in_bank += with_it.match(example.query).entry_id == example.expected_id
        not_in_bank += not without_it.match(example.query).answered
    assert in_bank / len(held_out) >= 0.9
    assert not_in_bank / len(held_out) >= 0.85


@pytest.mark.parametrize("query", ["可以寄到國外嗎", "禮物可以包裝嗎", "可以帶寵物進去嗎", "可以刷卡嗎"])
def test_a_tiny_bank_does_not_answer_what_shares_only_function_words(three_index: FaqIndex, query: str) -> None:
    assert not three_index.match(query).answered
