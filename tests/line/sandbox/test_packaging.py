"""The sandbox stands alone: its spec copy, its imports and its command."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import time

from fastapi import FastAPI
from linebot.v3.messaging import ApiClient, Configuration, MessagingApi, PushMessageRequest, TextMessage

from tests.cli.helpers import run_cli
from tests.line.sandbox.helpers import USER, http
from tests.processes import ServerThread, free_port
from toolkit.line.sandbox import SandboxStore, create_sandbox_app
from toolkit.line.sandbox.faults import FaultInjector, FaultPlan, parse_plan
from toolkit.settings import REPO_ROOT

SPECS = REPO_ROOT / "specs" / "line-openapi"
# What the sandbox may import from toolkit: no domain package.
ALLOWED = re.compile(r"toolkit(\.(db|settings|kit(\..+)?|line|line\.limits|line\.sandbox(\..+)?))?")


def test_spec_copy_is_unmodified_and_attributed() -> None:
    source = (SPECS / "SOURCE.md").read_text(encoding="utf-8")
    assert "line-openapi" in source and "Apache" in source
    for name in ("messaging-api.yml", "webhook.yml"):
        digest = hashlib.sha256((SPECS / name).read_bytes()).hexdigest()
        assert f"| {name} | `{digest}` |" in source
    assert "Apache License" in (SPECS / "LICENSE").read_text(encoding="utf-8")
    assert "specs/line-openapi/" in (REPO_ROOT / "NOTICE").read_text(encoding="utf-8")


def test_sandbox_imports_no_domain_package() -> None:
    code = ("import json, sys; import toolkit.line.sandbox; "
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'toolkit')))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                       check=True, cwd=REPO_ROOT).stdout)
    assert [m for m in loaded if not ALLOWED.fullmatch(m)] == []


def test_a_seeded_injector_is_reproducible() -> None:
    plan = parse_plan({"429": 0.2, "500": 0.2, "seed": 5})
    first, second = FaultInjector(), FaultInjector()
    draws = [first.draw(plan) for _ in range(200)]
    assert draws == [second.draw(plan) for _ in range(200)]
    assert set(draws) == {"429", "500", None}
    assert FaultInjector().draw(FaultPlan()) is None


def test_cli_runs_the_sandbox_alone() -> None:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "toolkit.cli", "line", "sandbox", "--port", str(port)],
                               cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env={"PATH": "/usr/bin:/bin", "TOOLKIT_DATABASE_URL": "sqlite:///nonexistent/dir/x.db"})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            try:
                if http.get(f"{base}/_messages", timeout=1).status_code == 200:
                    break
            except Exception:  # noqa: BLE001 - not listening yet
                pass
            assert time.monotonic() < deadline, "the sandbox did not start"
            time.sleep(0.1)
        with ApiClient(Configuration(host=base, access_token="any")) as client:
            assert MessagingApi(client).get_bot_info().basic_id == "@sandbox"
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_mounted_under_a_prefix_the_sdk_still_works(store: SandboxStore) -> None:
    parent = FastAPI()
    parent.mount("/sandbox/line", create_sandbox_app(store))
    server = ServerThread(parent).start()
    try:
        base = f"{server.base_url}/sandbox/line"
        with ApiClient(Configuration(host=base, access_token="any")) as client:
            sent = MessagingApi(client).push_message(PushMessageRequest(to=USER, messages=[TextMessage(text="hi")]))
        assert len(sent.sent_messages) == 1
        assert http.get(f"{base}/_messages").json()[0]["to"] == [USER]
        assert not [p for p in parent.openapi()["paths"] if "sandbox" in p or p.startswith("/v2")]
    finally:
        server.stop()


def test_the_standalone_runner_takes_the_quota_and_token_lifetime(monkeypatch) -> None:
    import toolkit.line.sandbox.__main__ as runner

    served = {}
    monkeypatch.setattr(runner.uvicorn, "run", lambda app, **kwargs: served.update(app=app, **kwargs))
    runner.main(["--port", "8123", "--quota", "none", "--reply-token-ttl-s", "300"])

    config = served["app"].state.sandbox.config
    assert (config.quota, config.reply_token_ttl_s, served["port"]) == (None, 300.0, 8123)
    runner.main(["--port", "8124"])
    assert served["app"].state.sandbox.config.quota == runner.DEFAULT_QUOTA


def test_the_cli_takes_the_same_quota_and_token_lifetime(monkeypatch) -> None:
    import toolkit.cli.line as line_cli

    served = {}
    monkeypatch.setattr(line_cli.uvicorn, "run", lambda app, **kwargs: served.update(app=app, **kwargs))
    result = run_cli("line", "sandbox", "--port", "8125", "--quota", "none", "--reply-token-ttl-s", "300")

    assert result.exit_code == 0, result.stderr
    config = served["app"].state.sandbox.config
    assert (config.quota, config.reply_token_ttl_s, served["port"]) == (None, 300.0, 8125)
    assert run_cli("line", "sandbox", "--quota", "1,000").exit_code == 0
    assert served["app"].state.sandbox.config.quota == 1000


def test_the_cli_refuses_a_quota_that_is_not_a_number_in_one_line(monkeypatch) -> None:
    import toolkit.cli.line as line_cli

    monkeypatch.setattr(line_cli.uvicorn, "run", lambda app, **kwargs: None)
    result = run_cli("line", "sandbox", "--quota", "lots")

    assert result.exit_code == 2
    assert result.stderr_lines == ["error: --quota: quota must be a number of messages or none, not 'lots'"]
