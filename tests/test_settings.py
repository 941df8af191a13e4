"""Where LINE messages go: an explicit API base wins, then the mounted sandbox, then LINE."""

from __future__ import annotations

from toolkit.settings import LINE_API_BASE, Settings


def test_line_goes_to_line_by_default():
    assert Settings().effective_line_api_base == LINE_API_BASE == "https://api.line.me"


def test_the_sandbox_flag_sends_to_the_mounted_sandbox_of_this_server():
    settings = Settings(line_sandbox=True, base_url="http://127.0.0.1:8123/")

    assert settings.effective_line_api_base == "http://127.0.0.1:8123/sandbox/line"


def test_an_explicit_api_base_always_wins():
    settings = Settings(line_sandbox=True, line_api_base="http://127.0.0.1:9000/")

    assert settings.effective_line_api_base == "http://127.0.0.1:9000"


def test_line_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("TOOLKIT_LINE_SANDBOX", "1")
    monkeypatch.setenv("TOOLKIT_LINE_CHANNEL_SECRET", "abc")

    settings = Settings()

    assert settings.line_sandbox is True
    assert settings.line_channel_secret.get_secret_value() == "abc"
