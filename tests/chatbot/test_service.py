"""The FAQ entry service: versions, validation, the cached index and stored calibrations."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.chatbot.factories import make_calibration, make_entry, make_retail_bank
from toolkit.audit.models import AuditLog
from toolkit.chatbot import service
from toolkit.chatbot.decision import load_decision
from toolkit.chatbot.models import FaqDecision, FaqEntryVersion


def audit_actions(session: Session, key: str) -> list[str]:
    return list(session.scalars(select(AuditLog.action).where(AuditLog.target_id == key).order_by(AuditLog.id)))


# --- content ----------------------------------------------------------------------------

def test_checked_content_tidies() -> None:
    content = service.checked_content(
        question="  運費  怎麼算？\n", answer="\n 滿 990 免運。\n第二行 \n", category=" 配送  與 物流 ",
        alt_questions=["運費多少", " 運費多少 ", " ", "運費  怎麼算？", "免運門檻"],
        generated_questions=["免運門檻", "寄送要錢嗎"], locale="",
    )

    assert content.question == "運費 怎麼算？"
    assert content.answer == "滿 990 免運。\n第二行"  # line breaks inside an answer stay
    assert content.category == "配送 與 物流"
    # Blank ones, repeats and the question itself go; a generated one staff also wrote counts once.
    assert content.alt_questions == ("運費多少", "免運門檻")
    assert content.generated_questions == ("寄送要錢嗎",)
    assert content.locale == "zh-TW"


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"question": " ", "answer": "a"}, "question is empty"),
        ({"question": "q" * 1001, "answer": "a"}, "question is longer than 1000"),
        ({"question": "q", "answer": "a", "category": "c" * 101}, "category is longer than 100"),
        ({"question": "q", "answer": "a", "alt_questions": [f"alt {i}" for i in range(101)]}, "more than 100"),
        ({"question": "q", "answer": "a", "alt_questions": ["x" * 1001]}, "alternative question is longer"),
    ],
)
def test_checked_content_refuses(fields: dict, fragment: str) -> None:
    with pytest.raises(service.EntryInvalid) as caught:
        service.checked_content(**fields)

    assert fragment in caught.value.message and caught.value.status_code == 422


def test_an_answer_is_at_most_five_line_messages_in_utf16_units() -> None:
    # An emoji outside the BMP is two UTF-16 units: LINE counts it so.
    assert service.answer_texts("好" * 5000) == ["好" * 5000]
    assert len(service.answer_texts(service.checked_content(question="q", answer="好" * 25000).answer)) == 5
    assert len(service.answer_texts(service.checked_content(question="q", answer="😀" * 12500).answer)) == 5
    with pytest.raises(service.EntryInvalid, match="does not fit in 5 LINE text messages"):
        service.checked_content(question="q", answer="😀" * 12500 + "好")


def test_a_long_answer_is_split_at_line_breaks() -> None:
    paragraphs = ["第一段" * 1000, "第二段" * 1000, "第三段" * 100]

    texts = service.answer_texts("\n".join(paragraphs))

    assert texts == [paragraphs[0], paragraphs[1] + "\n" + paragraphs[2]]


def test_an_entry_may_wait_for_its_answer() -> None:
    # Open-data banks hold questions with no answer text; they import, and the bot offers
    # a person when one matches (tests/chatbot/test_bot.py).
    assert service.checked_content(question="q", answer=" \n").answer == ""


@pytest.mark.parametrize("key", ["", "   ", "k" * 65, "R\n1", "R\x001"])
def test_bad_keys(session: Session, key: str) -> None:
    content = service.checked_content(question="q", answer="a")

    with pytest.raises(service.EntryInvalid):
        service.save_entry(session, key=key, content=content, actor="test")


# --- versions ---------------------------------------------------------------------------

def test_save_creates_version_one_with_audit(session: Session) -> None:
    content = service.checked_content(question="運費？", answer="NT$100", category="配送")

    entry, outcome = service.save_entry(session, key=" R1 ", content=content, actor="ops", note="first")

    assert outcome == service.CREATED
    assert (entry.key, entry.version, entry.updated_by, entry.active) == ("R1", 1, "ops", True)
    [version] = service.entry_versions(session, "R1")
    assert (version.version, version.changed_by, version.note) == (1, "ops", "first")
    assert version.content == content.as_dict()
    assert audit_actions(session, "R1") == ["faq.entry.create"]


def test_saving_the_same_content_again_changes_nothing(session: Session) -> None:
    entry = make_entry(session, key="R1", question="運費？", answer="NT$100", alt_questions=["運費多少"])
    updated_at = entry.updated_at
    same = service.checked_content(question="運費？ ", answer="NT$100\n", alt_questions=["運費多少", "運費多少"])

    again, outcome = service.save_entry(session, key="R1", content=same, actor="someone else")

    assert outcome == service.UNCHANGED
    assert (again.version, again.updated_at, again.updated_by) == (1, updated_at, "test")
    assert len(service.entry_versions(session, "R1")) == 1
    assert audit_actions(session, "R1") == ["faq.entry.create"]


def test_changed_content_is_a_new_version_and_old_ones_are_kept(session: Session) -> None:
    make_entry(session, key="R1", question="運費？", answer="NT$100")

    entry, outcome = service.save_entry(session, key="R1", actor="ops", note="price change",
                                        content=service.checked_content(question="運費？", answer="NT$80"))
    service.update_entry(session, key="R1", actor="ops", active=False)

    assert outcome == service.UPDATED
    assert (entry.version, entry.answer, entry.active) == (3, "NT$80", False)
    versions = service.entry_versions(session, "R1")
    assert [(v.version, v.content["answer"], v.content["active"]) for v in versions] == [
        (3, "NT$80", False), (2, "NT$80", True), (1, "NT$100", True)]
    assert versions[1].note == "price change"
    assert audit_actions(session, "R1") == ["faq.entry.create", "faq.entry.update", "faq.entry.update"]


def test_update_entry_checks_fields_and_existence(session: Session) -> None:
    make_entry(session, key="R1")

    with pytest.raises(service.EntryInvalid, match="unknown field"):
        service.update_entry(session, key="R1", actor="ops", colour="red")
    with pytest.raises(service.EntryInvalid, match="question is empty"):
        service.update_entry(session, key="R1", actor="ops", question=" ")
    with pytest.raises(service.EntryNotFound):
        service.update_entry(session, key="nope", actor="ops", answer="x")
    assert service.require_entry(session, "R1").version == 1


def test_add_alt_question(session: Session) -> None:
    make_entry(session, key="R1", question="運費？", alt_questions=["運費多少"])

    entry = service.add_alt_question(session, key="R1", question="寄到離島要多少錢", actor="agent")
    again = service.add_alt_question(session, key="R1", question="寄到離島要多少錢", actor="agent")

    assert entry.alt_questions == ["運費多少", "寄到離島要多少錢"]
    assert again.version == 2  # the same question twice is no change
    assert service.entry_versions(session, "R1")[0].note == "alternative question added"


def test_list_and_counts(session: Session) -> None:
    make_retail_bank(session)
    make_entry(session, key="zz-off", question="停用的問題", category="配送", active=False,
               generated_questions=["一", "二"])

    rows, total = service.list_entries(session, search="運費")
    by_category, _ = service.list_entries(session, category="配送", active=True)
    counts = service.counts(session)

    assert [e.key for e in rows] == ["ship-fee"] and total == 1
    assert [e.key for e in by_category] == ["ship-fee"]
    assert counts["entries"] >= 4 and counts["entries"] - counts["active"] >= 1
    assert counts["generated_questions"] >= 2
    assert {"配送", "退換貨", "會員"} <= set(service.categories(session))


# --- the index --------------------------------------------------------------------------

def test_index_is_cached_until_an_entry_changes(session: Session) -> None:
    make_retail_bank(session)
    first = service.current_index(session)

    assert service.current_index(session) is first
    assert service.match(session, "我想退貨").entry_id == "return"

    service.update_entry(session, key="return", actor="ops", question="換貨要怎麼申請？", alt_questions=[],
                         answer="七天內可換貨一次。")
    rebuilt = service.current_index(session)

    assert rebuilt is not first
    assert rebuilt.entry("return").question == "換貨要怎麼申請？"


def test_index_leaves_out_inactive_entries_and_sees_new_ones(session: Session) -> None:
    make_retail_bank(session)
    assert "points" in {e.id for e in service.current_index(session).entries}

    service.update_entry(session, key="points", actor="ops", active=False)
    make_entry(session, key="pay", question="可以用 LINE Pay 付款嗎？", answer="可以，結帳時選 LINE Pay。", category="付款")
    ids = {e.id for e in service.current_index(session).entries}

    assert "points" not in ids and "pay" in ids
    assert service.match(session, "LINE Pay 可以用嗎").entry_id == "pay"


def test_index_uses_the_latest_calibration(session: Session) -> None:
    make_retail_bank(session)
    assert service.current_decision(session).threshold == load_decision().threshold
    before = service.current_index(session)
    strict = load_decision().with_threshold(0.999)

    make_calibration(session, decision=strict)
    index = service.current_index(session)

    assert index is not before and index.decision.threshold == 0.999
    assert service.match(session, "點數怎麼用").answered is False  # nothing is that sure


def test_calibration_is_stored_with_its_report_and_audited(session: Session) -> None:
    decision = load_decision().with_threshold(0.42)
    report = {"answered_correct": 0.8, "wrong": 0.05, "oos_rejected": 0.9, "by_style": {"x": 1.0}}
    before = session.scalar(select(func.count()).select_from(FaqDecision))

    row = service.save_calibration(session, decision=decision, report=report, examples=30, source="ex.jsonl",
                                   actor="ops")

    assert session.scalar(select(func.count()).select_from(FaqDecision)) == before + 1
    assert service.latest_calibration(session).id == row.id
    assert service.current_decision(session).threshold == 0.42
    assert (row.report, row.examples, row.source, row.created_by) == (report, 30, "ex.jsonl", "ops")
    audit = session.scalars(select(AuditLog).where(AuditLog.action == "faq.calibrate")
                            .order_by(AuditLog.id.desc())).first()
    assert audit.details["examples"] == 30 and audit.details["answered_correct"] == 0.8
    assert "by_style" not in audit.details


def test_versions_survive_in_their_own_table(session: Session) -> None:
    entry = make_entry(session, key="R1")
    service.update_entry(session, key="R1", actor="ops", answer="新的答案")

    stored = session.scalars(select(FaqEntryVersion.version).where(FaqEntryVersion.entry_id == entry.id)
                             .order_by(FaqEntryVersion.version)).all()

    assert stored == [1, 2]
