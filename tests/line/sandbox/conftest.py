"""Fixtures for the LINE sandbox: a real uvicorn server on 127.0.0.1 over each store.

Every store-parametrised test runs on the memory store and on the database store over
SQLite and over PostgreSQL. The database tables are created once per test process with
create_all on a fresh SQLite file and a fresh PostgreSQL database, and emptied per test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from linebot.v3.messaging import ApiClient, Configuration, MessagingApi
from sqlalchemy import Engine

from tests.conftest import IN_CI, fresh_postgres_database, postgres_available, worker_suffix
from tests.processes import ServerThread
from toolkit import db
from toolkit.db import Base
from toolkit.line.sandbox import SANDBOX_TABLES, DbStore, MemoryStore, SandboxStore, create_sandbox_app

STORES = ["memory", "sqlite", "postgresql"]
StoreFactory = Callable[[], SandboxStore]


@pytest.fixture(scope="session")
def sandbox_engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Engine]]:
    engines = {"sqlite": db.make_engine(f"sqlite:///{tmp_path_factory.mktemp('sandbox') / 'sandbox.db'}")}
    problem = postgres_available()
    if problem is None:
        engines["postgresql"] = db.make_engine(fresh_postgres_database(f"toolkit_sandbox_{worker_suffix()}"))
    elif IN_CI:
        pytest.exit(f"PostgreSQL is required under CI=true but unavailable: {problem}", returncode=3)
    for engine in engines.values():
        Base.metadata.create_all(engine, tables=SANDBOX_TABLES)
    yield engines
    for engine in engines.values():
        engine.dispose()


@pytest.fixture(params=STORES)
def store_kind(request: pytest.FixtureRequest, sandbox_engines: dict[str, Engine]) -> str:
    if request.param != "memory" and request.param not in sandbox_engines:
        pytest.skip("PostgreSQL is not available (set CI=true to make this a failure)")
    return request.param


@pytest.fixture
def new_store(store_kind: str, sandbox_engines: dict[str, Engine]) -> Iterator[StoreFactory]:
    """Makes stores of this test's kind over one shared state (for DB stores: one engine
    each, as separate processes would have); the state starts empty."""
    engines: list[Engine] = []

    def make() -> SandboxStore:
        if store_kind == "memory":
            return shared_memory
        engine = db.make_engine(sandbox_engines[store_kind].url.render_as_string(hide_password=False))
        engines.append(engine)
        return DbStore(engine)

    shared_memory = MemoryStore()
    make().reset()
    yield make
    for engine in engines:
        engine.dispose()


@pytest.fixture
def store(new_store: StoreFactory) -> SandboxStore:
    return new_store()


@pytest.fixture
def serve(store: SandboxStore) -> Iterator[Callable[..., str]]:
    """serve(**settings) -> base URL of a sandbox over this test's store."""
    servers: list[ServerThread] = []

    def start(store_: SandboxStore | None = None, **settings: Any) -> str:
        server = ServerThread(create_sandbox_app(store_ or store, **settings)).start()
        servers.append(server)
        return server.base_url

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def line_api() -> Iterator[Callable[[str], MessagingApi]]:
    """line_api(base_url) -> LINE's own SDK client pointed at the sandbox."""
    clients: list[ApiClient] = []

    def make(base_url: str) -> MessagingApi:
        client = ApiClient(Configuration(host=base_url, access_token="x"))
        clients.append(client)
        return MessagingApi(client)

    yield make
    for client in clients:
        client.close()
