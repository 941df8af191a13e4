"""`toolkit db`: upgrade, current and downgrade on a database of their own."""

from __future__ import annotations

import pytest
from alembic.script import ScriptDirectory

from tests.cli.helpers import run_cli
from toolkit import migrate
from toolkit.consent import service as consent
from toolkit.settings import REPO_ROOT

HEAD = ScriptDirectory.from_config(migrate.alembic_config("sqlite://")).get_current_head()
PURPOSES = len(consent.load_purpose_file(REPO_ROOT / "config" / "purposes.yaml"))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue({"sqlite": "sqlite_url", "postgresql": "postgres_url"}[request.param])


def test_upgrade_downgrade_and_upgrade_again(database_url: str) -> None:
    assert run_cli("db", "current").stdout == "base\n"

    upgraded = run_cli("db", "upgrade")
    assert upgraded.exit_code == 0, upgraded
    assert upgraded.stderr_lines == [f"database at {HEAD}; {PURPOSES} purposes synced"]
    assert run_cli("db", "current").stdout == f"{HEAD}\n"
    assert run_cli("audit", "verify").exit_code == 0

    downgraded = run_cli("db", "downgrade", "base")
    assert downgraded.exit_code == 0, downgraded
    assert run_cli("db", "current").stdout == "base\n"
    assert run_cli("audit", "verify").exit_code == 2

    assert run_cli("db", "upgrade").exit_code == 0
    assert run_cli("db", "upgrade").exit_code == 0  # idempotent
    assert run_cli("db", "current").stdout == f"{HEAD}\n"


def test_downgrade_accepts_a_relative_revision(sqlite_url: str) -> None:
    assert run_cli("db", "upgrade").exit_code == 0

    result = run_cli("db", "downgrade", "-1")

    assert result.exit_code == 0, result
    assert run_cli("db", "current").stdout != f"{HEAD}\n"


def test_downgrade_needs_a_revision(sqlite_url: str) -> None:
    result = run_cli("db", "downgrade")

    assert result.exit_code == 2
    assert "Traceback" not in result.stderr
