from tests.inbox.conftest import line_sandbox, sandbox_server  # noqa: F401 - fixtures
