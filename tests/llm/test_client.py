"""The client against the loopback fake: what it sends is what OpenAI documents, and every
way an answer can go wrong is one LlmUnavailable, within the timeout."""

from __future__ import annotations

import time

import pytest

from tests.llm.fixtures import CHAT_MODEL, EMBEDDING_MODEL
from tests.llm.spec import assert_request_matches
from toolkit.llm.client import (
    CONNECTION, COOLING_DOWN, LLM_REQUESTS, MALFORMED, RATE_LIMITED, SERVER_ERROR, TIMEOUT, LlmClient, LlmConfig,
    LlmNotConfigured, LlmUnavailable, parse_json_object,
)
from toolkit.llm.fake import FakeLlmServer
from toolkit.settings import Settings

TIMEOUT_S = 1.0


def client_for(fake: FakeLlmServer, **kwargs) -> LlmClient:
    return LlmClient(LlmConfig(fake.base_url, CHAT_MODEL, EMBEDDING_MODEL, "sk-test", TIMEOUT_S), **kwargs)


def counted(operation: str, outcome: str) -> float:
    return LLM_REQUESTS.labels(operation, outcome)._value.get()


def test_embeddings_come_back_in_order_and_the_request_is_documented(fake_llm: FakeLlmServer) -> None:
    with client_for(fake_llm) as client:
        vectors = client.embed(["運費怎麼算", "運費多少錢", "退貨"])

    assert len(vectors) == 3 and {len(v) for v in vectors} == {256}
    [request] = fake_llm.state.api_requests("/v1/embeddings")
    assert request.body == {"model": EMBEDDING_MODEL, "input": ["運費怎麼算", "運費多少錢", "退貨"],
                            "encoding_format": "float"}
    assert_request_matches("/embeddings", request.body)


def test_many_texts_go_in_batches(fake_llm: FakeLlmServer) -> None:
    with client_for(fake_llm) as client:
        vectors = client.embed([f"問題 {i}" for i in range(300)])

    assert len(vectors) == 300
    assert [len(r.body["input"]) for r in fake_llm.state.api_requests("/v1/embeddings")] == [128, 128, 44]


def test_chat_and_strict_json(fake_llm: FakeLlmServer) -> None:
    messages = [{"role": "system", "content": "Reply in JSON."},
                {"role": "user", "content": '{"task": "choose_faq", "message": "運費多少", "candidates": '
                                            '[{"id": "1", "question": "運費怎麼計算", "answer": "滿990免運"}]}'}]
    with client_for(fake_llm) as client:
        text = client.chat([{"role": "user", "content": "hello"}])
        data = client.chat_json(messages)

    assert text == "This is the loopback fake LLM."
    assert data == {"choice": "1"}
    plain, strict = fake_llm.state.api_requests("/v1/chat/completions")
    assert "response_format" not in plain.body
    assert strict.body["response_format"] == {"type": "json_object"} and strict.body["temperature"] == 0.0
    for request in (plain, strict):
        assert_request_matches("/chat/completions", request.body)


@pytest.mark.parametrize(("fault", "reason"), [
    ("429", RATE_LIMITED), ("500", SERVER_ERROR), ("timeout", TIMEOUT), ("malformed", MALFORMED), ("junk", MALFORMED),
])
@pytest.mark.parametrize("operation", ["embeddings", "chat"])
def test_every_fault_is_one_exception_within_the_timeout(fake_llm: FakeLlmServer, fault: str, reason: str,
                                                         operation: str) -> None:
    fake_llm.state.script(fault)
    before = counted(operation, reason)
    started = time.monotonic()
    with client_for(fake_llm) as client, pytest.raises(LlmUnavailable) as failure:
        if operation == "embeddings":
            client.embed(["運費"])
        else:
            client.chat([{"role": "user", "content": "hi"}])

    assert failure.value.reason == reason
    assert time.monotonic() - started < TIMEOUT_S + 5.0  # the fake hangs far longer
    assert counted(operation, reason) == before + 1


def test_an_answer_that_is_not_a_json_object_is_malformed(fake_llm: FakeLlmServer) -> None:
    with client_for(fake_llm) as client, pytest.raises(LlmUnavailable) as failure:
        client.chat_json([{"role": "user", "content": "not a task"}])

    assert failure.value.reason == MALFORMED


def test_after_a_429_with_retry_after_calls_fail_fast_until_it_has_passed(fake_llm: FakeLlmServer) -> None:
    fake_llm.state.retry_after_s = 1
    fake_llm.state.script("429")
    with client_for(fake_llm) as client:
        with pytest.raises(LlmUnavailable):
            client.embed(["a"])
        with pytest.raises(LlmUnavailable) as cooling:
            client.embed(["a"])
        assert cooling.value.reason == COOLING_DOWN
        assert len(fake_llm.state.api_requests()) == 1  # the second call never left
        time.sleep(1.05)
        assert client.embed(["a"])


def test_a_batch_client_retries_server_errors_itself(fake_llm: FakeLlmServer) -> None:
    fake_llm.state.script("500", "429")
    with client_for(fake_llm, max_retries=2, cool_down=False) as client:
        assert client.embed(["a"])

    assert [r.fault for r in fake_llm.state.api_requests()] == ["500", "429", None]


def test_a_refused_connection_is_unavailable_too() -> None:
    client = LlmClient(LlmConfig("http://127.0.0.1:9/v1", CHAT_MODEL, EMBEDDING_MODEL, None, TIMEOUT_S))
    with client, pytest.raises(LlmUnavailable) as failure:
        client.embed(["a"])

    assert failure.value.reason == CONNECTION


def test_configured_means_a_base_url_and_a_model() -> None:
    assert LlmConfig.from_settings(Settings(llm_base_url="http://127.0.0.1:1/v1")) is None
    assert LlmConfig.from_settings(Settings(llm_model="gpt-4o-mini")) is None
    config = LlmConfig.from_settings(Settings(llm_base_url="http://h/v1/", llm_model="m", llm_api_key="k"))
    assert config == LlmConfig("http://h/v1", "m", "text-embedding-3-small", "k", 8.0)
    with pytest.raises(LlmNotConfigured):
        LlmClient.from_settings(Settings())


def test_customer_text_is_off_by_default() -> None:
    settings = Settings(llm_base_url="http://h/v1", llm_model="m")

    assert settings.llm_configured and not settings.llm_send_customer_text
    assert not settings.llm_reads_customer_text
    assert Settings(llm_base_url="http://h/v1", llm_model="m", llm_send_customer_text=True).llm_reads_customer_text
    assert not Settings(llm_send_customer_text=True).llm_reads_customer_text


@pytest.mark.parametrize(("text", "expected"), [
    ('{"choice": "2"}', {"choice": "2"}),
    ('```json\n{"choice": "none"}\n```', {"choice": "none"}),
    ('  {"questions": ["a"]}  ', {"questions": ["a"]}),
])
def test_json_objects_are_parsed(text: str, expected: dict) -> None:
    assert parse_json_object(text) == expected


@pytest.mark.parametrize("text", ["2", '["a"]', "the answer is 2", '{"choice": '])
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_json_object(text)
