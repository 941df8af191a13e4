"""Signed bodies that LINE would never send, or not any more: never a 500, and nothing
valid beside them is lost. An event that cannot be stored as it is (a NUL or a lone
surrogate, which PostgreSQL's jsonb and text refuse) or that is older than the dedupe
window (a captured body replayed after its row was purged) is kept as a refused event with
the reason and is never handled."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.inbox.factories import event, line_user_id, webhook_body
from tests.inbox.factories import post_webhook as post
from tests.web.helpers import logged_in_client
from toolkit.inbox import jobs, service
from toolkit.inbox.models import REFUSED, WebhookEvent
from toolkit.kit.clock import utcnow
from toolkit.line.webhook import MAX_DEPTH
from toolkit.settings import get_settings

pytestmark = pytest.mark.usefixtures("fresh_settings")
BAD_TEXTS = {"nul": "\\u0000", "lone_surrogate": "\\ud800", "lone_low_surrogate": "bad \\udc00 text"}


def rows(session, *events):
    ids = [e["webhookEventId"] for e in events]
    session.expire_all()
    found = session.scalars(select(WebhookEvent).where(WebhookEvent.webhook_event_id.in_(ids))).all()
    return {row.webhook_event_id: row for row in found}


@pytest.mark.parametrize("bad", BAD_TEXTS.values(), ids=BAD_TEXTS.keys())
def test_one_unstorable_text_refuses_that_event_only_and_keeps_the_others(session, client, secret, bad):
    user = line_user_id()
    events = [event("follow", user), event("message", user, text="PLACEHOLDER"),
              event("message", user, text="你好"), event("postback", user, data="a=1")]
    body = webhook_body(*events).replace(b"PLACEHOLDER", bad.encode())

    answers = [post(client, secret, body) for _ in range(2)]  # a redelivery is the same

    assert [a.status_code for a in answers] == [200, 200]
    stored = rows(session, *events)
    assert len(stored) == 4
    refused = stored[events[1]["webhookEventId"]]
    assert refused.status == REFUSED and "cannot be stored" in refused.last_error
    assert "\x00" not in json.dumps(refused.body) and refused.body["message"]["text"] != ""
    assert {stored[e["webhookEventId"]].status for e in (events[0], events[2], events[3])} == {"pending"}
    assert refused.id not in service.claim(session, limit=100)


def test_unstorable_characters_in_keys_and_ids_are_refused_too(session, client, secret):
    user = line_user_id()
    strange = {**event("message", user, text="hi"), "KEY": 1}
    ok = event("follow", user)
    body = webhook_body(strange, ok).replace(b'"KEY"', b'"k\\u0000"')

    assert post(client, secret, body).status_code == 200
    stored = rows(session, strange, ok)
    assert stored[strange["webhookEventId"]].status == REFUSED
    assert stored[ok["webhookEventId"]].status == "pending"


def nested(depth: int) -> bytes:
    return b'{"events":[{"type":"message","deep":' + b"[" * depth + b"]" * depth + b"}]}"


@pytest.mark.parametrize("depth", [1000, 100_000, MAX_DEPTH + 1])
def test_deeply_nested_signed_json_is_a_400_saying_why(client, secret, depth):
    response = post(client, secret, nested(depth))

    assert response.status_code == 400
    assert response.json()["code"] == "webhook_rejected" and "nested" in response.json()["detail"]


def test_nesting_as_deep_as_allowed_is_stored(session, client, secret):
    body = nested(MAX_DEPTH - 3)  # the body, its events list and the event are three levels

    assert post(client, secret, body).status_code == 200


@pytest.mark.parametrize("number", [b"NaN", b"Infinity", b"-Infinity", b"1e400"])
def test_numbers_no_database_can_store_are_a_400(client, secret, number):
    body = webhook_body(event("follow", line_user_id())).replace(b'"mode"', b'"x": ' + number + b', "mode"')

    response = post(client, secret, body)

    assert response.status_code == 400 and response.json()["code"] == "webhook_rejected"


def old_event(user: str, *, age: timedelta) -> dict:
    return {**event("follow", user), "timestamp": int((time.time() - age.total_seconds()) * 1000)}


def test_an_event_older_than_the_dedupe_window_is_answered_200_and_never_handled(
        session, client, secret, line_sandbox, monkeypatch):
    monkeypatch.setenv("TOOLKIT_WEBHOOK_RETENTION_DAYS", "2")
    get_settings.cache_clear()
    user, other = line_user_id(), line_user_id()
    replayed = old_event(user, age=timedelta(days=2, minutes=1))
    recent = old_event(other, age=timedelta(days=1, hours=23))

    response = post(client, secret, webhook_body(replayed, recent))

    assert response.status_code == 200
    stored = rows(session, replayed, recent)
    assert stored[replayed["webhookEventId"]].status == REFUSED
    assert "older than the dedupe window" in stored[replayed["webhookEventId"]].last_error
    assert stored[recent["webhookEventId"]].status == "pending"
    while jobs.process_events():
        pass
    assert rows(session, replayed)[replayed["webhookEventId"]].handled_at is None
    assert [m for m in line_sandbox.messages() if user in m["to"]] == []  # no welcome for the replay


def test_refused_events_are_purged_with_the_handled_ones(session, client, secret):
    replayed = old_event(line_user_id(), age=timedelta(days=400))
    assert post(client, secret, webhook_body(replayed)).status_code == 200

    purged = service.purge_handled(session, older_than_days=30, now=utcnow() + timedelta(days=31))

    assert purged >= 1 and rows(session, replayed) == {}


def test_staff_see_refused_events_under_their_own_tab_with_the_reason(session, client, secret):
    replayed = old_event(line_user_id(), age=timedelta(days=400))
    assert post(client, secret, webhook_body(replayed)).status_code == 200

    page = logged_in_client(session, ["admin"]).get("/admin/line/events?status=refused")

    assert page.status_code == 200
    assert "Refused on arrival" in page.text and "older than the dedupe window" in page.text
