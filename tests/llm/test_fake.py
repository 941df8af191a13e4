"""The loopback fake answers in OpenAI's documented shapes, deterministically, records what
it gets, injects the faults it is told to, and stands alone (no domain, its own command)."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest

from tests.llm.spec import SPEC_DIR, assert_response_matches
from tests.processes import free_port
from toolkit.llm.fake import FakeLlmServer, FakeState, embed_text, paraphrase
from toolkit.settings import REPO_ROOT

CHOOSE = {"task": "choose_faq", "message": "運費要多少錢",
          "candidates": [{"id": "1", "question": "退貨要怎麼申請？", "answer": "七天內"},
                         {"id": "2", "question": "運費怎麼計算？", "other_questions": ["運費多少"], "answer": "滿990免運"}]}


def post(fake: FakeLlmServer, path: str, body: dict) -> httpx.Response:
    return httpx.post(fake.url + path, json=body, timeout=5)


def chat_body(content: str, **extra) -> dict:
    return {"model": "m", "messages": [{"role": "user", "content": content}], **extra}


def test_embeddings_match_the_spec(fake_llm: FakeLlmServer) -> None:
    response = post(fake_llm, "/v1/embeddings", {"model": "m", "input": ["運費", "退貨"]})

    assert response.status_code == 200
    assert_response_matches("/embeddings", 200, response.json())
    assert [d["index"] for d in response.json()["data"]] == [0, 1]


def test_chat_completions_match_the_spec(fake_llm: FakeLlmServer) -> None:
    response = post(fake_llm, "/v1/chat/completions", chat_body(json.dumps(CHOOSE, ensure_ascii=False)))

    assert response.status_code == 200
    assert_response_matches("/chat/completions", 200, response.json())
    assert json.loads(response.json()["choices"][0]["message"]["content"]) == {"choice": "2"}


def test_streamed_chunks_match_the_spec(fake_llm: FakeLlmServer) -> None:
    response = post(fake_llm, "/v1/chat/completions", chat_body("hello", stream=True))

    events = [line.removeprefix("data: ") for line in response.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    for chunk in chunks:
        assert_response_matches("/chat/completions", 200, chunk, media="text/event-stream")
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "This is the loopback fake LLM."


def test_a_429_is_documented_and_says_when_to_retry(fake_llm: FakeLlmServer) -> None:
    fake_llm.state.script("429")

    response = post(fake_llm, "/v1/embeddings", {"model": "m", "input": "x"})

    assert response.status_code == 429 and response.headers["retry-after"] == "1"
    assert_response_matches("/embeddings", 429, response.json())


def test_malformed_and_junk_answers(fake_llm: FakeLlmServer) -> None:
    fake_llm.state.script("malformed", "junk")

    broken = post(fake_llm, "/v1/chat/completions", chat_body("x"))
    junk = post(fake_llm, "/v1/chat/completions", chat_body("x"))

    assert broken.status_code == 200 and broken.headers["content-type"] == "application/json"
    with pytest.raises(ValueError):
        broken.json()
    with pytest.raises(AssertionError):
        assert_response_matches("/chat/completions", 200, junk.json())


def test_bad_requests_are_refused_like_openai_does(fake_llm: FakeLlmServer) -> None:
    assert post(fake_llm, "/v1/embeddings", {"model": "m", "input": [""]}).status_code == 400
    assert post(fake_llm, "/v1/chat/completions", {"model": "m", "messages": []}).status_code == 400


def test_embeddings_are_deterministic_unit_vectors_close_for_shared_characters() -> None:
    a, b, c = (np.array(embed_text(t)) for t in ("運費怎麼計算", "運費要怎麼算", "會員點數"))

    assert embed_text("運費怎麼計算") == list(a)
    assert np.isclose(np.linalg.norm(a), 1.0, atol=1e-5)
    assert a @ b > 0.4 > a @ c
    assert embed_text("運費怎麼計算？") == embed_text("运费怎么计算")  # punctuation and script normalised


def test_paraphrases_are_new_and_in_the_entry_language() -> None:
    zh = paraphrase("運費怎麼計算？", "單筆訂單滿 NT$990 免運費。", "zh-TW", 4, ["請問運費怎麼計算"])
    en = paraphrase("How do I return an item?", "Within 7 days.", "en", 3, [])

    assert len(zh) == 4 and "請問運費怎麼計算" not in zh and all(re.search(r"[\u4e00-\u9fff]", q) for q in zh)
    assert len(en) == 3 and all(q.isascii() for q in en)


def test_control_endpoints_record_and_inject(fake_llm: FakeLlmServer) -> None:
    assert httpx.post(fake_llm.url + "/_faults", json={"script": ["500"]}).status_code == 200
    assert post(fake_llm, "/v1/embeddings", {"model": "m", "input": "x"}).status_code == 500

    recorded = httpx.get(fake_llm.url + "/_requests").json()
    assert [(r["path"], r["body"]["input"], r["fault"]) for r in recorded] == [("/v1/embeddings", "x", "500")]
    assert httpx.post(fake_llm.url + "/_faults", json={"script": ["boom"]}).status_code == 400
    assert httpx.delete(fake_llm.url + "/_requests").status_code == 204
    assert httpx.get(fake_llm.url + "/_requests").json() == []


def test_seeded_fault_rates_are_reproducible() -> None:
    def draws(seed: int) -> list[str | None]:
        state = FakeState()
        state.set_rates({"429": 0.2, "500": 0.1}, seed=seed)
        return [state.record("/v1/embeddings", {}).fault for _ in range(200)]

    first = draws(3)
    assert first == draws(3) != draws(4)
    assert set(first) == {"429", "500", None}
    with pytest.raises(ValueError):
        FakeState().set_rates({"429": 0.8, "500": 0.5})


def test_spec_copy_is_attributed() -> None:
    source = (SPEC_DIR / "SOURCE.md").read_text(encoding="utf-8")
    digest = hashlib.sha256((SPEC_DIR / "openapi-subset.yaml").read_bytes()).hexdigest()
    assert f"| openapi-subset.yaml | `{digest}` |" in source
    assert "openai-openapi" in source and "MIT" in source
    assert "MIT License" in (SPEC_DIR / "LICENSE").read_text(encoding="utf-8")
    assert "specs/openai-openapi/" in (REPO_ROOT / "NOTICE").read_text(encoding="utf-8")


def test_the_llm_adapter_imports_no_domain() -> None:
    code = ("import json, sys; import toolkit.llm.client, toolkit.llm.masking, toolkit.llm.notice, toolkit.llm.fake; "
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'toolkit')))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                       cwd=REPO_ROOT).stdout)
    allowed = re.compile(r"toolkit(\.(settings|kit(\..+)?|llm(\..+)?))?")
    assert [m for m in loaded if not allowed.fullmatch(m)] == []


def test_cli_runs_the_fake_alone() -> None:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "toolkit.cli", "llm", "fake", "--port", str(port)],
                               cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env={"PATH": "/usr/bin:/bin", "TOOLKIT_DATABASE_URL": "sqlite:///nonexistent/dir/x.db"})
    try:
        for _ in range(100):
            try:
                response = httpx.post(f"http://127.0.0.1:{port}/v1/embeddings", json={"model": "m", "input": "hi"})
                break
            except httpx.TransportError:
                if process.poll() is not None:
                    pytest.fail(f"toolkit llm fake exited: {process.stderr.read()}")
                time.sleep(0.1)
        else:
            pytest.fail("toolkit llm fake did not answer")
        assert response.status_code == 200 and len(response.json()["data"][0]["embedding"]) == 256
    finally:
        process.terminate()
        process.wait(timeout=10)
