"""When customer text goes to a model, the privacy notice of the welcome names who
processes it (個資法 Art. 8/21, GDPR Art. 13 and Chapter V); otherwise it says nothing new."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from tests.inbox.factories import event, line_user_id, store
from toolkit.inbox import service
from toolkit.llm.notice import processor_notice
from toolkit import defaults
from toolkit.settings import Settings, get_settings

CONFIG = service.load_channel_config(defaults.path("line.yaml"))
PROCESSOR = "Example AI Ltd. (Ireland)"


def on(**extra) -> Settings:
    return Settings(llm_base_url="http://h/v1", llm_model="m", llm_send_customer_text=True,
                    llm_processor_name=PROCESSOR, **extra)


def test_the_sentence_names_the_processor_in_the_contact_language() -> None:
    zh = processor_notice(on(), "zh-TW")
    en = processor_notice(on(), "en-US")

    assert PROCESSOR in zh and "境外" in zh and "遮蔽" in zh
    assert PROCESSOR in en and en.startswith(" ") and "outside your country" in en
    assert processor_notice(on(), None) == zh


@pytest.mark.parametrize("settings", [
    Settings(),
    Settings(llm_base_url="http://h/v1", llm_model="m"),  # configured, customer text not sent
    Settings(llm_send_customer_text=True),  # nothing configured to send it to
])
def test_nothing_is_said_when_nothing_is_sent(settings: Settings) -> None:
    assert processor_notice(settings, "zh-TW") == processor_notice(settings, "en") == ""


def welcome(session: Session) -> str:
    (row,) = store(session, event("follow", line_user_id()))
    service.handle(session, event_id=row.id, config=CONFIG)
    (message,) = row.replies["messages"]
    return message["text"]


def test_the_welcome_names_the_processor_only_when_customer_text_is_sent(
    session: Session, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TOOLKIT_LLM_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("TOOLKIT_LLM_MODEL", "m")
    monkeypatch.setenv("TOOLKIT_LLM_PROCESSOR_NAME", PROCESSOR)
    get_settings.cache_clear()
    try:
        assert PROCESSOR not in welcome(session)
        monkeypatch.setenv("TOOLKIT_LLM_SEND_CUSTOMER_TEXT", "true")
        get_settings.cache_clear()
        text = welcome(session)
    finally:
        get_settings.cache_clear()

    assert f"處理，資料可能傳輸至境外。（告知版本" in text and PROCESSOR in text
