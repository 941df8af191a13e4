"""The privacy notice's sentence about the model that reads customer messages.

When customer text goes to a model (llm_send_customer_text), the person must be told who
processes it and that it may leave the country: 個資法 Art. 8 (what is collected, for what,
by whom) and Art. 21 (international transfers), GDPR Art. 13(1)(e)-(f) and Chapter V. The
welcome and the opt-in confirmation append this sentence to their notice; it is empty when
nothing is sent.
"""

from __future__ import annotations

from toolkit.settings import Settings

PROCESSOR_NOTICE = {
    "zh-TW": "為了回答您的問題，您傳來的訊息會先遮蔽電話、電子郵件與身分證號，再交由{processor}處理，資料可能傳輸至境外。",
    "en": ("To answer your questions, your messages are sent to {processor} for processing, with phone numbers, "
           "e-mail addresses and ID numbers masked first; this may transfer them outside your country."),
}


def processor_notice(settings: Settings, locale: str | None) -> str:
    """The sentence to append to a privacy notice (with its leading space in English), or ""."""
    if not settings.llm_reads_customer_text:
        return ""
    english = (locale or "").lower().startswith("en")
    sentence = PROCESSOR_NOTICE["en" if english else "zh-TW"].format(processor=settings.llm_processor_name)
    return " " + sentence if english else sentence
