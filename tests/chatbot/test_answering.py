"""answer(): the lexical match unless customer text may go to a model; then embeddings and
a rerank/verify call check it, against the loopback fake. A failing model always gives
back the lexical match, within the answer's time budget."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.chatbot.factories import make_entry, make_retail_bank
from tests.llm.fixtures import (  # noqa: F401 - fixtures
    EMBEDDING_MODEL, HANG_S, TIGHT_TIMEOUT_S, fake_llm, fake_server, llm_configured, llm_off, llm_on,
    llm_on_tight_budget,
)
from toolkit.chatbot import answering, expand, service
from toolkit.chatbot.answering import (
    CONFIRMED, DECLINED, DISPUTED, FAQ_SEMANTIC, OVERRULED, RESCUED, VETOED, Semantic, combine,
)
from toolkit.chatbot.bank import load_entries_jsonl
from toolkit.chatbot.matcher import Match
from toolkit.chatbot.models import FaqEmbedding
from toolkit.llm.client import LlmClient
from toolkit.llm.fake import FakeLlmServer
from toolkit.settings import REPO_ROOT, get_settings

RETAIL_BANK = REPO_ROOT / "eval-data" / "queries" / "retail_bank.jsonl"
QUERIES = ["運費多少", "我要退貨", "點數怎麼用", "你們有賣點數卡嗎", "今天天氣好嗎", "😀"]
EMBEDDINGS, CHAT = "/v1/embeddings", "/v1/chat/completions"
# A failing model's answer comes within its tight budget plus what a busy machine needs
# around it: far less than the fake's hang, so a wait for the hang fails the test.
BOUND_S = TIGHT_TIMEOUT_S + 5.0
assert BOUND_S < HANG_S / 2


@pytest.fixture(autouse=True)
def fresh_clients() -> Iterator[None]:
    """No client (and no 429 cool-down) carried over from another test."""
    answering.reset_clients()
    yield
    answering.reset_clients()


def counted(outcome: str) -> float:
    return FAQ_SEMANTIC.labels(outcome)._value.get()


def embedded(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(FaqEmbedding).where(FaqEmbedding.model == EMBEDDING_MODEL))


def make_big_retail_bank(session: Session) -> None:
    """The 40-entry retail bank of the query sets, embedded as `toolkit faq embed` does."""
    for entry in load_entries_jsonl(RETAIL_BANK):
        content = service.checked_content(question=entry.question, answer=entry.answer, category=entry.category,
                                          alt_questions=entry.alt_questions)
        service.save_entry(session, key=entry.id, content=content, actor="test")

    @contextmanager
    def scope():
        yield session
        session.flush()

    with LlmClient.from_settings(get_settings()) as client:
        report = expand.embed_all(client, scope)
    assert report.embedded == 40 and not report.failed


# --- off: exactly the lexical match, no network -------------------------------------------

def test_without_an_llm_the_answer_is_the_lexical_match_and_nothing_is_sent(
    session: Session, llm_off: None, fake_llm: FakeLlmServer,
) -> None:
    make_retail_bank(session)

    for query in QUERIES:
        assert answering.answer(session, query) == service.match(session, query)
    assert fake_llm.state.api_requests() == []


def test_with_customer_text_off_nothing_is_sent_even_with_an_llm_configured(
    session: Session, llm_configured: FakeLlmServer,
) -> None:
    make_retail_bank(session)

    for query in QUERIES:
        assert answering.answer(session, query) == service.match(session, query)
    assert llm_configured.state.api_requests() == []
    assert embedded(session) == 0


# --- on: the semantic signals -----------------------------------------------------------

def test_the_model_confirms_a_lexical_answer(session: Session, llm_on: FakeLlmServer) -> None:
    make_retail_bank(session)
    before = counted(CONFIRMED)

    match = answering.answer(session, "運費多少錢")

    lexical = service.match(session, "運費多少錢")
    assert lexical.answered and match.answered and match.entry_id == lexical.entry_id == "ship-fee"
    assert match.score == lexical.score
    assert match.features["semantic"] == 1.0 and match.features["model_agrees"] == 1.0
    assert [r.path for r in llm_on.state.api_requests()] == [EMBEDDINGS, CHAT]
    assert counted(CONFIRMED) == before + 1


def test_entries_are_embedded_once_and_again_only_when_their_questions_change(
    session: Session, llm_on: FakeLlmServer,
) -> None:
    make_retail_bank(session)

    answering.answer(session, "運費多少錢")
    answering.answer(session, "點數怎麼用")
    service.update_entry(session, key="points", actor="test", alt_questions=["點數怎麼用", "點數可以折多少"])
    answering.answer(session, "退貨")

    first, second, third = (r.body["input"] for r in llm_on.state.api_requests(EMBEDDINGS))
    assert first[0] == "運費多少錢" and len(first) == 1 + 3 + 2 + 2  # the query, then every question of the bank
    assert second == ["點數怎麼用"]  # stored: only the query goes
    assert third == ["退貨", "會員點數可以怎麼使用？", "點數怎麼用", "點數可以折多少"]
    assert embedded(session) == 3
    points_id = service.require_entry(session, "points").id
    points = session.scalar(select(FaqEmbedding).where(FaqEmbedding.entry_id == points_id))
    assert points.version == 2 and points.n_vectors == 3 and points.dims == 256


def test_embeddings_and_the_model_rescue_a_paraphrase_the_lexical_path_is_unsure_about(
    session: Session, llm_on: FakeLlmServer,
) -> None:
    make_big_retail_bank(session)
    query = "附近有没有门市"  # Simplified, and none of the entry's words for "where are your stores"
    before = counted(RESCUED)

    lexical = service.match(session, query)
    match = answering.answer(session, query)

    assert not lexical.answered and lexical.top_id == "R32"
    assert match.answered and match.entry_id == "R32"
    assert match.features["embedding_agrees"] == 1.0
    assert counted(RESCUED) == before + 1


def test_the_model_abstaining_blocks_a_wrong_lexical_answer(session: Session, llm_on: FakeLlmServer) -> None:
    make_retail_bank(session)
    query = "你們有賣點數卡嗎"  # selling point cards: not how to use points
    before = counted(VETOED)

    lexical = service.match(session, query)
    match = answering.answer(session, query)

    assert lexical.answered and lexical.entry_id == "points"
    assert not match.answered and match.entry_id is None
    assert match.top_id == "points"  # still the best guess, for the unanswered queue
    assert match.features["model_abstained"] == 1.0
    assert counted(VETOED) == before + 1


def test_without_embeddings_for_a_large_bank_the_rerank_still_checks(
    session: Session, llm_on: FakeLlmServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(answering, "LAZY_EMBED_LIMIT", 2)
    make_retail_bank(session)

    match = answering.answer(session, "你們有賣點數卡嗎")

    assert not match.answered
    [request] = llm_on.state.api_requests(EMBEDDINGS)
    assert request.body["input"] == ["你們有賣點數卡嗎"]  # no entry texts: the bank waits for `faq embed`
    assert match.features["embedding_agrees"] == 0.0
    assert embedded(session) == 0


def test_customer_identifiers_never_reach_the_model(session: Session, llm_on: FakeLlmServer) -> None:
    make_retail_bank(session)
    identifiers = ["0912-345-678", "0912345678", "amy.lin@example.com", "A123456789", "4111 1111 1111 1111"]

    answering.answer(session, "我要退貨 電話0912-345-678 amy.lin@example.com 身分證A123456789 卡號4111 1111 1111 1111")

    bodies = [r.text for r in llm_on.state.api_requests()]
    assert len(bodies) == 2
    for body in bodies:
        assert not [i for i in identifiers if i in body or i.replace(" ", "") in body]
    assert "[PHONE]" in bodies[0] and "[EMAIL]" in bodies[0] and "[ID]" in bodies[0] and "[CARD]" in bodies[0]


# --- failures: the lexical answer, in bounded time ---------------------------------------

@pytest.mark.parametrize("fault", ["429", "500", "timeout", "malformed", "junk"])
@pytest.mark.parametrize("failing", [EMBEDDINGS, CHAT])
def test_a_failing_model_gives_the_lexical_answer_in_bounded_time(
    session: Session, llm_on_tight_budget: FakeLlmServer, fault: str, failing: str,
) -> None:
    llm_on = llm_on_tight_budget
    make_retail_bank(session)
    before = {q: service.match(session, q) for q in ("運費多少錢", "你們有賣點數卡嗎")}

    for query, lexical in before.items():
        answering.reset_clients()  # no cool-down carried from the first query to the second
        llm_on.state.script(*(["ok", fault] if failing == CHAT else [fault]))
        started = time.monotonic()
        match = answering.answer(session, query)
        assert time.monotonic() - started < BOUND_S
        assert match == lexical


def test_a_timeout_spends_the_budget_and_the_second_call_is_not_made(
    session: Session, llm_on_tight_budget: FakeLlmServer,
) -> None:
    llm_on = llm_on_tight_budget
    make_retail_bank(session)
    llm_on.state.script("timeout")

    started = time.monotonic()
    match = answering.answer(session, "運費多少錢")

    assert time.monotonic() - started < BOUND_S
    assert match == service.match(session, "運費多少錢")
    assert [r.path for r in llm_on.state.api_requests()] == [EMBEDDINGS]
    assert embedded(session) == 0  # the lazy embedding rolled back with its savepoint


def test_after_a_429_later_messages_do_not_wait_for_the_model(session: Session, llm_on: FakeLlmServer) -> None:
    make_retail_bank(session)
    llm_on.state.retry_after_s = 30
    llm_on.state.script("429")

    answering.answer(session, "運費多少錢")
    match = answering.answer(session, "我要退貨")

    assert match == service.match(session, "我要退貨")
    assert len(llm_on.state.api_requests()) == 1  # the second message did not call (nor wait for) the model


def test_whatever_the_model_does_every_message_gets_an_answer_or_a_handoff(
    session: Session, llm_on_tight_budget: FakeLlmServer,
) -> None:
    llm_on = llm_on_tight_budget
    make_retail_bank(session)
    llm_on.state.hang_s = 3
    llm_on.state.set_rates({"500": 0.2, "malformed": 0.2, "junk": 0.2, "timeout": 0.05}, seed=7)

    outcomes = []
    for i in range(12):
        query = QUERIES[i % len(QUERIES)]
        started = time.monotonic()
        match = answering.answer(session, query)
        assert time.monotonic() - started < BOUND_S
        lexical = service.match(session, query)
        assert match == lexical or match.features["semantic"] == 1.0
        outcomes.append(match == lexical)
    assert True in outcomes


def test_a_message_the_lexical_path_finds_nothing_for_is_still_checked(
    session: Session, llm_on: FakeLlmServer,
) -> None:
    make_retail_bank(session)
    query = "hello bot"

    assert not any(score for _, score in service.match(session, query).candidates)
    match = answering.answer(session, query)

    assert not match.answered and match.features["semantic"] == 1.0
    assert [r.path for r in llm_on.state.api_requests()] == [EMBEDDINGS, CHAT]


def test_an_empty_bank_or_an_empty_message_sends_nothing(session: Session, llm_on: FakeLlmServer) -> None:
    assert answering.answer(session, "運費多少") == service.match(session, "運費多少")
    make_entry(session, key="only", question="運費怎麼算？", answer="滿990免運。")
    assert answering.answer(session, "😀😀") == service.match(session, "😀😀")

    assert llm_on.state.api_requests() == []


# --- the decision table -----------------------------------------------------------------

def lexical_match(answered: bool) -> Match:
    return Match("A" if answered else None, 0.9 if answered else 0.3, answered, [("A", 1.0), ("B", 0.6)],
                 {"word_rel": 0.5})


@pytest.mark.parametrize(("answered", "pick", "embedding_top", "outcome", "entry"), [
    (True, "A", "A", CONFIRMED, "A"),
    (True, "A", None, CONFIRMED, "A"),
    (True, None, "A", VETOED, None),
    (True, "B", "B", OVERRULED, "B"),
    (True, "B", "A", DISPUTED, None),
    (True, "B", None, DISPUTED, None),
    (False, "B", "B", RESCUED, "B"),
    (False, "A", "A", RESCUED, "A"),
    (False, "A", "B", DECLINED, None),
    (False, "A", None, DECLINED, None),
    (False, None, "A", DECLINED, None),
])
def test_the_decision_table(answered: bool, pick: str | None, embedding_top: str | None, outcome: str,
                            entry: str | None) -> None:
    lexical = lexical_match(answered)
    semantic = Semantic(("A", "B", "C"), pick, embedding_top, {"A": 0.8, "B": 0.7, "C": 0.1})

    got, match = combine(lexical, semantic)

    assert (got, match.entry_id, match.answered) == (outcome, entry, entry is not None)
    assert match.score == lexical.score
    assert [key for key, _ in match.candidates][0] == (entry or "A")
    assert {key for key, _ in match.candidates} == {"A", "B", "C"}
