from __future__ import annotations

import time

import pytest

from toolkit.chatbot import Entry, FaqIndex, Match
from toolkit.chatbot.decision import FEATURES

from .conftest import THREE, examples


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("買多少錢才不用付運費", "ship"),
        ("東西不喜歡 我想退貨 怎麼辦😭", "return"),
        ("点数怎么用", "points"),  # Simplified, matched through the alternative question
    ],
)
def test_three_entry_bank_answers_paraphrases(three_index: FaqIndex, query: str, expected: str) -> None:
    match = three_index.match(query)
    assert match.answered and match.entry_id == expected, match


@pytest.mark.parametrize("query", ["你好", "哈哈哈 今天好熱喔", "台積電明天會漲嗎", "晚餐吃什麼", "👍", ""])
def test_three_entry_bank_rejects_chit_chat(three_index: FaqIndex, query: str) -> None:
    match = three_index.match(query)
    assert not match.answered and match.entry_id is None, match


def test_match_result(tpe_index: FaqIndex) -> None:
    match = tpe_index.match("愛心悠遊卡遺失了要怎麼補辦")
    assert isinstance(match, Match)
    assert 0.0 <= match.score <= 1.0
    assert len(match.candidates) == 5
    assert [s for _, s in match.candidates] == sorted((s for _, s in match.candidates), reverse=True)
    assert set(match.features) == set(FEATURES)
    assert all(isinstance(v, float) for v in match.features.values())
    assert match.answered == (match.entry_id is not None)


def test_tpe_bank_accuracy(tpe_index: FaqIndex) -> None:
    """A floor, far below what benchmarks/faq.py reports, against regressions."""
    held = examples("tpe_heldout")
    sample = held[::4]
    top1 = [tpe_index.match(e.query) for e in sample]
    in_scope = [(m, e) for m, e in zip(top1, sample) if e.expected_id]
    oos = [m for m, e in zip(top1, sample) if e.expected_id is None]
    assert sum(m.top_id == e.expected_id for m, e in in_scope) / len(in_scope) > 0.65
    assert sum(m.answered and m.entry_id == e.expected_id for m, e in in_scope) / len(in_scope) > 0.45
    assert sum(not m.answered for m in oos) / len(oos) >= 0.85


def test_two_thousand_entry_bank(tpe_entries: list[Entry], retail_entries: list[Entry]) -> None:
    padding = [
        Entry(f"P{i:03d}", f"第{i}號分店的營業時間與停車資訊？", f"第{i}號分店每日 10:00-22:00 營業。", "門市")
        for i in range(2000 - len(tpe_entries) - len(retail_entries))
    ]
    index = FaqIndex.build([*tpe_entries, *retail_entries, *padding], extra_terms=["晴川"])
    assert len(index) == 2000
    assert index.match("退款大概多久會退回來").entry_id == "R11"
    assert index.match("愛心悠遊卡可以給別人用嗎").top_id in {"GIP_101591978", "GIP_293220259"}
    for chit_chat in ("你好", "謝謝你", "今天天氣好好喔", "推薦一部電影"):
        assert not index.match(chit_chat).answered


def test_same_query_same_answer(tpe_index: FaqIndex, tpe_entries: list[Entry]) -> None:
    queries = [e.query for e in examples("tpe_dev")[:40]]
    first = [tpe_index.match(q) for q in queries]
    again = [tpe_index.match(q) for q in reversed(queries)][::-1]
    assert first == again
    rebuilt = FaqIndex.build(list(THREE))
    assert [rebuilt.match(q) for q in ("退貨", "運費")] == [FaqIndex.build(list(THREE)).match(q) for q in ("退貨", "運費")]


def test_latency_is_bounded(tpe_index: FaqIndex) -> None:
    """A sanity bound for a shared CI machine, not the benchmark (< 5 ms p99 there)."""
    queries = [e.query for e in examples("tpe_heldout")][:200]
    start = time.perf_counter()
    small = FaqIndex.build(THREE)
    for query in queries:
        tpe_index.match(query)
        small.match(query)
    assert time.perf_counter() - start < 5.0


def test_empty_bank_and_bad_input() -> None:
    empty = FaqIndex.build([])
    assert empty.match("退貨") == Match(None, 0.0, False, [], empty.match("退貨").features)
    with pytest.raises(ValueError, match="duplicate entry ids"):
        FaqIndex.build([Entry("a", "Q1"), Entry("a", "Q2")])
