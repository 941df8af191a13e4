"""Where LINE messages go: an explicit API base wins, then the mounted sandbox, then LINE.
Where the settings file and the brand's config dir come from."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

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


def test_no_config_dir_means_the_packaged_defaults(monkeypatch):
    monkeypatch.delenv("TOOLKIT_CONFIG_DIR", raising=False)

    assert Settings().config_dir is None


def test_a_config_dir_that_is_not_a_directory_is_refused(tmp_path):
    with pytest.raises(ValidationError, match="is not a directory"):
        Settings(config_dir=tmp_path / "typo")


def test_the_settings_file_is_toolkit_yaml_in_the_config_dir(monkeypatch, tmp_path):
    (tmp_path / "toolkit.yaml").write_text("base_url: http://brand.example\n", encoding="utf-8")
    monkeypatch.delenv("TOOLKIT_CONFIG_FILE", raising=False)
    monkeypatch.setenv("TOOLKIT_CONFIG_DIR", str(tmp_path))

    settings = Settings()

    assert settings.config_dir == tmp_path
    assert settings.base_url == "http://brand.example"


def test_an_explicit_settings_file_wins_over_the_config_dir(monkeypatch, tmp_path):
    (tmp_path / "toolkit.yaml").write_text("base_url: http://dir.example\n", encoding="utf-8")
    (tmp_path / "other.yaml").write_text("base_url: http://file.example\n", encoding="utf-8")
    monkeypatch.setenv("TOOLKIT_CONFIG_DIR", str(tmp_path))
    monkeypatch.setenv("TOOLKIT_CONFIG_FILE", str(tmp_path / "other.yaml"))

    assert Settings().base_url == "http://file.example"
