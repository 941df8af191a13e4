"""The webhook's PostgreSQL fast path (bare ASGI + one autocommit INSERT through a psycopg
pool) as a real `toolkit serve` runs it; the in-process tests take the Session path."""

from __future__ import annotations

import json

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.conftest import IN_CI, POSTGRES_URL, drop_postgres_database, postgres_available, worker_suffix
from tests.inbox.factories import event, line_user_id, webhook_body
from tests.processes import fresh_database, run_toolkit, running_server, toolkit_env
from toolkit.line.webhook import sign

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(postgres_available() is not None and not IN_CI, reason="PostgreSQL not available"),
]
SECRET = "process-test-secret"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    name = f"toolkit_webhook_{worker_suffix()}"  # xdist runs this module's tests on several workers
    url = fresh_database("postgresql", tmp_path_factory.mktemp("hook"), name)
    env = toolkit_env(url, TOOLKIT_LINE_CHANNEL_SECRET=SECRET)
    assert run_toolkit(["db", "upgrade"], env).returncode == 0
    engine = create_engine(url, pool_pre_ping=True)  # survives the test that drops connections
    with running_server(env) as (base_url, _process):  # no worker: events stay pending
        yield base_url, engine
    engine.dispose()
    drop_postgres_database(name)


def post(base_url, body: bytes, signature: str | None = None, **headers):
    headers = {"content-type": "application/json; charset=utf-8",
               "x-line-signature": signature or sign(SECRET, body), **headers}
    return httpx.post(f"{base_url}/line/webhook", content=body, headers=headers, timeout=10)


def stored(engine, event_id: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM webhook_event WHERE webhook_event_id = :i"),
                            {"i": event_id}).scalar()


def status_of(engine, event_id: str) -> tuple[str, str | None]:
    with engine.connect() as conn:
        return tuple(conn.execute(text("SELECT status, last_error FROM webhook_event WHERE webhook_event_id = :i"),
                                  {"i": event_id}).one())


def test_signed_events_are_stored_once_and_committed_before_the_200(server):
    base_url, engine = server
    follow = event("follow", line_user_id())
    redelivered = {**follow, "deliveryContext": {"isRedelivery": True}}

    answers = [post(base_url, webhook_body(follow)), post(base_url, webhook_body(redelivered, follow))]

    assert [a.status_code for a in answers] == [200, 200]
    assert stored(engine, follow["webhookEventId"]) == 1


def test_bad_input_is_refused_with_json_and_loses_nothing(server):
    base_url, engine = server
    follow = event("follow", line_user_id())
    body = webhook_body(follow)

    assert post(base_url, body, signature="bad").status_code == 401
    assert post(base_url, b"{nope").status_code == 400
    too_big = post(base_url, b"x" * (3 * 1024 * 1024))
    assert too_big.status_code == 413 and "too large" in too_big.json()["detail"]
    assert stored(engine, follow["webhookEventId"]) == 0
    assert post(base_url, body).status_code == 200 and stored(engine, follow["webhookEventId"]) == 1


def test_a_one_megabyte_body_and_the_connection_check_pass(server):
    base_url, engine = server
    follow = event("follow", line_user_id())
    padded = json.dumps({"destination": "U0", "events": [follow], "padding": "x" * 1_000_000}).encode()

    assert post(base_url, padded).status_code == 200
    assert post(base_url, json.dumps({"destination": "U0", "events": []}).encode()).status_code == 200
    assert stored(engine, follow["webhookEventId"]) == 1


def test_one_unstorable_text_refuses_that_event_only_on_the_fast_path(server):
    """jsonb refuses \\u0000 and lone surrogates: one such event once failed the whole
    bulk insert, on every redelivery."""
    base_url, engine = server
    user = line_user_id()
    events = [event("follow", user), event("message", user, text="PLACEHOLDER"), event("message", user, text="ok"),
              event("message", user, text="PLACEHOLDER2")]
    body = webhook_body(*events).replace(b"PLACEHOLDER2", b"\\ud800").replace(b"PLACEHOLDER", b"a\\u0000b")

    assert [post(base_url, body).status_code for _ in range(2)] == [200, 200]
    assert [status_of(engine, e["webhookEventId"])[0] for e in events] == ["pending", "refused", "pending", "refused"]
    assert "cannot be stored" in status_of(engine, events[1]["webhookEventId"])[1]


def test_deliveries_after_the_database_dropped_every_connection_are_200(server):
    """pg_terminate_backend on the app's backends (a failover, a restart, an admin) once
    failed the next ten deliveries: the acknowledgement pool handed out each dead
    connection once."""
    base_url, engine = server
    assert post(base_url, webhook_body(event("follow", line_user_id()))).status_code == 200  # the pool is open
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        killed = conn.execute(text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                   "WHERE datname = :db AND pid <> pg_backend_pid()"),
                              {"db": engine.url.database}).scalar()
    admin.dispose()
    assert killed >= 1

    follows = [event("follow", line_user_id()) for _ in range(12)]
    answers = [post(base_url, webhook_body(follow)).status_code for follow in follows]
    health = httpx.get(f"{base_url}/healthz", timeout=10)

    assert answers == [200] * 12
    assert all(stored(engine, follow["webhookEventId"]) == 1 for follow in follows)
    assert health.status_code == 200 and health.json()["database"] == "ok"
