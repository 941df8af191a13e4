"""POST /line/webhook: signature, malformed bodies, dedupe; nothing valid is ever lost."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from tests.helpers import api_client
from tests.inbox.factories import event, line_user_id, webhook_body
from toolkit.inbox.models import WebhookEvent
from toolkit.kit import secrets
from toolkit.line.webhook import sign


@pytest.fixture
def client(session):
    return api_client(session, roles=None)


@pytest.fixture
def secret(session):
    return secrets.get_secret(session, secrets.LINE_CHANNEL_SECRET)


def post(client, secret, body: bytes, *, content_type="application/json; charset=utf-8", signature=None):
    headers = {"content-type": content_type, "x-line-signature": signature or sign(secret, body)}
    return client.post("/line/webhook", content=body, headers=headers)


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
