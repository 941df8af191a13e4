from __future__ import annotations

import json

import pytest

from toolkit.chatbot.bank import Entry, load_entries_jsonl, load_examples, strip_html

from .conftest import QUERIES


def test_tpe_bank_loads_as_the_import_sees_it(tpe_entries: list[Entry]) -> None:
    assert len(tpe_entries) == 1877
    assert len({e.id for e in tpe_entries}) == 1877
    assert all(e.id.startswith("GIP_") and e.question and e.category for e in tpe_entries)
    assert all(e.alt_questions == () for e in tpe_entries)  # no keywords, no alternatives
    first = tpe_entries[0]
    assert (first.id, first.category) == ("GIP_94145712", "臺北市政府警察局交通警察大隊")
    assert first.question == "交通違規簡訊服務常見問答"
    assert first.answer == "交通違規簡訊服務常見問題集"  # the <A href=...> link's text only


def test_answers_carry_no_html(tpe_entries: list[Entry]) -> None:
    for entry in tpe_entries:
        assert "&lt;" not in entry.answer and "&amp;" not in entry.answer and "&nbsp;" not in entry.answer
        assert "  " not in entry.answer and "\n" not in entry.answer
    assert not any("<SPAN" in e.answer or "<P>" in e.answer or "href=" in e.answer for e in tpe_entries)


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("&lt;P&gt;申請&amp;nbsp;文件&lt;/P&gt;", "申請 文件"),
        ('<A title="x" href="http://a">連結</A>\n\n 說明', "連結 說明"),
        ("價格 &gt; 100 &amp; 免運", "價格 > 100 & 免運"),
        (None, ""),
    ],
)
def test_strip_html(raw: str | None, text: str) -> None:
    assert strip_html(raw) == text


def test_query_sets_are_well_formed(tpe_entries: list[Entry]) -> None:
    ids = {e.id for e in tpe_entries}
    heldout = load_examples(QUERIES / "tpe_heldout.jsonl")
    dev = load_examples(QUERIES / "tpe_dev.jsonl")
    in_scope = [e for e in heldout if e.expected_id]
    assert len(in_scope) >= 300 and len(heldout) - len(in_scope) >= 100
    assert {e.expected_id for e in heldout + dev if e.expected_id} <= ids
    # The dev set asks about other entries than the held-out set.
    assert not {e.expected_id for e in dev if e.expected_id} & {e.expected_id for e in in_scope}
    questions = {e.question for e in tpe_entries}
    assert not any(e.query in questions for e in heldout + dev)  # never a copied title
    oos_kinds = {e.style for e in heldout if e.expected_id is None}
    assert oos_kinds == {"oos_chitchat", "oos_other_domain", "oos_near_miss"}


def test_entries_jsonl(tmp_path) -> None:
    path = tmp_path / "bank.jsonl"
    path.write_text(json.dumps({"id": 7, "question": "Q", "answer": "A", "alt_questions": ["q2"]}) + "\n\n")
    (entry,) = load_entries_jsonl(path)
    assert entry == Entry("7", "Q", "A", "", ("q2",))
    retail = load_entries_jsonl(QUERIES / "retail_bank.jsonl")
    assert 20 <= len(retail) <= 60 and any(e.alt_questions for e in retail)
