"""The loopback OpenAI-compatible fake, served once per test process, and settings that
point the product at it. Test modules outside tests/llm import the fixtures from here."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from toolkit.llm.fake import FakeLlmServer
from toolkit.settings import get_settings

CHAT_MODEL = "fake-chat"
EMBEDDING_MODEL = "fake-embed"
# The answer's whole budget: generous where a test wants the model's answer, so that a busy
# machine never turns it into a timeout; tight where a test proves failures stay bounded.
# The fake's "timeout" hangs HANG_S, far past either.
TIMEOUT_S = 20.0
TIGHT_TIMEOUT_S = 1.5
HANG_S = 60.0


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeLlmServer]:
    with FakeLlmServer() as server:
        yield server


@pytest.fixture
def fake_llm(fake_server: FakeLlmServer) -> Iterator[FakeLlmServer]:
    """The fake with no recorded requests and no faults."""
    fake_server.state.clear()
    fake_server.state.hang_s = HANG_S
    fake_server.state.retry_after_s = 1
    yield fake_server
    fake_server.state.clear()


def _point_at(monkeypatch: pytest.MonkeyPatch, fake: FakeLlmServer, *, send_customer_text: bool,
              timeout_s: float = TIMEOUT_S) -> None:
    monkeypatch.setenv("TOOLKIT_LLM_BASE_URL", fake.base_url)
    monkeypatch.setenv("TOOLKIT_LLM_MODEL", CHAT_MODEL)
    monkeypatch.setenv("TOOLKIT_LLM_EMBEDDING_MODEL", EMBEDDING_MODEL)
    monkeypatch.setenv("TOOLKIT_LLM_TIMEOUT_S", str(timeout_s))
    monkeypatch.setenv("TOOLKIT_LLM_SEND_CUSTOMER_TEXT", "true" if send_customer_text else "false")
    get_settings.cache_clear()


@pytest.fixture
def llm_on(fake_llm: FakeLlmServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLlmServer]:
    """An LLM configured (the fake) and customer text allowed to go to it."""
    _point_at(monkeypatch, fake_llm, send_customer_text=True)
    yield fake_llm
    get_settings.cache_clear()


@pytest.fixture
def llm_on_tight_budget(fake_llm: FakeLlmServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLlmServer]:
    """As llm_on, with an answer's budget of TIGHT_TIMEOUT_S: for tests of failing models."""
    _point_at(monkeypatch, fake_llm, send_customer_text=True, timeout_s=TIGHT_TIMEOUT_S)
    yield fake_llm
    get_settings.cache_clear()


@pytest.fixture
def llm_configured(fake_llm: FakeLlmServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLlmServer]:
    """An LLM configured (the fake), customer text not allowed (the default)."""
    _point_at(monkeypatch, fake_llm, send_customer_text=False)
    yield fake_llm
    get_settings.cache_clear()


@pytest.fixture
def llm_off(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No LLM configured, whatever the environment running the tests says."""
    for name in ("BASE_URL", "MODEL", "API_KEY", "SEND_CUSTOMER_TEXT"):
        monkeypatch.delenv(f"TOOLKIT_LLM_{name}", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
