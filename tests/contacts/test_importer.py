"""The importer: reading CSV/JSONL, checking rows, and importing them idempotently."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from tests.contacts.factories import line_id, make_contact
from toolkit import defaults
from toolkit.consent import service as consent
from toolkit.consent.models import ConsentEvent
from toolkit.contacts import importer, service
from toolkit.contacts.importer import ContactRow, RowRejected, UnusableFile, parse_row
from toolkit.contacts.schemas import EXTERNAL_ID_PATTERN, LOCALE_MAX_LENGTH, LOCALE_PATTERN
from toolkit.kit import tabular

PUSH = "marketing.line_push"
CHAT = "service.chat"
PURPOSES = {p.code for p in consent.load_purpose_file(defaults.path("purposes.yaml"))}


def source(tmp_path: Path, name: str, content: str | bytes) -> tabular.SourceFile:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", newline="")
    return importer.inspect_file(path, PURPOSES)


def rows(tmp_path: Path, name: str, content: str) -> list[tuple[int, Any]]:
    return list(tabular.read_rows(source(tmp_path, name, content)))


# --- reading ----------------------------------------------------------------------------

def test_csv_rows_are_numbered_by_file_line(tmp_path: Path) -> None:
    found = rows(tmp_path, "a.csv", 'external_id,display_name\nU1,Ann\n\nU2,"Two\nlines"\nU3\n')

    assert found == [
        (2, {"external_id": "U1", "display_name": "Ann"}),
        (4, {"external_id": "U2", "display_name": "Two\nlines"}),
        (6, "expected 2 fields, found 1"),
    ]


def test_csv_header_is_trimmed_and_bom_ignored(tmp_path: Path) -> None:
    found = rows(tmp_path, "a.csv", "\ufeff external_id , locale\r\nU1,en\r\n")

    assert found == [(2, {"external_id": "U1", "locale": "en"})]


def test_csv_field_over_the_size_limit_is_a_rejected_row(tmp_path: Path) -> None:
    found = rows(tmp_path, "a.csv", f"external_id,display_name\nU1,{'x' * 200_000}\nU2,ok\n")

    assert found[0][0] == 2 and "field larger than field limit" in found[0][1]
    assert found[1] == (3, {"external_id": "U2", "display_name": "ok"})


def test_jsonl_lines(tmp_path: Path) -> None:
    found = rows(tmp_path, "a.jsonl", '{"external_id": "U1"}\n\n[1]\n{bad\n' + "[" * 50_000 + "\n" + "1" * 5000 + "\n")

    assert found[0] == (1, {"external_id": "U1"})
    assert found[1] == (3, "expected a JSON object")
    assert found[2][0] == 4 and found[2][1].startswith("not valid JSON")
    assert found[3] == (5, "not valid JSON (nested too deeply)")
    assert found[4][0] == 6 and found[4][1].startswith("not valid JSON")


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("a.csv", b"external_id\nU\xff\n", "not UTF-8"),
        ("a.csv", "", "no external_id column (found: nothing)"),
        ("a.csv", "id,name\n", "no external_id column (found: id, name)"),
        ("a.csv", "external_id,display_name,display_name\n", "listed twice: display_name"),
        ("a.csv", "external_id,marketing.sms\n", "unknown column(s) 'marketing.sms'"),
        ("a.csv", "external_id,\n", "unknown column(s) ''"),
        ("a.csv", f"external_id,x{'y' * 200_000}\n", "the header is not CSV"),
        ("a.jsonl", '{"name": "x"}\n', "no external_id column"),
        ("a.jsonl", '{"external_id": "U1", "colour": "red"}\n', "unknown column(s) 'colour'"),
        ("a.xls", "external_id\n", "unknown format"),
    ],
)
def test_unusable_files(tmp_path: Path, name: str, content: str | bytes, fragment: str) -> None:
    with pytest.raises(UnusableFile) as caught:
        source(tmp_path, name, content)

    assert fragment in caught.value.message


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(UnusableFile, match="no such file"):
        importer.inspect_file(tmp_path / "nope.csv", PURPOSES)
    with pytest.raises(UnusableFile, match="not a regular file"):
        importer.inspect_file(tmp_path, PURPOSES)


def test_line_count_includes_a_last_line_without_newline(tmp_path: Path) -> None:
    assert source(tmp_path, "a.csv", "external_id\nU1\nU2").lines == 3
    assert source(tmp_path, "b.csv", "external_id\nU1\nU2\n").lines == 3


# --- checking rows ----------------------------------------------------------------------

def test_parse_row_normalises() -> None:
    parsed = parse_row(
        {"external_id": " U1 ", "display_name": "  ", "locale": "zh-TW", PUSH: " Granted ", CHAT: "withdrawn",
         "marketing.profiling": ""},
        PURPOSES,
    )

    assert parsed == ContactRow("U1", None, "zh-TW", {PUSH: "grant", CHAT: "withdraw"})


@pytest.mark.parametrize(
    ("row", "fragment"),
    [
        ({}, "external_id is empty"),
        ({"external_id": "   "}, "external_id is empty"),
        ({"external_id": 123}, "external_id must be text, not int"),
        ({"external_id": "has space"}, "not a valid id"),
        ({"external_id": "U" * 129}, "not a valid id"),
        ({"external_id": "Ü1"}, "not a valid id"),
        ({"external_id": "U1", "display_name": "x" * 201}, "longer than 200"),
        ({"external_id": "U1", "display_name": "a\x00b"}, "control characters"),
        ({"external_id": "U1", "display_name": "a\ud800b"}, "control characters"),
        ({"external_id": "U1", "display_name": ["x"]}, "display_name must be text, not list"),
        ({"external_id": "U1", "locale": "zh_TW"}, "not a language tag"),
        ({"external_id": "U1", "locale": "en\n-x"}, "not a language tag"),
        ({"external_id": "U1", "locale": "zh-Hant-TW-x"}, "not a language tag"),
        ({"external_id": "U1", "locale": "abc-12345678-abcdefgh"}, "not a language tag"),
        ({"external_id": "U1", PUSH: "yes"}, "must be granted or withdrawn"),
        ({"external_id": "U1", PUSH: True}, "must be text, not bool"),
    ],
)
def test_parse_row_rejects(row: dict[str, Any], fragment: str) -> None:
    with pytest.raises(RowRejected) as caught:
        parse_row(row, PURPOSES)

    assert fragment in caught.value.message


# --- properties -------------------------------------------------------------------------

COLUMNS = ["external_id", "display_name", "locale", *sorted(PURPOSES)]
external_ids = st.from_regex(EXTERNAL_ID_PATTERN, fullmatch=True)
locales = st.from_regex(LOCALE_PATTERN, fullmatch=True).filter(lambda tag: len(tag) <= LOCALE_MAX_LENGTH)
names = st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=200)
decision_values = st.sampled_from(["granted", "withdrawn", "GRANTED", " withdrawn ", ""])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


def _check_file(name: str, content: bytes) -> None:
    """Whatever the bytes, the importer's reading and checking raise only its own errors."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(content)
        try:
            found = importer.inspect_file(path, PURPOSES)
        except UnusableFile:
            return
        for line, row in tabular.read_rows(found):
            assert line >= 1
            if isinstance(row, dict):
                try:
                    parse_row(row, PURPOSES)
                except RowRejected:
                    pass


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(["a.csv", "a.jsonl", "a.txt"]),
    header=st.lists(st.sampled_from([*COLUMNS, "", " external_id", "other"]), max_size=5),
    body=st.text(),
)
def test_any_text_only_raises_importer_errors(name: str, header: list[str], body: str) -> None:
    _check_file(name, (",".join(header) + "\n" + body).encode("utf-8"))


@settings(max_examples=100)
@given(name=st.sampled_from(["a.csv", "a.jsonl"]), content=st.binary())
def test_any_bytes_only_raise_importer_errors(name: str, content: bytes) -> None:
    _check_file(name, content)


@given(st.lists(st.dictionaries(st.sampled_from(COLUMNS), json_values, max_size=6), max_size=5))
def test_any_json_rows_only_raise_importer_errors(records: list[dict[str, Any]]) -> None:
    _check_file("a.jsonl", "".join(json.dumps(r) + "\n" for r in records).encode("utf-8"))


@given(st.dictionaries(st.sampled_from([*COLUMNS, "other"]), json_values | st.text(), max_size=7))
def test_parse_row_raises_only_row_rejected(row: dict[str, Any]) -> None:
    try:
        parsed = parse_row(row, PURPOSES)
    except RowRejected:
        return
    assert parsed.external_id == row["external_id"].strip()


@st.composite
def valid_rows(draw: st.DrawFn) -> list[dict[str, str]]:
    count = draw(st.integers(min_value=1, max_value=5))
    return [
        {
            "external_id": draw(external_ids),
            "display_name": draw(names),
            "locale": draw(st.none() | locales) or "",
            **{code: draw(decision_values) for code in sorted(PURPOSES)},
        }
        for _ in range(count)
    ]


def expected(row: dict[str, str]) -> ContactRow:
    decisions = {code: importer.CONSENT_VALUES[row[code].strip().lower()] for code in sorted(PURPOSES)
                 if row[code].strip()}
    return ContactRow(row["external_id"], row["display_name"].strip() or None, row["locale"] or None, decisions)


def _read_back(name: str, content: str) -> list[ContactRow]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_text(content, encoding="utf-8", newline="")
        found = importer.inspect_file(path, PURPOSES)
        parsed = []
        for _line, row in tabular.read_rows(found):
            assert isinstance(row, dict), row
            parsed.append(parse_row(row, PURPOSES))
        return parsed


@given(valid_rows())
def test_valid_rows_round_trip_through_csv(records: list[dict[str, str]]) -> None:
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(records)

    assert _read_back("a.csv", buffer.getvalue()) == [expected(r) for r in records]


@given(valid_rows(), st.booleans())
def test_valid_rows_round_trip_through_jsonl(records: list[dict[str, str]], ascii_only: bool) -> None:
    content = "".join(json.dumps(r, ensure_ascii=ascii_only) + "\n" for r in records)

    assert _read_back("a.jsonl", content) == [expected(r) for r in records]


# --- importing --------------------------------------------------------------------------

def events(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(ConsentEvent))


def run(session: Session, *lines: tuple[int, dict[str, Any] | str]) -> importer.ImportReport:
    batch = importer.ImportRun(purposes=PURPOSES, actor="test", file="test.csv")
    for line, row in lines:
        batch.add(session, line, row)
    return batch.report


def test_import_counts_each_outcome(session: Session) -> None:
    existing = make_contact(session, display_name="Same")
    same = existing.identities[0].external_id
    new = line_id()

    report = run(session,
                 (2, {"external_id": new, "display_name": "New", PUSH: "granted"}),
                 (3, {"external_id": same, "display_name": "Same"}),
                 (4, {"external_id": new}),
                 (5, "expected 3 fields, found 1"),
                 (6, {"external_id": "bad id"}))

    assert report.as_dict() == {"created": 1, "updated": 0, "unchanged": 1, "consent_changes": 1,
                                "skipped_suppressed": 0, "skipped_duplicate": 1, "rejected": 2}
    assert report.skipped_duplicate == [4]
    assert [line for line, _ in report.rejected] == [5, 6]
    assert report.rows == 5


def test_reimport_writes_no_events(session: Session) -> None:
    ext = line_id()
    row = {"external_id": ext, "display_name": "A", PUSH: "granted", CHAT: "withdrawn"}
    first = run(session, (2, row))
    before = events(session)

    again = run(session, (2, row))

    assert first.consent_changes == 2
    assert again.as_dict()["unchanged"] == 1 and again.consent_changes == 0
    assert events(session) == before


def test_withdrawal_in_a_file_does_not_soften_an_objection(session: Session) -> None:
    person = make_contact(session, consent_to={CHAT: "object"})
    ext = person.identities[0].external_id
    before = events(session)

    report = run(session, (2, {"external_id": ext, CHAT: "withdrawn"}))

    assert report.unchanged == 1 and events(session) == before
    assert consent.status(session, contact_id=person.id)[CHAT]["state"] == "objected"


def test_grant_in_a_file_does_not_overturn_a_refusal(session: Session) -> None:
    person = make_contact(session, consent_to={PUSH: "withdraw"})
    before = events(session)

    report = run(session, (2, {"external_id": person.identities[0].external_id, PUSH: "granted"}))

    assert report.unchanged == 1 and report.consent_changes == 0 and events(session) == before
    assert consent.status(session, contact_id=person.id)[PUSH]["state"] == "withdrawn"


def test_suppressed_existing_contact_is_skipped_and_left_alone(session: Session) -> None:
    person = make_contact(session, display_name="Kept")
    ext = person.identities[0].external_id
    consent.object_to_all_contact(session, contact_id=person.id, identities=[("line", ext)], source="admin")
    before = events(session)

    report = run(session, (2, {"external_id": ext, "display_name": "Changed", PUSH: "granted"}))

    assert report.skipped_suppressed == [2] and report.rejected == []
    assert person.display_name == "Kept" and events(session) == before


def test_suppressed_unknown_identity_is_not_added(session: Session) -> None:
    ext = line_id()
    consent.suppress(session, identities=[("line", ext)], reason="erasure")

    report = run(session, (2, {"external_id": ext}), (3, {"external_id": ext}))

    assert report.skipped_suppressed == [2, 3]
    assert service.get_by_external_id(session, ext) is None


def refuse_names(session: Session, name: str) -> None:
    """Make the database itself refuse a contact called `name` (a trigger, for this test's
    transaction only), as it would a row that races a concurrent insert."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(
            "CREATE FUNCTION pg_temp.refuse_name() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF NEW.display_name = '{name}' THEN RAISE check_violation USING MESSAGE = 'refused name'; END IF; "
            "RETURN NEW; END $$"
        ))
        session.execute(text("CREATE TRIGGER refuse_name BEFORE INSERT OR UPDATE ON contact "
                             "FOR EACH ROW EXECUTE FUNCTION pg_temp.refuse_name()"))
    else:
        session.execute(text(
            "CREATE TEMP TRIGGER refuse_name BEFORE INSERT ON contact "
            f"WHEN NEW.display_name = '{name}' BEGIN SELECT RAISE(ABORT, 'refused name'); END"
        ))


def test_a_row_the_database_refuses_is_rejected_and_the_rest_of_its_batch_kept(session: Session) -> None:
    refused, kept, later = line_id(), line_id(), line_id()
    refuse_names(session, "Refused")
    batch = importer.ImportRun(purposes=PURPOSES, actor="test", file="test.csv")

    batch.add_batch(session, [(2, {"external_id": kept, PUSH: "granted"}),
                              (3, {"external_id": refused, "display_name": "Refused"}),
                              (4, "expected 3 fields, found 1")])
    batch.add_batch(session, [(5, {"external_id": later}), (6, {"external_id": kept})])

    report = batch.report
    assert [line for line, _ in report.rejected] == [3, 4]
    assert report.rejected[0][1].startswith("the database refused the row (") and "refused name" in report.rejected[0][1]
    assert report.created == 2 and report.consent_changes == 1 and report.skipped_duplicate == [6]
    assert service.get_by_external_id(session, refused) is None
    assert service.get_by_external_id(session, kept) is not None
    assert service.get_by_external_id(session, later) is not None


# --- a batch at once is the same import as row by row -----------------------------------

IDS = [f"U{n:032x}" for n in range(6)]
decision_values = st.sampled_from(["granted", "withdrawn", ""])
file_rows = st.fixed_dictionaries(
    {"external_id": st.sampled_from(IDS)},
    optional={"display_name": st.sampled_from(["Ann", "Bo", ""]), "locale": st.sampled_from(["zh-TW", "en", ""]),
              PUSH: decision_values, CHAT: decision_values},
)
starting_points = st.fixed_dictionaries({
    external_id: st.one_of(
        st.none(),
        st.just("suppressed"),
        st.tuples(st.sampled_from(["Ann", "Cy"]),
                  st.dictionaries(st.sampled_from([PUSH, CHAT]), st.sampled_from(["grant", "withdraw", "object"]))),
    )
    for external_id in IDS
})


def prepare(session: Session, start: dict[str, Any]) -> None:
    for external_id, what in start.items():
        if what == "suppressed":
            consent.suppress(session, identities=[("line", external_id)], reason="objection")
        elif what is not None:
            make_contact(session, external_id=external_id, display_name=what[0], consent_to=what[1])


def outcome(session: Session) -> dict[str, Any]:
    """What the import left, by identity: name, locale, each purpose's state, event count."""
    found = {}
    for external_id in IDS:
        contact = service.get_by_external_id(session, external_id)
        if contact is None:
            continue
        found[external_id] = (
            contact.display_name, contact.locale,
            {code: s["state"] for code, s in consent.status(session, contact_id=contact.id).items()},
            session.scalar(select(func.count()).select_from(ConsentEvent).where(ConsentEvent.contact_id == contact.id)),
        )
    return found


@given(start=starting_points, lines=st.lists(file_rows, max_size=12), batch_size=st.integers(1, 5))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_batches_import_exactly_what_row_by_row_imports(
    session: Session, start: dict[str, Any], lines: list[dict[str, str]], batch_size: int,
) -> None:
    numbered = list(enumerate(lines, start=2))
    results = {}
    for way in ("row by row", "in batches"):
        savepoint = session.begin_nested()
        prepare(session, start)
        if way == "row by row":
            report = row_by_row(session, numbered)
        else:
            run = importer.ImportRun(purposes=PURPOSES, actor="test", file="f.csv")
            for at in range(0, len(numbered), batch_size):
                run.add_batch(session, numbered[at : at + batch_size])
            report = run.report
        results[way] = (report.as_dict(), report.skipped_duplicate, report.skipped_suppressed, report.rejected,
                        outcome(session))
        savepoint.rollback()

    assert results["in batches"] == results["row by row"]


def row_by_row(session: Session, numbered: list[tuple[int, dict[str, str]]]) -> importer.ImportReport:
    """The import as it was before batches (and as a refused batch still does it): a
    savepoint, a suppression check, a lookup and a consent record per row."""
    report = importer.ImportReport()
    seen: set[str] = set()
    for line, row in numbered:
        try:
            parsed = parse_row(row, PURPOSES)
        except RowRejected as exc:
            report.rejected.append((line, exc.message))
            continue
        if parsed.external_id in seen:
            report.skipped_duplicate.append(line)
            continue
        result = importer.import_row(session, parsed, actor="test", evidence={"file": "f.csv", "line": line})
        report.count(line, result)
        if result.outcome != importer.SUPPRESSED:
            seen.add(parsed.external_id)
    return report


# --- the run's memory of identities it imported -----------------------------------------

@settings(max_examples=60, deadline=None)
@given(batches=st.lists(st.lists(st.integers(0, 40), max_size=12), max_size=12),
       probe=st.lists(st.integers(0, 40), max_size=20))
def test_seen_identities_knows_exactly_what_was_added(batches: list[list[int]], probe: list[int]) -> None:
    # Few distinct high halves, so that keys sharing one (never in real hashes) are exercised.
    def hashed(n: int) -> str:
        return f"{n % 3:016x}{n:016x}" + "0" * 32

    seen, added = importer.SeenIdentities(), set()
    for batch in batches:
        assert seen.contains([hashed(n) for n in batch]) == [n in added for n in batch]
        seen.add([hashed(n) for n in batch])
        added.update(batch)
    assert seen.contains([hashed(n) for n in probe]) == [n in added for n in probe]
