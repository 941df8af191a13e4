from tests.llm.fixtures import fake_llm, fake_server, llm_configured, llm_off, llm_on  # noqa: F401
