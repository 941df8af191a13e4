"""The FAQ importer: reading CSV/JSONL/YAML, checking rows, importing by id with versions."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import opencc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.chatbot.factories import make_entry
from toolkit import demo
from toolkit.audit.models import AuditLog
from toolkit.chatbot import importer, service
from toolkit.chatbot.importer import FaqRow, RowRejected, UnusableFile, parse_row
from toolkit.chatbot.models import FaqEntryVersion
from toolkit.kit.errors import InvalidInput


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", newline="")
    return path


def rows(tmp_path: Path, name: str, content: str) -> list[tuple[int, Any]]:
    return list(importer.read_rows(importer.inspect_file(write(tmp_path, name, content))))


def parsed(tmp_path: Path, name: str, content: str) -> list[tuple[int, FaqRow | str]]:
    found = []
    for line, row in rows(tmp_path, name, content):
        if isinstance(row, str):
            found.append((line, row))
            continue
        try:
            found.append((line, parse_row(row)))
        except RowRejected as exc:
            found.append((line, exc.message))
    return found


def run_import(session: Session, path: Path, actor: str = "test") -> importer.ImportReport:
    source = importer.inspect_file(path)
    return importer.import_rows(session, importer.read_rows(source), actor=actor, file=path.name)


# --- reading ----------------------------------------------------------------------------

def test_csv_alt_questions_pipe_separated_or_json_list(tmp_path: Path) -> None:
    found = parsed(tmp_path, "bank.csv", (
        "id,question,answer,category,alt_questions\n"
        "R1,運費怎麼算？,滿 990 免運。,配送,運費多少| 免運門檻 |\n"
        'R2,退貨怎麼辦？,七天內申請。,退換貨,"[""我要退貨"", ""可以退嗎 | 還是換貨""]"\n'
        "R3,點數怎麼用？,1 點折 1 元。,會員,\n"
    ))

    assert found == [
        (2, FaqRow("R1", "運費怎麼算？", "滿 990 免運。", "配送", ("運費多少", " 免運門檻 "))),
        (3, FaqRow("R2", "退貨怎麼辦？", "七天內申請。", "退換貨", ("我要退貨", "可以退嗎 | 還是換貨"))),
        (4, FaqRow("R3", "點數怎麼用？", "1 點折 1 元。", "會員", ())),
    ]


def test_jsonl_rows_with_optional_fields(tmp_path: Path) -> None:
    lines = [
        {"id": "R1", "question": "運費？", "answer": "NT$100", "category": "配送", "alt_questions": ["運費多少"],
         "locale": "zh-TW", "active": False},
        {"id": 42, "question": "Shipping fee?", "answer": "NT$100", "locale": "en"},
        {"id": "R3", "question": "q", "answer": "a", "alt_questions": None, "active": "否"},
    ]
    found = parsed(tmp_path, "bank.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in lines))

    assert found == [
        (1, FaqRow("R1", "運費？", "NT$100", "配送", ("運費多少",), None, "zh-TW", False)),
        (2, FaqRow("42", "Shipping fee?", "NT$100", None, None, None, "en", None)),
        (3, FaqRow("R3", "q", "a", None, None, None, None, False)),
    ]


def test_yaml_entries_numbered_by_line_and_english_as_its_own_entry(tmp_path: Path) -> None:
    found = rows(tmp_path, "bank.yaml", (
        "# the demo's format\n"
        "entries:\n"
        "  - id: R1\n"
        "    category: 配送\n"
        "    question: 運費怎麼算？\n"
        "    alt_questions: [運費多少]\n"
        "    answer: |-\n"
        "      滿 NT$990 免運。\n"
        "      未滿收 NT$100。\n"
        "    en:\n"
        "      question: How much is shipping?\n"
        "      answer: Free over NT$990.\n"
        "  - just text\n"
    ))

    assert found == [
        (3, {"id": "R1", "category": "配送", "question": "運費怎麼算？", "alt_questions": ["運費多少"],
             "answer": "滿 NT$990 免運。\n未滿收 NT$100。"}),
        (11, {"id": "R1-en", "category": "配送", "locale": "en", "active": None,
              "question": "How much is shipping?", "answer": "Free over NT$990."}),
        (13, "expected a mapping"),
    ]


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("a.csv", b"id,question,answer\nR1,\xff,x\n", "not UTF-8"),
        ("a.csv", "", "no id column (found: nothing)"),
        ("a.csv", "id,question\n", "no answer column (found: id, question)"),
        ("a.csv", "id,question,answer,answer\n", "listed twice: answer"),
        ("a.csv", "id,question,answer,keywords\n", "unknown column(s) 'keywords'"),
        ("a.jsonl", '{"id": "R1", "question": "q"}\n', "no answer column"),
        ("a.jsonl", '{"id": "R1", "question": "q", "answer": "a", "alt_question": []}\n',
         "unknown column(s) 'alt_question'"),
        ("a.xlsx", "id,question,answer\n", "unknown format"),
        ("a.yaml", "entries: [\n", "not YAML"),
        ("a.yaml", "- id: R1\n", "expected a mapping with an `entries:` list"),
        ("a.yaml", b"entries:\n  - id: \xff\n", "not UTF-8"),
    ],
)
def test_unusable_files(tmp_path: Path, name: str, content: str | bytes, fragment: str) -> None:
    with pytest.raises(UnusableFile) as caught:
        importer.inspect_file(write(tmp_path, name, content))

    assert fragment in caught.value.message
    assert "\n" not in caught.value.message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UnusableFile, match="no such file"):
        importer.inspect_file(tmp_path / "nope.csv")
    with pytest.raises(UnusableFile, match="no such file"):
        importer.inspect_file(tmp_path / "nope.yaml")


# --- checking rows ----------------------------------------------------------------------

@pytest.mark.parametrize(
    ("row", "fragment"),
    [
        ({"question": "q", "answer": "a"}, "id is empty"),
        ({"id": "  ", "question": "q", "answer": "a"}, "id is empty"),
        ({"id": ["R1"], "question": "q", "answer": "a"}, "id must be text, not list"),
        ({"id": True, "question": "q", "answer": "a"}, "id must be text, not bool"),
        ({"id": "R" * 65, "question": "q", "answer": "a"}, "not a valid id"),
        ({"id": "R\n1", "question": "q", "answer": "a"}, "not a valid id"),
        ({"id": "R1", "answer": "a"}, "question is empty"),
        ({"id": "R1", "question": " ", "answer": "a"}, "question is empty"),
        ({"id": "R1", "question": "q"}, "no answer"),
        ({"id": "R1", "question": 5, "answer": "a"}, "question must be text, not int"),
        ({"id": "R1", "question": "q", "answer": "a\x00b"}, "answer contains control characters"),
        ({"id": "R1", "question": "q", "answer": "a\ud800"}, "answer contains control characters"),
        ({"id": "R1", "question": "q", "answer": "a", "category": 3}, "category must be text"),
        ({"id": "R1", "question": "q", "answer": "a", "alt_questions": "[1, 2"}, "not a JSON list"),
        ({"id": "R1", "question": "q", "answer": "a", "alt_questions": "[1, 2]"}, "must be a list of questions"),
        ({"id": "R1", "question": "q", "answer": "a", "alt_questions": {"a": 1}}, "must be a list of questions"),
        ({"id": "R1", "question": "q", "answer": "a", "alt_questions": ["x\x07"]}, "control characters"),
        ({"id": "R1", "question": "q", "answer": "a", "active": "maybe"}, "active must be true or false"),
        ({"id": "R1", "question": "q", "answer": "a", "active": 2}, "active must be true or false"),
        ({"id": "R1", "question": "q", "answer": "a", "locale": "zh_TW"}, "not a language tag"),
    ],
)
def test_parse_row_rejects(row: dict[str, Any], fragment: str) -> None:
    with pytest.raises(RowRejected) as caught:
        parse_row(row)

    assert fragment in caught.value.message


def test_answer_keeps_its_line_breaks() -> None:
    row = parse_row({"id": "R1", "question": "q", "answer": "第一行\r\n\t第二行", "active": "TRUE"})

    assert (row.answer, row.active) == ("第一行\r\n\t第二行", True)


# --- importing --------------------------------------------------------------------------

def test_import_creates_then_reimport_is_unchanged(session: Session, tmp_path: Path) -> None:
    bank = write(tmp_path, "bank.jsonl", (
        '{"id": "R1", "question": "運費怎麼算？", "answer": "滿 990 免運。", "category": "配送", '
        '"alt_questions": ["運費多少"]}\n'
        '{"id": "R2", "question": "運費怎麼算？", "answer": "離島另計。", "category": "配送"}\n'
    ))

    first = run_import(session, bank)
    second = run_import(session, bank)

    assert first.as_dict() == {"created": 2, "updated": 0, "unchanged": 0, "skipped_duplicate": 0, "rejected": 0}
    assert second.as_dict() == {"created": 0, "updated": 0, "unchanged": 2, "skipped_duplicate": 0, "rejected": 0}
    r1 = service.require_entry(session, "R1")
    assert (r1.question, r1.alt_questions, r1.version, r1.locale, r1.active) == (
        "運費怎麼算？", ["運費多少"], 1, "zh-TW", True)
    # The same question under another id is its own entry.
    assert service.require_entry(session, "R2").answer == "離島另計。"
    assert len(service.entry_versions(session, "R1")) == 1


def test_changed_content_is_a_new_version(session: Session, tmp_path: Path) -> None:
    run_import(session, write(tmp_path, "a.csv", "id,question,answer\nR1,運費？,NT$100\n"))

    report = run_import(session, write(tmp_path, "b.csv", "id,question,answer\nR1,運費？,NT$80\n"))

    assert report.updated == 1
    versions = service.entry_versions(session, "R1")
    assert [(v.version, v.content["answer"]) for v in versions] == [(2, "NT$80"), (1, "NT$100")]
    assert versions[0].note == "imported from b.csv:2" and versions[0].changed_by == "test"


def test_left_out_fields_keep_their_value_and_empty_ones_clear(session: Session, tmp_path: Path) -> None:
    make_entry(session, key="R1", question="運費？", answer="NT$100", category="配送",
               alt_questions=["運費多少"], generated_questions=["寄送費用"], locale="zh-TW", active=False)

    kept = run_import(session, write(tmp_path, "a.jsonl", '{"id": "R1", "question": "運費？", "answer": "NT$100"}\n'))
    entry = service.require_entry(session, "R1")
    assert kept.unchanged == 1
    assert (entry.category, entry.alt_questions, entry.generated_questions, entry.active) == (
        "配送", ["運費多少"], ["寄送費用"], False)

    run_import(session, write(tmp_path, "b.csv", "id,question,answer,category,alt_questions\nR1,運費？,NT$100,,\n"))
    session.refresh(entry)
    assert (entry.category, entry.alt_questions, entry.generated_questions, entry.version) == (
        "", [], ["寄送費用"], 2)


def test_bad_rows_are_rejected_by_line_and_the_rest_kept(session: Session, tmp_path: Path) -> None:
    long_answer = "好" * (service.MAX_ANSWER + 1)
    bank = write(tmp_path, "bank.jsonl", "\n".join([
        '{"id": "R1", "question": "q1", "answer": "a1"}',
        "{broken",
        '{"id": "R2", "question": "q2", "answer": "' + long_answer + '"}',
        '["not", "an", "object"]',
        '{"id": "R3", "question": "q3", "answer": "a3", "category": "' + "c" * 101 + '"}',
        '{"id": "R1", "question": "again", "answer": "later"}',
        '{"id": "R4", "question": "q4", "answer": "a4"}',
    ]) + "\n")

    report = run_import(session, bank)

    assert report.created == 2
    assert [line for line, _ in report.rejected] == [2, 3, 4, 5]
    assert report.rejected[0][1].startswith("not valid JSON")
    assert "does not fit in 5 LINE text messages" in report.rejected[1][1]
    assert report.rejected[2][1] == "expected a JSON object"
    assert "category is longer than 100" in report.rejected[3][1]
    assert report.skipped_duplicate == [(6, "R1", 1)]
    assert report.problems()[-1] == (6, "skipped: duplicate id 'R1' (first on line 1)")
    assert service.require_entry(session, "R1").answer == "a1"  # the first of the two
    assert {e.key for e in service.list_entries(session)[0]} == {"R1", "R4"}


def test_a_rejected_first_row_does_not_make_the_next_a_duplicate(session: Session, tmp_path: Path) -> None:
    bank = write(tmp_path, "a.csv", "id,question,answer\nR1,,a\nR1,q,a\n")

    report = run_import(session, bank)

    assert (report.created, report.rejected, report.skipped_duplicate) == (1, [(2, "question is empty")], [])


def test_an_empty_answer_imports_as_an_entry_waiting_for_its_answer(session: Session, tmp_path: Path) -> None:
    bank = write(tmp_path, "a.csv", "id,question,answer\nR1,停車場在哪裡,\n")

    report = run_import(session, bank)

    assert (report.created, report.rejected) == (1, [])
    assert service.require_entry(session, "R1").answer == ""


def test_one_audit_record_for_the_run(session: Session, tmp_path: Path) -> None:
    runs = select(func.count()).select_from(AuditLog).where(AuditLog.action == "faq.import")
    before = session.scalar(runs)

    report = run_import(session, write(tmp_path, "a.csv", "id,question,answer\nR1,q1,a1\nR2,q2,a2\nR3,,x\n"),
                        actor="ops@example.com")

    assert session.scalar(runs) == before + 1
    record = session.scalars(select(AuditLog).where(AuditLog.action == "faq.import")
                             .order_by(AuditLog.id.desc())).first()
    assert (record.actor, record.target_id, record.details) == ("ops@example.com", "a.csv", report.as_dict())
    assert session.scalar(select(func.count()).select_from(FaqEntryVersion)
                          .where(FaqEntryVersion.changed_by == "ops@example.com")) == 2


def test_export_rows_import_back_unchanged(session: Session, tmp_path: Path) -> None:
    make_entry(session, key="R1", question="運費？", answer="滿 990 免運\n離島另計", category="配送",
               alt_questions=["運費多少", "免運"], generated_questions=["寄送要錢嗎"], locale="zh-TW")
    make_entry(session, key="R1-en", question="Shipping fee?", answer="Free over NT$990.", locale="en",
               active=False)
    entries, _ = service.list_entries(session)
    exported = write(tmp_path, "export.jsonl", "".join(importer.export_line(e) + "\n" for e in entries))

    report = run_import(session, exported)

    assert report.as_dict()["unchanged"] == 2 and report.rows == 2
    assert json.loads(exported.read_text(encoding="utf-8").splitlines()[1]) == {
        "id": "R1-en", "question": "Shipping fee?", "answer": "Free over NT$990.", "category": "",
        "alt_questions": [], "generated_questions": [], "locale": "en", "active": False,
    }


# --- properties -------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(row=st.fixed_dictionaries({}, optional={c: json_values for c in importer.COLUMNS}))
def test_any_row_parses_or_is_rejected(row: dict[str, Any]) -> None:
    try:
        found = parse_row(row)
    except RowRejected:
        return
    try:
        importer.content_of(found, None)
    except RowRejected:
        pass


@settings(max_examples=100)
@given(name=st.sampled_from(["a.csv", "a.jsonl", "a.yaml"]), content=st.binary())
def test_any_bytes_only_raise_importer_errors(name: str, content: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(content)
        try:
            found = importer.inspect_file(path)
        except UnusableFile:
            return
        for line, row in importer.read_rows(found):
            assert line >= 1
            if isinstance(row, dict):
                try:
                    parse_row(row)
                except RowRejected:
                    pass


# --- the demo bank ----------------------------------------------------------------------

DEMO_QUESTIONS = [
    # How customers of the demo brand write on LINE; none is a question of the bank verbatim.
    ("請問我禮拜一訂的東西什麼時候會到", "R11"),
    ("訂單編號GD2411250031 現在到哪了", "R01"),
    ("我地址打錯了 還來得及改嗎", "R02"),
    ("買多少免運啊", "R19"),
    ("寄7-11要幾天", "R12"),
    ("住澎湖可以寄嗎", "R13"),
    ("linepay可以用嗎", "R22"),
    ("有貨到付款ㄇ", "R24"),
    ("東西收到不喜歡 可以退嗎", "R35"),
    ("退款要多久才會退到信用卡", "R36"),
    ("我的點數什麼時候過期", "R51"),
    ("你們店幾點開", "R61"),
    ("木頭碗可以丟洗碗機嗎", "R64"),
    ("门市营业时间", "R61"),
    ("how much is shipping", "R19-en"),
    ("Do you ship to Hong Kong?", "R14-en"),
]
NOT_FOR_THE_BANK = ["台積電會漲嗎", "晚餐吃什麼好", "今天天氣好熱喔"]


@pytest.fixture
def demo_bank(session: Session) -> dict[str, int]:
    return demo.seed_faq(session)


def test_demo_bank_is_large_enough_and_well_formed(session: Session, demo_bank: dict[str, int]) -> None:
    entries, total = service.list_entries(session, limit=1000)
    chinese = [e for e in entries if e.locale == "zh-TW"]
    english = [e for e in entries if e.locale == "en"]

    assert demo_bank["created"] == total
    assert len(chinese) >= 60
    assert all(2 <= len(e.alt_questions) <= 5 for e in chinese)
    assert len({e.category for e in chinese}) >= 10
    # An English entry is the translation of the Chinese one with the same id.
    keys = {e.key for e in chinese}
    assert english and all(e.key.endswith("-en") and e.key[:-3] in keys for e in english)
    assert all(len(e.answer.encode("utf-16-le")) // 2 <= service.MAX_ANSWER for e in entries)


def test_demo_bank_is_traditional_chinese(session: Session, demo_bank: dict[str, int]) -> None:
    to_traditional = opencc.OpenCC("s2tw")
    # Both forms are Taiwan usage; anything else s2tw changes would be a Simplified character.
    variants = {("台", "臺"), ("霉", "黴")}
    entries, _ = service.list_entries(session, limit=1000)

    for entry in entries:
        for text in (entry.question, entry.answer, *entry.alt_questions):
            changed = {(a, b) for a, b in zip(text, to_traditional.convert(text), strict=True) if a != b}
            assert changed <= variants, (entry.key, changed)


def test_demo_seeding_is_idempotent_and_keeps_staff_changes(session: Session, demo_bank: dict[str, int]) -> None:
    service.add_alt_question(session, key="R19", question="寄到家裡要多少錢", actor="editor@demo.example")

    again = demo.seed_faq(session)

    assert again == {"created": 0, "kept": demo_bank["created"]}
    assert "寄到家裡要多少錢" in service.require_entry(session, "R19").alt_questions


def test_demo_bank_answers_customer_questions_with_the_shipped_decision(
    session: Session, demo_bank: dict[str, int],
) -> None:
    assert service.latest_calibration(session) is None
    index = service.current_index(session)

    found = {query: index.match(query).entry_id for query, _ in DEMO_QUESTIONS}

    assert found == dict(DEMO_QUESTIONS)
    assert [index.match(query).answered for query in NOT_FOR_THE_BANK] == [False] * len(NOT_FOR_THE_BANK)


def test_a_bad_row_in_the_demo_bank_stops_the_demo(session: Session, tmp_path: Path) -> None:
    (tmp_path / "faq").mkdir()
    write(tmp_path / "faq", "retail-x.yaml", "entries:\n  - id: X1\n    question: ''\n    answer: a\n")

    with pytest.raises(InvalidInput, match=r"retail-x.yaml:2: rejected: question is empty"):
        demo.seed_faq(session, config_dir=tmp_path)
