"""`toolkit faq expand` and `toolkit faq embed` against the loopback fake: generated
questions are stored apart, as a new version by the model, deduplicated, counted apart,
and then help matching; a failing entry is reported and skipped."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.chatbot.factories import make_entry, make_retail_bank
from tests.cli.helpers import run_cli
from tests.llm.fixtures import (  # noqa: F401 - fixtures
    CHAT_MODEL, EMBEDDING_MODEL, fake_llm, fake_server, llm_configured, llm_off, llm_on,
)
from toolkit.chatbot import expand, service
from toolkit.chatbot.models import FaqEmbedding
from toolkit.llm.client import MALFORMED, LlmClient, LlmUnavailable
from toolkit.llm.fake import FakeLlmServer
from toolkit.settings import get_settings

CHAT = "/v1/chat/completions"


@pytest.fixture
def scope(session: Session):
    """A unit of work on the test session (as toolkit.db.session_scope, which joins it too)."""
    @contextmanager
    def unit() -> Iterator[Session]:
        yield session
        session.flush()

    return unit


@pytest.fixture
def client(llm_configured: FakeLlmServer) -> Iterator[LlmClient]:
    with LlmClient.from_settings(get_settings()) as llm:
        yield llm


def tasks(fake: FakeLlmServer) -> list[dict]:
    return [json.loads(r.body["messages"][-1]["content"]) for r in fake.state.api_requests(CHAT)]


def test_generated_questions_are_a_new_version_by_the_model_and_counted_apart(
    session: Session, client: LlmClient, scope, llm_configured: FakeLlmServer,
) -> None:
    make_retail_bank(session)
    before = service.counts(session)

    report = expand.expand_all(client, scope, per_entry=3)

    assert report.as_dict() == {"expanded": 3, "questions_added": 9, "unchanged": 0, "skipped": 0, "failed": 0}
    entry = service.require_entry(session, "ship-fee")
    assert entry.alt_questions == ["運費多少", "免運門檻"]  # staff's alternatives untouched
    assert len(entry.generated_questions) == 3 and entry.version == 2
    latest = service.entry_versions(session, "ship-fee")[0]
    assert (latest.changed_by, latest.note) == (f"llm:{CHAT_MODEL}", "generated alternatives")
    assert latest.content["generated_questions"] == entry.generated_questions
    after = service.counts(session)
    assert after["generated_questions"] == before["generated_questions"] + 9
    assert after["alt_questions"] == before["alt_questions"]


def test_only_entry_texts_are_sent_with_the_language_and_what_to_avoid(
    session: Session, client: LlmClient, scope, llm_configured: FakeLlmServer,
) -> None:
    make_entry(session, key="zh", question="運費怎麼計算？", answer="滿990免運。", alt_questions=["運費多少"])
    make_entry(session, key="en", question="How do I return an item?", answer="Within 7 days.", locale="en")

    expand.expand_all(client, scope, per_entry=2)

    en, zh = tasks(llm_configured)
    assert (en["language"], en["question"], en["count"]) == ("en", "How do I return an item?", 2)
    assert (zh["language"], zh["avoid"]) == ("zh-TW", ["運費怎麼計算？", "運費多少"])
    english = service.require_entry(session, "en").generated_questions
    assert len(english) == 2 and all(q.isascii() for q in english)


def test_running_again_tops_up_and_skips_entries_that_have_enough(
    session: Session, client: LlmClient, scope, llm_configured: FakeLlmServer,
) -> None:
    make_retail_bank(session)
    expand.expand_all(client, scope, per_entry=2, limit=2)
    assert len(llm_configured.state.api_requests(CHAT)) == 2

    report = expand.expand_all(client, scope, per_entry=2)

    assert (report.skipped, report.expanded) == (2, 1)
    assert all(len(e.generated_questions) == 2 for e in service.active_entries(session))


def test_generated_questions_then_help_the_lexical_match(
    session: Session, client: LlmClient, scope, llm_configured: FakeLlmServer,
) -> None:
    make_retail_bank(session)
    query = "最多折抵多少"  # the points entry's answer says it; its questions do not
    assert not service.match(session, query).answered

    expand.expand_all(client, scope, per_entry=5)

    match = service.match(session, query)
    assert match.answered and match.entry_id == "points"


def test_a_failing_entry_is_reported_and_the_others_are_stored(
    session: Session, client: LlmClient, scope, llm_configured: FakeLlmServer,
) -> None:
    make_retail_bank(session)  # drafted in key order: points, return, ship-fee
    llm_configured.state.script("ok", "500", "ok")
    seen: list[tuple[str, int | None]] = []

    report = expand.expand_all(client, scope, per_entry=2, on_entry=lambda key, added: seen.append((key, added)))

    assert [key for key, _ in report.failed] == ["return"] and "server_error" in report.failed[0][1]
    assert seen == [("points", 2), ("return", None), ("ship-fee", 2)]
    assert service.require_entry(session, "return").generated_questions == []
    assert len(service.require_entry(session, "ship-fee").generated_questions) == 2


def test_what_the_model_writes_is_cleaned_before_it_is_kept() -> None:
    existing = ("運費怎麼計算？", "免運門檻")

    kept = expand.new_questions(
        ["运费怎么计算", "運費 怎麼 計算!!", "免運門檻？", "  運費要多少  ", 42, "", "運費要多少", "x" * 200, "寄到外島運費"],
        existing, 5,
    )

    assert kept == ["運費要多少", "寄到外島運費"]
    assert expand.new_questions(["a", "b", "c"], (), 2) == ["a", "b"]
    with pytest.raises(LlmUnavailable) as failure:
        expand.new_questions("a, b", (), 2)
    assert failure.value.reason == MALFORMED


def test_embed_stores_what_is_missing_and_only_that(
    session: Session, client: LlmClient, scope, llm_configured: FakeLlmServer,
) -> None:
    make_retail_bank(session)

    first = expand.embed_all(client, scope)
    second = expand.embed_all(client, scope)
    service.update_entry(session, key="return", actor="test", alt_questions=["我要退貨", "東西可以退嗎"])
    third = expand.embed_all(client, scope)

    assert (first.embedded, second.embedded, third.embedded) == (3, 0, 1)
    assert (second.already, third.already) == (3, 2)
    rows = session.scalar(select(func.count()).select_from(FaqEmbedding).where(FaqEmbedding.model == EMBEDDING_MODEL))
    assert rows == 3


# --- the commands -----------------------------------------------------------------------

def test_expand_command(session: Session, llm_configured: FakeLlmServer) -> None:
    make_retail_bank(session)

    result = run_cli("faq", "expand", "--per-entry", "2")

    assert result.exit_code == 0, result
    assert "3 expanded, 6 questions added" in result.stderr
    assert service.counts(session)["generated_questions"] == 6


def test_expand_command_exits_1_when_an_entry_failed_and_keeps_the_rest(
    session: Session, llm_configured: FakeLlmServer,
) -> None:
    make_retail_bank(session)
    llm_configured.state.script("ok", "malformed", "ok")  # a broken answer is not retried

    result = run_cli("faq", "expand", "--per-entry", "2")

    assert result.exit_code == 1, result
    assert any(line.startswith("return: failed: LLM unavailable (malformed)") for line in result.stderr_lines)
    assert service.counts(session)["generated_questions"] == 4


def test_expand_and_embed_commands_exit_2_without_an_llm(session: Session, llm_off: None) -> None:
    make_retail_bank(session)

    for command in ("expand", "embed"):
        result = run_cli("faq", command)
        assert result.exit_code == 2, result
        assert result.stderr_lines == ["error: no LLM is configured: set TOOLKIT_LLM_BASE_URL and TOOLKIT_LLM_MODEL"]
    assert service.counts(session)["generated_questions"] == 0


def test_embed_command(session: Session, llm_configured: FakeLlmServer) -> None:
    make_retail_bank(session)

    result = run_cli("faq", "embed")

    assert result.exit_code == 0, result
    assert "3 embedded, 0 already embedded, 0 failed" in result.stderr
