"""Databases for commands that open their own engine from TOOLKIT_DATABASE_URL (the
`session` fixture in tests/conftest.py covers every other command)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.helpers import drop_postgres_database
from tests.conftest import IN_CI, fresh_postgres_database, postgres_available, worker_suffix
from toolkit import db
from toolkit.settings import get_settings


@pytest.fixture
def database_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Settings and engine are read afresh from the environment the test sets."""
    get_settings.cache_clear()
    db.reset_engine()
    yield
    db.reset_engine()
    get_settings.cache_clear()


@pytest.fixture
def sqlite_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_env: None) -> str:
    """TOOLKIT_DATABASE_URL pointing at a SQLite file that does not exist yet."""
    url = f"sqlite:///{tmp_path / 'toolkit.db'}"
    monkeypatch.setenv("TOOLKIT_DATABASE_URL", url)
    return url


def require_postgres() -> None:
    problem = postgres_available()
    if problem is None:
        return
    if IN_CI:
        pytest.fail(f"PostgreSQL is required under CI=true: {problem}")
    pytest.skip(f"PostgreSQL is not available: {problem}")


@pytest.fixture
def fresh_postgres_url() -> Iterator[str]:
    """A new, empty PostgreSQL database for this worker (dropped after the test)."""
    require_postgres()
    url = fresh_postgres_database(f"toolkit_cli_{worker_suffix()}")
    yield url
    db.reset_engine()
    drop_postgres_database(url)


@pytest.fixture
def postgres_url(fresh_postgres_url: str, monkeypatch: pytest.MonkeyPatch, database_env: None) -> str:
    """TOOLKIT_DATABASE_URL pointing at a new, empty PostgreSQL database."""
    monkeypatch.setenv("TOOLKIT_DATABASE_URL", fresh_postgres_url)
    return fresh_postgres_url
