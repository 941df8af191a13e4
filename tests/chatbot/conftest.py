"""Fixtures of the FAQ matcher tests: pure, no database. The TPE bank's index is built
once per test process (a few seconds) and shared."""

from __future__ import annotations

import pytest

from toolkit.chatbot import Entry, FaqIndex
from toolkit.chatbot.bank import load_entries_jsonl, load_examples, load_tpe_xml
from toolkit.settings import REPO_ROOT, get_settings

DATA = REPO_ROOT / "eval-data"
TPE_XML = DATA / "TPE-FAQ-OD" / "taipei_faq.xml"
QUERIES = DATA / "queries"

THREE = [
    Entry("ship", "運費怎麼計算？滿多少免運？", "單筆訂單滿 NT$990 免運費，未滿收運費 NT$100。", "配送"),
    Entry("return", "退貨要怎麼申請？", "七天鑑賞期內在「我的訂單」點選申請退貨，物流會到府取件。", "退換貨"),
    Entry("points", "會員點數可以怎麼使用？", "每 1 點折抵 1 元，最多折抵訂單金額的 30%。", "會員", ("點數怎麼用",)),
]


@pytest.fixture(scope="session")
def tpe_entries() -> list[Entry]:
    return load_tpe_xml(TPE_XML)


@pytest.fixture(scope="session")
def tpe_index(tpe_entries: list[Entry]) -> FaqIndex:
    return FaqIndex.build(tpe_entries)


@pytest.fixture(scope="session")
def retail_entries() -> list[Entry]:
    return load_entries_jsonl(QUERIES / "retail_bank.jsonl")


@pytest.fixture(scope="session")
def retail_index(retail_entries: list[Entry]) -> FaqIndex:
    return FaqIndex.build(retail_entries, extra_terms=["晴川", "LINE Pay", "超商取貨"])


@pytest.fixture(scope="session")
def three_index() -> FaqIndex:
    return FaqIndex.build(THREE)


def examples(name: str):
    return load_examples(QUERIES / f"{name}.jsonl")


@pytest.fixture
def no_line(monkeypatch):
    """No LINE channel at all: no sandbox, no API base, no access token."""
    for name in ("TOOLKIT_LINE_SANDBOX", "TOOLKIT_LINE_API_BASE", "TOOLKIT_LINE_CHANNEL_ACCESS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
