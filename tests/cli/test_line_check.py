"""`toolkit line check` against the sandbox standing in for a real channel."""

from __future__ import annotations

import httpx
import pytest
from typer.testing import CliRunner

from tests.processes import ServerThread
from toolkit.app import create_app
from toolkit.cli import app
from toolkit.line.sandbox import MemoryStore, create_sandbox_app
from toolkit.settings import get_settings


@pytest.fixture
def channel(monkeypatch):
    sandbox_app = create_sandbox_app(MemoryStore(), channel_secret="secret")
    server = ServerThread(sandbox_app).start()
    monkeypatch.setenv("TOOLKIT_LINE_API_BASE", server.base_url)
    monkeypatch.setenv("TOOLKIT_LINE_CHANNEL_ACCESS_TOKEN", "token")
    monkeypatch.setenv("TOOLKIT_LINE_CHANNEL_SECRET", "secret")
    monkeypatch.setenv("TOOLKIT_BASE_URL", "https://social.example.com")
    get_settings.cache_clear()
    yield server.base_url
    server.stop()
    get_settings.cache_clear()


def run_check():
    return CliRunner().invoke(app, ["line", "check"])


def test_a_channel_without_a_webhook_url_is_told_what_to_set(channel):
    result = run_check()

    assert result.exit_code == 1
    assert "ok   access token" in result.output
    assert "FAIL webhook URL" in result.output
    assert "https://social.example.com/line/webhook" in result.output


def test_a_wrong_webhook_url_is_reported(channel):
    headers = {"Authorization": "Bearer token"}
    httpx.put(f"{channel}/v2/bot/channel/webhook/endpoint", json={"endpoint": "https://old.example.com/hook"},
              headers=headers).raise_for_status()

    result = run_check()

    assert result.exit_code == 1 and "use https://social.example.com/line/webhook" in result.output


def test_an_unreachable_api_fails_the_token_check(monkeypatch):
    monkeypatch.setenv("TOOLKIT_LINE_API_BASE", "http://127.0.0.1:9")
    monkeypatch.setenv("TOOLKIT_LINE_CHANNEL_ACCESS_TOKEN", "token")
    get_settings.cache_clear()
    try:
        result = run_check()
    finally:
        get_settings.cache_clear()

    assert result.exit_code == 1 and "FAIL access token" in result.output



def test_lines_test_delivery_reaches_our_webhook_and_plain_http_is_flagged(channel, session):
    webhook = ServerThread(create_app()).start()  # our app, verifying with the same secret
    try:
        url = f"{webhook.base_url}/line/webhook"
        httpx.put(f"{channel}/v2/bot/channel/webhook/endpoint", json={"endpoint": url},
                  headers={"Authorization": "Bearer token"}).raise_for_status()
        result = CliRunner().invoke(app, ["line", "check"], env={"TOOLKIT_BASE_URL": webhook.base_url})
    finally:
        webhook.stop()

    assert "ok   test delivery: LINE reached the webhook (200)" in result.output
    assert "ok   use webhook: on" in result.output
    assert "FAIL webhook URL" in result.output and "HTTPS" in result.output  # LINE needs HTTPS
    assert result.exit_code == 1
