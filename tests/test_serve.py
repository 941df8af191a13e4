"""`toolkit serve` as a real process: starts with only a database URL, stops on SIGTERM."""

from __future__ import annotations

import re
import signal
import time

import httpx
import pytest

from tests.conftest import IN_CI, postgres_available, worker_suffix
from tests.processes import alive, children_of, fresh_database, run_toolkit, running_server, toolkit_env

pytestmark = pytest.mark.slow


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
