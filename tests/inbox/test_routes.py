"""POST /line/webhook: signature, malformed bodies, dedupe; nothing valid is ever lost."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import create_async_engine

from tests.inbox.factories import event, line_user_id, webhook_body
from tests.inbox.factories import post_webhook as post
from toolkit import db
from toolkit.inbox import routes
from toolkit.inbox.models import WebhookEvent
from toolkit.line.webhook import sign


def stored(session, *ids):
    return session.scalar(select(func.count()).where(WebhookEvent.webhook_event_id.in_(ids)))


def test_a_signed_event_is_stored_and_answered_200(session, client, secret):
    follow = event("follow", line_user_id())

    response = post(client, secret, webhook_body(follow))

    assert response.status_code == 200 and response.json() == {}
    assert stored(session, follow["webhookEventId"]) == 1


def test_bad_or_missing_signature_is_401_and_stores_nothing(session, client, secret):
    follow = event("follow", line_user_id())
    body = webhook_body(follow)

    wrong = post(client, secret, body, signature=sign("another secret", body))
    missing = client.post("/line/webhook", content=body, headers={"content-type": "application/json"})

    assert wrong.status_code == missing.status_code == 401
    assert stored(session, follow["webhookEventId"]) == 0


@pytest.mark.parametrize("body", [b"", b"{not json", b"[]", b'{"events": "nope"}', b'{"events": [1]}', b"\xff\xfe"])
def test_malformed_signed_bodies_are_400(client, secret, body):
    assert post(client, secret, body).status_code == 400


def test_empty_events_is_lines_connection_check(client, secret):
    response = post(client, secret, json.dumps({"destination": "U0", "events": []}).encode())

    assert response.status_code == 200


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8", "text/plain", ""])
def test_any_content_type_is_accepted_when_signed(session, client, secret, content_type):
    follow = event("follow", line_user_id())

    response = post(client, secret, webhook_body(follow), content_type=content_type)

    assert response.status_code == 200 and stored(session, follow["webhookEventId"]) == 1


def test_destination_is_not_checked(session, client, secret):
    follow = event("follow", line_user_id())
    body = json.dumps({"destination": "Usomeone-else", "events": [follow]}).encode()

    assert post(client, secret, body).status_code == 200
    assert stored(session, follow["webhookEventId"]) == 1


def test_duplicates_and_redeliveries_are_answered_200_and_stored_once(session, client, secret):
    message = event("message", line_user_id(), text="你好")
    redelivered = {**message, "deliveryContext": {"isRedelivery": True}}

    responses = [post(client, secret, webhook_body(message)) for _ in range(3)]
    responses.append(post(client, secret, webhook_body(redelivered, message)))

    assert all(r.status_code == 200 for r in responses)
    assert stored(session, message["webhookEventId"]) == 1


def test_unknown_event_types_are_kept_not_refused(session, client, secret):
    strange = {**event("follow", line_user_id()), "type": "somethingNew", "somethingNew": {"x": 1}}

    assert post(client, secret, webhook_body(strange)).status_code == 200
    assert stored(session, strange["webhookEventId"]) == 1


def test_a_one_megabyte_body_does_not_fail_and_keeps_its_valid_event(session, client, secret):
    follow = event("follow", line_user_id())
    padded = {"destination": "U0", "events": [follow], "padding": "x" * 1_000_000}
    body = json.dumps(padded).encode()

    assert post(client, secret, body).status_code == 200
    assert stored(session, follow["webhookEventId"]) == 1
    assert post(client, secret, body, signature="bad").status_code == 401


def test_bodies_far_beyond_lines_size_are_refused_unread(client, secret):
    response = post(client, secret, b"x" * (3 * 1024 * 1024))

    assert response.status_code == 413


def test_the_ack_pool_opens_at_the_first_webhook_and_closes_with_the_app(backend_engines, monkeypatch):
    """PostgreSQL's acknowledgement path: psycopg_pool's AsyncConnectionPool, opened in the
    app's running loop by the first webhook and closed by the app's lifespan."""
    if "postgresql" not in backend_engines:
        pytest.skip("PostgreSQL is not available (set CI=true to make this a failure)")
    engine = backend_engines["postgresql"]
    async_engine = create_async_engine(engine.url.render_as_string(hide_password=False))
    monkeypatch.setattr(db, "get_async_engine", lambda: async_engine)
    app = FastAPI()
    app.include_router(routes.router)
    app.state.line_channel_secret = "pool-test-secret"
    follow = event("follow", line_user_id())
    body = webhook_body(follow)
    try:
        with TestClient(app) as client:
            assert getattr(app.state, "ack_pool", None) is None  # nothing opened before a webhook
            answers = [client.post("/line/webhook", content=body, headers={
                "x-line-signature": sign("pool-test-secret", body)}) for _ in range(3)]
            pool = app.state.ack_pool.pool
            assert [a.status_code for a in answers] == [200, 200, 200]
            assert pool is not None and not pool.closed and pool.get_stats()["pool_max"] == routes.POOL_SIZE
        assert pool.closed and app.state.ack_pool.pool is None
        with engine.connect() as conn:  # committed by the autocommit connection, stored once
            assert conn.scalar(select(func.count()).select_from(WebhookEvent)
                               .where(WebhookEvent.webhook_event_id == follow["webhookEventId"])) == 1
    finally:
        with engine.begin() as conn:  # outside the tests' rolled-back transactions: clean up
            conn.execute(delete(WebhookEvent).where(WebhookEvent.webhook_event_id == follow["webhookEventId"]))
        # In a thread of its own: a browser test run earlier by this worker can leave an
        # event loop running in this one, where asyncio.run() refuses to start.
        with ThreadPoolExecutor(1) as thread:
            thread.submit(asyncio.run, async_engine.dispose()).result()
