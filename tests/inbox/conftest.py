"""A LINE sandbox (memory store) served on loopback for the inbox's sending tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers import api_client
from tests.processes import ServerThread
from toolkit.kit import secrets
from toolkit.line.sandbox import MemoryStore, Sandbox, create_sandbox_app
from toolkit.settings import get_settings


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[tuple[str, Sandbox]]:
    app = create_sandbox_app(MemoryStore())
    server = ServerThread(app).start()
    yield server.base_url, app.state.sandbox
    server.stop()


@pytest.fixture
def line_sandbox(sandbox_server, monkeypatch) -> Iterator[Sandbox]:
    """Point the product's LINE client at the sandbox; the sandbox starts empty."""
    base_url, sandbox = sandbox_server
    sandbox.store.reset()
    monkeypatch.setenv("TOOLKIT_LINE_API_BASE", base_url)
    monkeypatch.setenv("TOOLKIT_LINE_CHANNEL_ACCESS_TOKEN", "test-token")
    get_settings.cache_clear()
    yield sandbox
    get_settings.cache_clear()


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    # Set up before monkeypatch, so torn down after it has restored the environment.
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def client(session):
    """The real app, anonymous: what LINE's webhook calls are."""
    return api_client(session, roles=None)


@pytest.fixture
def secret(session) -> str:
    """The channel secret the app checks webhook signatures with."""
    return secrets.get_secret(session, secrets.LINE_CHANNEL_SECRET)
