"""`toolkit consent`: grant, withdraw, object and status, run through main()."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.cli.helpers import run_cli, write
from tests.contacts.factories import make_contact
from toolkit.consent import service as consent
from toolkit.consent.models import ConsentEvent
from toolkit.contacts.models import Contact

PUSH = "marketing.line_push"
CHAT = "service.chat"
STATUS_KEYS = {"state", "lawful_basis", "notice_version", "changed_at"}


def external_id(contact: Contact) -> str:
    return contact.identities[0].external_id


def events(session: Session, contact: Contact) -> int:
    return session.scalar(select(func.count()).select_from(ConsentEvent).where(ConsentEvent.contact_id == contact.id))


def status_json(contact_id: str) -> dict[str, dict[str, object]]:
    result = run_cli("consent", "status", contact_id, "--json")
    assert result.exit_code == 0, result
    return json.loads(result.stdout)


def test_status_json_has_exactly_the_configured_purposes(session: Session) -> None:
    person = make_contact(session)

    status = status_json(external_id(person))

    assert list(status) == sorted(p.code for p in consent.list_purposes(session))
    for code, item in status.items():
        assert set(item) == STATUS_KEYS, code
        assert item["state"] == "none"
        assert item["changed_at"] is None
        assert item["notice_version"]
    assert status[PUSH]["lawful_basis"] == "consent"
    assert status[CHAT]["lawful_basis"] == "contract"


def test_status_json_prints_only_json_on_stdout_and_iso_timestamps(session: Session) -> None:
    person = make_contact(session, consent_to={PUSH: "grant"})

    result = run_cli("consent", "status", external_id(person), "--json")

    assert result.exit_code == 0
    assert result.stdout.count("\n") == 1
    changed = datetime.fromisoformat(json.loads(result.stdout)[PUSH]["changed_at"])
    assert changed.utcoffset() is not None


def test_status_without_json_prints_a_line_per_purpose(session: Session) -> None:
    person = make_contact(session, consent_to={PUSH: "withdraw"})

    result = run_cli("consent", "status", external_id(person))

    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == len(consent.list_purposes(session))
    assert any(line.startswith(PUSH) and "withdrawn" in line for line in lines)


@pytest.mark.parametrize(("action", "state"), [("grant", "granted"), ("withdraw", "withdrawn"), ("object", "objected")])
def test_each_decision_writes_an_event_and_sets_the_state(session: Session, action: str, state: str) -> None:
    person = make_contact(session)

    result = run_cli("consent", action, "--contact", external_id(person), "--purpose", PUSH, "--source", "admin")

    assert result.exit_code == 0, result
    assert f"{PUSH} is {state}" in result.stderr
    assert events(session, person) == 1
    assert status_json(external_id(person))[PUSH]["state"] == state


@pytest.mark.parametrize("action", ["withdraw", "object"])
def test_refusals_are_recorded_for_a_contact_who_never_granted_even_twice(session: Session, action: str) -> None:
    person = make_contact(session)
    args = ("consent", action, "--contact", external_id(person), "--purpose", CHAT, "--source", "keyword")

    assert run_cli(*args).exit_code == 0
    assert run_cli(*args).exit_code == 0

    assert events(session, person) == 2
    assert status_json(external_id(person))[CHAT]["state"] == consent.STATE_AFTER[action]


@pytest.mark.parametrize("source", sorted(consent.IMPLICIT_GRANT_SOURCES))
def test_implicit_grant_after_an_objection_is_not_applied(session: Session, source: str) -> None:
    person = make_contact(session, consent_to={PUSH: "object"})

    result = run_cli("consent", "grant", "--contact", external_id(person), "--purpose", PUSH, "--source", source)

    assert result.exit_code == 0
    assert "not applied" in result.stderr
    assert events(session, person) == 1
    assert status_json(external_id(person))[PUSH]["state"] == "objected"


def test_explicit_grant_after_an_objection_is_applied(session: Session) -> None:
    person = make_contact(session, consent_to={PUSH: "object"})

    result = run_cli("consent", "grant", "--contact", external_id(person), "--purpose", PUSH, "--source", "keyword")

    assert result.exit_code == 0
    assert status_json(external_id(person))[PUSH]["state"] == "granted"


def test_object_to_all_objects_every_purpose_and_blocks_reimport(session: Session, tmp_path) -> None:  # noqa: ANN001
    person = make_contact(session, display_name="Before", consent_to={PUSH: "grant"})
    ext = external_id(person)

    result = run_cli("consent", "object", "--contact", ext, "--purpose", "all", "--source", "admin")

    assert result.exit_code == 0, result
    assert {item["state"] for item in status_json(ext).values()} == {"objected"}
    assert consent.is_suppressed(session, channel="line", external_id=ext)
    purposes = len(consent.list_purposes(session))
    assert events(session, person) == 1 + purposes

    people = write(tmp_path / "people.csv", f"external_id,display_name,{PUSH}\n{ext},After,granted\n")
    imported = run_cli("contacts", "import", str(people))

    assert imported.exit_code == 0, imported
    assert "1 skipped suppressed" in imported.stderr
    session.expire_all()
    assert person.display_name == "Before"
    assert events(session, person) == 1 + purposes
    assert status_json(ext)[PUSH]["state"] == "objected"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--contact", "Unobody", "--purpose", PUSH, "--source", "cli"), "no contact"),
        (("--contact", "{ext}", "--purpose", "marketing.nope", "--source", "cli"), "unknown purpose"),
        (("--contact", "{ext}", "--purpose", PUSH, "--source", "fax"), "unknown consent source"),
    ],
    ids=["contact", "purpose", "source"],
)
@pytest.mark.parametrize("action", ["grant", "withdraw", "object"])
def test_unknown_input_is_one_line_and_exit_2(
    session: Session, action: str, args: tuple[str, ...], fragment: str
) -> None:
    person = make_contact(session)

    result = run_cli("consent", action, *(a.format(ext=external_id(person)) for a in args))

    assert result.exit_code == 2, result
    assert len(result.stderr_lines) == 1 and fragment in result.stderr
    assert "Traceback" not in result.stderr
    assert events(session, person) == 0


def test_object_to_all_with_an_unknown_source_changes_nothing(session: Session) -> None:
    person = make_contact(session)
    ext = external_id(person)

    result = run_cli("consent", "object", "--contact", ext, "--purpose", "all", "--source", "fax")

    assert result.exit_code == 2
    assert len(result.stderr_lines) == 1 and "unknown consent source" in result.stderr
    assert events(session, person) == 0
    assert not consent.is_suppressed(session, channel="line", external_id=ext)


def test_status_of_an_unknown_contact_is_one_line_and_exit_2(session: Session) -> None:
    result = run_cli("consent", "status", "Unobody", "--json")

    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr_lines == ["error: no contact with line id 'Unobody'"]


def test_all_is_not_a_purpose_for_grant(session: Session) -> None:
    person = make_contact(session)

    result = run_cli("consent", "grant", "--contact", external_id(person), "--purpose", "all", "--source", "cli")

    assert result.exit_code == 2
    assert "unknown purpose 'all'" in result.stderr
