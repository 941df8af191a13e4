"""Test databases: every DB test runs on SQLite and on PostgreSQL.

Each backend is migrated once per test process (one database per xdist worker); each test
runs inside an outer transaction that is rolled back, with the Session joined through
SAVEPOINTs so that a service or CLI command that commits only releases a savepoint.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from toolkit import db, defaults, domains, migrate
from toolkit.consent import service as consent
from toolkit.kit import clock, secrets
from toolkit.settings import get_settings

POSTGRES_URL = os.environ.get(
    "TOOLKIT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
BACKENDS = ["sqlite", "postgresql"]


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("TOOLKIT_ENV", "test")
    get_settings.cache_clear()
    domains.assemble()  # as every entry point does when it starts


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    for name in sorted(CREATED_DATABASES):
        try:
            drop_postgres_database(name)
        except Exception:  # noqa: BLE001 - cleanup must not turn a green run red
            pass


def worker_suffix() -> str:
    # The pid keeps two test runs on one machine (two checkouts) from dropping each other's DB.
    return f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{os.getpid()}"


def postgres_available() -> str | None:
    """None when PostgreSQL answers, else why not."""
    try:
        engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not available"
        return str(exc).splitlines()[0]


CREATED_DATABASES: set[str] = set()


def fresh_postgres_database(name: str) -> str:
    """Drop and create database NAME next to the configured test database; it is dropped
    again when this test process ends."""
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    CREATED_DATABASES.add(name)
    return make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(name: str) -> None:
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def prepare(engine: Engine) -> None:
    migrate.upgrade(engine)
    with Session(engine) as session:
        consent.sync_from_config(session, None)
        for name in (secrets.SESSION_KEY, secrets.SUPPRESSION_KEY):
            secrets.get_secret(session, name)
        session.commit()


@pytest.fixture(autouse=True)
def real_time() -> Iterator[None]:
    """Every test starts on the machine's time; one that moves the clock cannot leak it."""
    clock.set_state(clock.REAL_TIME)
    yield
    clock.set_state(clock.REAL_TIME)


@pytest.fixture(scope="session")
def backend_engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Engine]]:
    engines: dict[str, Engine] = {}
    sqlite_path = tmp_path_factory.mktemp("db") / "test.db"
    engines["sqlite"] = db.make_engine(f"sqlite:///{sqlite_path}")
    prepare(engines["sqlite"])
    problem = postgres_available()
    if problem is None:
        url = fresh_postgres_database(f"toolkit_test_{worker_suffix()}")
        engines["postgresql"] = db.make_engine(url)
        prepare(engines["postgresql"])
    elif IN_CI:
        pytest.exit(f"PostgreSQL is required under CI=true but unavailable: {problem}", returncode=3)
    yield engines
    for engine in engines.values():
        engine.dispose()


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, backend_engines: dict[str, Engine]) -> Engine:
    if request.param not in backend_engines:
        pytest.skip("PostgreSQL is not available (set CI=true to make this a failure)")
    return backend_engines[request.param]


@pytest.fixture
def session(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Session]:
    """A Session inside a transaction that is rolled back after the test. Every other
    Session the code under test opens (request, CLI, job) joins the same transaction."""
    connection = engine.connect()
    outer = connection.begin()
    factory = sessionmaker(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    monkeypatch.setattr(db, "get_sessionmaker", lambda: factory)
    monkeypatch.setattr(db, "get_engine", lambda: engine)
    monkeypatch.setattr(db, "get_async_engine", lambda: None)  # hot paths take the joined sync route
    test_session = factory()
    try:
        yield test_session
    finally:
        test_session.close()
        outer.rollback()
        connection.close()


@pytest.fixture
def dialect(engine: Engine) -> str:
    return engine.dialect.name


@pytest.fixture
def config_dir() -> Path:
    """The shipped config files, which every test runs with (no TOOLKIT_CONFIG_DIR)."""
    return defaults.DEFAULTS_DIR
