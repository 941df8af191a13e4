"""`toolkit db`: upgrade, current and downgrade on a database of their own."""

from __future__ import annotations

import pytest
from alembic.script import ScriptDirectory

from tests.cli.helpers import run_cli
from toolkit import defaults, migrate
from toolkit.consent import service as consent
from toolkit.settings import get_settings

HEAD = ScriptDirectory.from_config(migrate.alembic_config("sqlite://")).get_current_head()
PURPOSES = len(consent.load_purpose_file(defaults.path("purposes.yaml")))


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


def test_upgrade_syncs_the_brands_own_purposes_from_the_config_dir(
    sqlite_url: str, tmp_path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    brand = tmp_path / "brand"
    brand.mkdir()
    shipped = defaults.path("purposes.yaml").read_text(encoding="utf-8")
    extra = ("  - code: brand.survey\n    lawful_basis: consent\n    name: {zh-TW: 問卷, en: Surveys}\n"
             "    notice: {version: '1', zh-TW: 問卷通知, en: Survey notice}\n    retention_days: 30\n")
    (brand / "purposes.yaml").write_text(shipped.rstrip("\n") + "\n" + extra, encoding="utf-8")
    monkeypatch.setenv("TOOLKIT_CONFIG_DIR", str(brand))
    get_settings.cache_clear()

    upgraded = run_cli("db", "upgrade")

    assert upgraded.exit_code == 0, upgraded
    assert upgraded.stderr_lines == [f"database at {HEAD}; {PURPOSES + 1} purposes synced"]
