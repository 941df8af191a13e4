"""A worker killed mid-burst: `toolkit serve --with-worker` on PostgreSQL restarts it, and
what the dead worker had claimed, handled or was sending is taken over within seconds —
every customer answered once, nobody twice."""

from __future__ import annotations

import os
import signal
import time

import httpx
import pytest

from tests.conftest import IN_CI, postgres_available, worker_suffix
from tests.inbox.factories import event, line_user_id, webhook_body
from tests.processes import children_of, fresh_database, run_toolkit, running_server, toolkit_env
from tests.test_serve import poll
from toolkit.line.webhook import sign

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(postgres_available() is not None and not IN_CI, reason="PostgreSQL not available"),
]
SECRET = "crash-test-secret"
CUSTOMERS = 300
ANSWER_WITHIN_S = 90  # of the kill


def test_a_worker_killed_mid_burst_leaves_nobody_answered_twice_and_almost_nobody_unanswered(
    tmp_path, sandbox_server,
):
    line_url, sandbox = sandbox_server
    sandbox.store.reset()
    url = fresh_database("postgresql", tmp_path, f"toolkit_crash_{worker_suffix()}")
    env = toolkit_env(url, TOOLKIT_LINE_CHANNEL_SECRET=SECRET, TOOLKIT_LINE_API_BASE=line_url,
                      TOOLKIT_LINE_CHANNEL_ACCESS_TOKEN="test-token")
    assert run_toolkit(["db", "upgrade"], env).returncode == 0
    users = [line_user_id() for _ in range(CUSTOMERS)]
    follows = [event("follow", user) for user in users]
    for follow in follows:
        sandbox.register_reply_token(follow["replyToken"], follow["source"]["userId"])

    with running_server(env, "--with-worker") as (base_url, process):
        (first,) = poll(lambda: children_of(process.pid), what="worker child")
        poll(lambda: httpx.get(f"{base_url}/healthz").json()["workers"]["alive"] == 1, what="first heartbeat")
        sandbox.set_faults({"latency_ms": 150})  # sends take a while: the kill lands among them
        with httpx.Client(base_url=base_url, timeout=30) as client:
            for start in range(0, CUSTOMERS, 10):
                body = webhook_body(*follows[start:start + 10])
                answer = client.post("/line/webhook", content=body, headers={"x-line-signature": sign(SECRET, body)})
                assert answer.status_code == 200

        poll(lambda: any(m["accepted"] for m in sandbox.messages()), what="a first answer", timeout=60)
        os.kill(first, signal.SIGKILL)
        killed_at = time.monotonic()
        sandbox.set_faults({})
        answered_at_kill = len(answered(sandbox))

        def everyone_answered() -> bool:
            return len(answered(sandbox)) == CUSTOMERS

        while not everyone_answered() and time.monotonic() - killed_at < ANSWER_WITHIN_S:
            time.sleep(0.25)
        counts = answered(sandbox)

    assert answered_at_kill < CUSTOMERS, "the kill came after the burst was answered: it proves nothing"
    assert max(counts.values()) == 1, "somebody was answered twice"
    assert len(counts) >= 0.98 * CUSTOMERS, f"{CUSTOMERS - len(counts)} of {CUSTOMERS} unanswered 90 s after the kill"


def answered(sandbox) -> dict[str, int]:
    counts: dict[str, int] = {}
    for message in sandbox.messages():
        if message["accepted"]:
            for user in message["to"]:
                counts[user] = counts.get(user, 0) + 1
    return counts
