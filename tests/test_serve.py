"""`toolkit serve` as a real process: starts with only a database URL, stops on SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.conftest import IN_CI, postgres_available, worker_suffix
from tests.inbox.factories import event, line_user_id, webhook_body
from tests.processes import alive, children_of, fresh_database, run_toolkit, running_server, toolkit_env
from toolkit.line.webhook import sign

pytestmark = pytest.mark.slow
SECRET = "serve-test-secret"


def stop_and_time(process) -> float:
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=15)
    return time.monotonic() - started


def test_sqlite_serve_runs_the_worker_inside_and_stops_on_sigterm(tmp_path):
    env = toolkit_env(fresh_database("sqlite", tmp_path, "serve"))
    assert run_toolkit(["db", "upgrade"], env).returncode == 0

    with running_server(env) as (base_url, process):
        assert httpx.get(f"{base_url}/login").status_code == 200
        assert children_of(process.pid) == []  # embedded: the worker is a thread
        assert stop_and_time(process) < 10


def login_cookie(base_url: str, email: str, password: str) -> str:
    with httpx.Client(base_url=base_url) as client:
        form = client.get("/login").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
        response = client.post("/login", data={"csrf_token": csrf, "email": email, "password": password})
        assert response.status_code == 303
        return client.cookies["toolkit_session"]


def test_session_key_is_generated_once_and_survives_a_restart(tmp_path):
    """With only TOOLKIT_DATABASE_URL set, the signing key is made once and persisted:
    a login from one server process is still valid in the next one."""
    env = toolkit_env(fresh_database("sqlite", tmp_path, "keys"))
    run_toolkit(["db", "upgrade"], env)
    created = run_toolkit(["users", "create", "--email", "a@b.example", "--role", "admin", "--password-stdin"],
                          env, input="long enough password\n")
    assert created.returncode == 0, created.stderr

    with running_server(env) as (base_url, _process):
        cookie = login_cookie(base_url, "a@b.example", "long enough password")
    with running_server(env) as (base_url, _process):
        home = httpx.get(f"{base_url}/", cookies={"toolkit_session": cookie})

    assert home.status_code == 303 and home.headers["location"] != "/login"


@pytest.mark.skipif(postgres_available() is not None and not IN_CI, reason="PostgreSQL not available")
def test_postgres_serve_with_worker_stops_both_on_sigterm(tmp_path):
    env = toolkit_env(fresh_database("postgresql", tmp_path, f"toolkit_serve_{worker_suffix()}"))
    assert run_toolkit(["db", "upgrade"], env).returncode == 0

    with running_server(env, "--with-worker") as (_base_url, process):
        deadline = time.monotonic() + 10
        while not children_of(process.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        workers = children_of(process.pid)
        assert workers, "serve --with-worker started no worker process"
        assert stop_and_time(process) < 10
        assert not any(alive(pid) for pid in workers)


def poll(condition, *, timeout: float = 60, what: str = "condition"):
    """The condition's first truthy value within a generous deadline (no assumption about
    how fast the machine is)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"no {what} within {timeout} s")


def is_toolkit_worker(pid: int) -> bool:
    cmdline = Path(f"/proc/{pid}/cmdline")
    return cmdline.exists() and cmdline.read_bytes().split(b"\0")[-3:-1] == [b"toolkit.cli", b"worker"]


@pytest.mark.skipif(postgres_available() is not None and not IN_CI, reason="PostgreSQL not available")
def test_a_killed_worker_child_is_reaped_restarted_and_handles_new_events(tmp_path):
    url = fresh_database("postgresql", tmp_path, f"toolkit_respawn_{worker_suffix()}")
    env = toolkit_env(url, TOOLKIT_LINE_CHANNEL_SECRET=SECRET)
    assert run_toolkit(["db", "upgrade"], env).returncode == 0
    engine = create_engine(url)

    with running_server(env, "--with-worker") as (base_url, process):
        (first,) = poll(lambda: children_of(process.pid), what="worker child")
        poll(lambda: httpx.get(f"{base_url}/healthz").json()["workers"]["alive"] == 1, what="first heartbeat")

        os.kill(first, signal.SIGKILL)
        (second,) = poll(lambda: [p for p in children_of(process.pid) if p != first], what="restarted child")
        follow = event("follow", line_user_id())
        body = webhook_body(follow)
        answer = httpx.post(f"{base_url}/line/webhook", content=body, headers={"x-line-signature": sign(SECRET, body)})

        assert answer.status_code == 200
        assert not Path(f"/proc/{first}").exists()  # reaped, not a zombie
        assert is_toolkit_worker(second) and os.getpgid(second) == os.getpgid(process.pid)
        poll(lambda: handled(engine, follow["webhookEventId"]), what="handled event")
        health = poll(lambda: (h := httpx.get(f"{base_url}/healthz").json())["workers"]["alive"] == 1 and h,
                      what="the new child's heartbeat")
        assert health["status"] == "ok" and health["workers"]["stale"] == 0  # the dead one was forgotten
        assert "toolkit_worker_restarts_total 1.0" in httpx.get(f"{base_url}/metrics").text
    engine.dispose()


def handled(engine, event_id: str) -> bool:
    with engine.connect() as conn:
        return conn.execute(text("SELECT handled_at IS NOT NULL FROM webhook_event WHERE webhook_event_id = :i"),
                            {"i": event_id}).scalar() is True
