"""`toolkit` as a real process on a fresh database: what an operator sees. Each process
start costs about a second, so each test tells a whole story and runs read-only commands
side by side."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from tests.cli.helpers import PASSWORD, finish_process, run_process, run_processes, start_process, write
from tests.contacts.factories import line_id
from toolkit import db, defaults
from toolkit.consent import service as consent

pytestmark = pytest.mark.slow

PURPOSES = sorted(p.code for p in consent.load_purpose_file(defaults.path("purposes.yaml")))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'toolkit.db'}"
    return request.getfixturevalue("fresh_postgres_url")


@pytest.fixture
def raw(database_url: str) -> Iterator[Engine]:
    """Direct database access, as someone tampering with the audit log would have."""
    engine = db.make_engine(database_url)
    yield engine
    engine.dispose()


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_operator_story(database_url: str, raw: Engine, tmp_path: Path) -> None:
    def toolkit(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return run_process(*args, database_url=database_url, input=input)

    # A fresh, empty database: upgrade, downgrade to nothing, upgrade again.
    ok(toolkit("db", "upgrade"))
    ok(toolkit("db", "downgrade", "base"))
    assert ok(toolkit("db", "upgrade")) == ""

    ok(toolkit("users", "create", "--email", "admin@example.com", "--role", "admin", "--password-stdin",
               input=PASSWORD + "\n"))

    ext = [line_id() for _ in range(3)]
    good = write(tmp_path / "good.csv", "external_id,display_name,marketing.line_push\n"
                 + "".join(f"{e},Person {i},granted\n" for i, e in enumerate(ext)))
    imported = toolkit("contacts", "import", str(good))
    assert ok(imported) == "" and "3 created" in imported.stderr
    # NUL is legal in CSV but not in PostgreSQL text: rejected as a row, not a crash.
    bad = write(tmp_path / "bad.csv", f"external_id,display_name\n{line_id()},Ok\nbad id,Nope\n"
                f"{line_id()},Nul\x00Name\n")
    partly = toolkit("contacts", "import", str(bad))
    assert partly.returncode == 1, partly.stderr
    assert "bad.csv:3: rejected" in partly.stderr and "bad.csv:4: rejected" in partly.stderr
    assert "1 created" in partly.stderr and "Traceback" not in partly.stderr

    missing, status, intact = run_processes(
        ("contacts", "import", str(tmp_path / "missing.csv")),
        ("consent", "status", ext[0], "--json"),
        ("audit", "verify"),
        database_url=database_url,
    )
    assert "no such file" in one_line_error(missing)
    current = json.loads(ok(status))
    assert sorted(current) == PURPOSES
    assert current["marketing.line_push"]["state"] == "granted"
    assert "intact" in ok(intact)

    with raw.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor = 'mallory' WHERE id = 3"))
    altered = toolkit("audit", "verify")
    assert altered.returncode == 1 and "BROKEN at row 3:" in altered.stderr
    with raw.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE id >= 3"))
    removed = toolkit("audit", "verify")
    assert removed.returncode == 1 and "BROKEN at row 3:" in removed.stderr and "removed" in removed.stderr


def test_without_a_usable_database(tmp_path: Path) -> None:
    nowhere = f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}"
    help_, unmigrated, refused = map(finish_process, [
        start_process("--help", database_url=nowhere),
        start_process("consent", "status", "Uabc", "--json", database_url=f"sqlite:///{tmp_path / 'x.db'}"),
        start_process("audit", "verify", database_url="postgresql://postgres@127.0.0.1:1/toolkit"),
    ])

    assert "Usage" in ok(help_)
    assert not (tmp_path / "missing-dir").exists()
    assert "toolkit db upgrade" in one_line_error(unmigrated)
    assert one_line_error(refused).startswith("error: database error")
