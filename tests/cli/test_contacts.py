"""`toolkit contacts import` and `list`, run through main() inside the test transaction."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.cli.helpers import run_cli, write
from tests.contacts.factories import line_id, make_contact
from toolkit.audit.models import AuditLog
from toolkit.consent import service as consent
from toolkit.consent.models import ConsentEvent
from toolkit.contacts import service as contacts
from toolkit.contacts.models import Contact

PUSH = "marketing.line_push"
PROFILING = "marketing.profiling"


def count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model))


def state(session: Session, external_id: str, purpose: str) -> str:
    contact = contacts.require_by_external_id(session, external_id)
    return consent.status(session, contact_id=contact.id)[purpose]["state"]


@pytest.fixture
def ids() -> list[str]:
    return [line_id() for _ in range(3)]


@pytest.fixture
def good_csv(tmp_path: Path, ids: list[str]) -> Path:
    return write(
        tmp_path / "people.csv",
        f"external_id,display_name,locale,{PUSH},{PROFILING}\n"
        f"{ids[0]},Ann,zh-TW,granted,\n"
        f"{ids[1]},Bo,,withdrawn,granted\n"
        f"{ids[2]},,en,,\n",
    )


def test_import_creates_contacts_and_consent(session: Session, good_csv: Path, ids: list[str]) -> None:
    contacts_before, events_before = count(session, Contact), count(session, ConsentEvent)

    result = run_cli("contacts", "import", str(good_csv))

    assert result.exit_code == 0, result
    assert result.stdout == ""
    assert "3 created" in result.stderr and "3 consent changes" in result.stderr
    assert count(session, Contact) == contacts_before + 3
    assert count(session, ConsentEvent) == events_before + 3
    ann = contacts.require_by_external_id(session, ids[0])
    assert (ann.display_name, ann.locale) == ("Ann", "zh-TW")
    assert state(session, ids[0], PUSH) == "granted"
    assert state(session, ids[1], PUSH) == "withdrawn"
    assert state(session, ids[1], PROFILING) == "granted"
    assert state(session, ids[2], PUSH) == "none"


def test_import_shows_a_progress_bar_on_stderr(session: Session, good_csv: Path) -> None:
    result = run_cli("contacts", "import", str(good_csv))

    assert "importing" in result.stderr and "4/4" in result.stderr


def test_reimport_changes_nothing(session: Session, good_csv: Path, ids: list[str]) -> None:
    assert run_cli("contacts", "import", str(good_csv)).exit_code == 0
    before = {
        "contacts": count(session, Contact),
        "events": count(session, ConsentEvent),
        "rows": session.execute(select(Contact.id, Contact.display_name, Contact.locale, Contact.updated_at)
                                .order_by(Contact.id)).all(),
    }

    result = run_cli("contacts", "import", str(good_csv))

    assert result.exit_code == 0, result
    assert "0 created, 0 updated, 3 unchanged, 0 consent changes" in result.stderr
    assert count(session, Contact) == before["contacts"]
    assert count(session, ConsentEvent) == before["events"]
    assert session.execute(select(Contact.id, Contact.display_name, Contact.locale, Contact.updated_at)
                           .order_by(Contact.id)).all() == before["rows"]


def test_reimport_with_changes_updates(session: Session, tmp_path: Path) -> None:
    ext = line_id()
    write(tmp_path / "a.csv", f"external_id,display_name\n{ext},Old\n")
    write(tmp_path / "b.csv", f"external_id,display_name\n{ext},New\n")
    assert run_cli("contacts", "import", str(tmp_path / "a.csv")).exit_code == 0

    result = run_cli("contacts", "import", str(tmp_path / "b.csv"))

    assert result.exit_code == 0
    assert "1 updated" in result.stderr
    assert contacts.require_by_external_id(session, ext).display_name == "New"


def test_rejected_rows_are_reported_by_line_and_good_rows_kept(session: Session, tmp_path: Path) -> None:
    good = [line_id(), line_id()]
    people = write(
        tmp_path / "people.csv",
        f"external_id,display_name,locale,{PUSH}\n"
        f"{good[0]},Ann,,granted\n"
        "bad id,Bad,,\n"
        f"{line_id()},Cy,not a locale,\n"
        f"{line_id()},Di,,maybe\n"
        f"{good[1]},Ed,,\n"
        f"{line_id()},too,few\n",
    )

    result = run_cli("contacts", "import", str(people))

    assert result.exit_code == 1, result
    rejected = [line for line in result.stderr_lines if ": rejected: " in line]
    assert [line.split(":")[1] for line in rejected] == ["3", "4", "5", "7"]
    assert "external_id 'bad id'" in rejected[0]
    assert "locale" in rejected[1]
    assert "granted or withdrawn" in rejected[2]
    assert "expected 4 fields, found 3" in rejected[3]
    assert "Traceback" not in result.stderr
    assert all(contacts.get_by_external_id(session, ext) is not None for ext in good)
    assert state(session, good[0], PUSH) == "granted"


def test_duplicates_in_a_file_are_skipped_and_exit_0(session: Session, tmp_path: Path) -> None:
    ext = line_id()
    people = write(tmp_path / "people.csv", f"external_id,display_name\n{ext},First\n{ext},Second\n")

    result = run_cli("contacts", "import", str(people))

    assert result.exit_code == 0
    assert "1 created" in result.stderr and "1 skipped duplicate" in result.stderr
    assert contacts.require_by_external_id(session, ext).display_name == "First"


def test_erased_contact_is_not_readded(session: Session, tmp_path: Path) -> None:
    person = make_contact(session)
    ext = person.identities[0].external_id
    contacts.erase(session, contact_id=person.id, actor="test")
    people = write(tmp_path / "people.csv", f"external_id,display_name\n{ext},Back\n")

    result = run_cli("contacts", "import", str(people))

    assert result.exit_code == 0
    assert "1 skipped suppressed" in result.stderr
    assert contacts.get_by_external_id(session, ext) is None


def test_import_jsonl(session: Session, tmp_path: Path) -> None:
    ext = line_id()
    people = write(
        tmp_path / "people.jsonl",
        json.dumps({"external_id": ext, "display_name": "王小明", PUSH: "granted"}, ensure_ascii=False) + "\n"
        + "\n"
        + "{not json\n"
        + json.dumps([1, 2]) + "\n"
        + json.dumps({"external_id": 42}) + "\n",
    )

    result = run_cli("contacts", "import", str(people))

    assert result.exit_code == 1
    assert [line.split(":")[1] for line in result.stderr_lines if ": rejected: " in line] == ["3", "4", "5"]
    assert contacts.require_by_external_id(session, ext).display_name == "王小明"
    assert state(session, ext, PUSH) == "granted"


def test_import_writes_one_audit_summary(session: Session, good_csv: Path) -> None:
    run_cli("contacts", "import", str(good_csv))

    summary = session.scalars(
        select(AuditLog).where(AuditLog.action == "contacts.import").order_by(AuditLog.id.desc())
    ).first()
    assert summary is not None and summary.target_id == "people.csv"
    assert summary.details["created"] == 3


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("missing.csv", None, "no such file"),
        ("nameonly.csv", "display_name\nAnn\n", "no external_id column"),
        ("empty.csv", "", "no external_id column"),
        ("latin1.csv", b"external_id,display_name\nU1,Jos\xe9\n", "not UTF-8"),
        ("extra.csv", "external_id,favourite_colour\nU1,red\n", "unknown column"),
        ("twice.csv", "external_id,external_id\nU1,U2\n", "listed twice"),
        ("people.xlsx", "external_id\nU1\n", "unknown format"),
        ("nokeys.jsonl", '{"display_name": "Ann"}\n', "no external_id column"),
    ],
)
def test_unusable_file_is_one_line_exit_2_and_imports_nothing(
    session: Session, tmp_path: Path, name: str, content: str | bytes | None, fragment: str
) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    contacts_before = count(session, Contact)

    result = run_cli("contacts", "import", str(path))

    assert result.exit_code == 2, result
    assert len(result.stderr_lines) == 1 and fragment in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert count(session, Contact) == contacts_before


def test_directory_is_unusable(session: Session, tmp_path: Path) -> None:
    result = run_cli("contacts", "import", str(tmp_path))

    assert result.exit_code == 2
    assert "not a regular file" in result.stderr


def test_unreadable_file_is_unusable(session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests may run as root, where chmod 000 does not stop reading: make open() refuse.
    people = write(tmp_path / "people.csv", "external_id\nU1\n")
    real_open = Path.open

    def refuse(self: Path, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        if self == people:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refuse)

    result = run_cli("contacts", "import", str(people))

    assert result.exit_code == 2
    assert result.stderr_lines == [f"error: {people}: cannot read (Permission denied)"]


def test_list_shows_contacts(session: Session) -> None:
    person = make_contact(session, display_name="Zed Searchable")

    result = run_cli("contacts", "list", "--search", "Zed Search")

    assert result.exit_code == 0
    assert person.identities[0].external_id in result.stdout
    assert "1 of 1" in result.stderr
