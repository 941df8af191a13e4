"""`toolkit llm check`: one embedding and one chat completion from the configured endpoint."""

from __future__ import annotations

from tests.cli.helpers import run_cli
from toolkit.llm.fake import FakeLlmServer


def test_check_says_what_works(llm_configured: FakeLlmServer) -> None:
    result = run_cli("llm", "check")

    assert result.exit_code == 0, result
    assert "ok   embeddings: 256 dimensions" in result.stdout and "ok   chat:" in result.stdout
    assert "customer text is not sent" in result.stdout


def test_check_exits_1_when_a_call_fails(llm_on: FakeLlmServer) -> None:
    llm_on.state.script("500")

    result = run_cli("llm", "check")

    assert result.exit_code == 1, result
    assert "FAIL embeddings: LLM unavailable (server_error)" in result.stdout
    assert "masked customer text is sent" in result.stdout


def test_check_exits_2_without_an_llm(llm_off: None) -> None:
    result = run_cli("llm", "check")

    assert result.exit_code == 2
    assert result.stderr_lines == ["error: no LLM is configured: set TOOLKIT_LLM_BASE_URL and TOOLKIT_LLM_MODEL"]
