"""Reads and channel settings (profile, bot info, quota, webhook endpoint) and the record."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from linebot.v3.messaging import MessagingApi, SetWebhookEndpointRequest
from linebot.v3.messaging import TestWebhookEndpointRequest as WebhookTestRequest

from tests.line.sandbox.helpers import (
    USER,
    broadcast,
    call,
    check_spec,
    http,
    mint_token,
    multicast,
    narrowcast,
    push,
    record,
    reply,
    retry_key,
    user,
)
from toolkit.line.sandbox.service import DEFAULT_BOT_USER_ID

ApiFor = Callable[[str], MessagingApi]
WEBHOOK = "/v2/bot/channel/webhook/endpoint"


class _Webhook(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        _Webhook.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook_url() -> Iterator[str]:
    """A stand-in for our webhook on a free loopback port."""
    _Webhook.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Webhook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/line/webhook"
    server.shutdown()
    server.server_close()


def test_profile_of_any_well_formed_user(serve: Callable[..., str], line_api: ApiFor) -> None:
    api = line_api(serve())
    answer = call(api.get_profile_with_http_info, user(5))
    assert answer.status == 200 and answer.body["userId"] == user(5)
    check_spec("/v2/bot/profile/{userId}", "get", answer)
    assert call(api.get_profile_with_http_info, "Uxyz").status == 400


def test_bot_info(serve: Callable[..., str], line_api: ApiFor) -> None:
    answer = call(line_api(serve()).get_bot_info_with_http_info)
    assert answer.status == 200 and answer.body["userId"] == DEFAULT_BOT_USER_ID
    check_spec("/v2/bot/info", "get", answer)


def test_webhook_endpoint_set_read_and_tested(serve: Callable[..., str], line_api: ApiFor, webhook_url: str) -> None:
    api = line_api(serve(channel_secret="s3cret"))
    unset = call(api.get_webhook_endpoint_with_http_info)
    assert (unset.status, unset.body) == (404, {"message": "The webhook endpoint is not set"})
    check_spec(WEBHOOK, "get", unset)
    assert call(api.test_webhook_endpoint_with_http_info, WebhookTestRequest()).status == 404
    assert call(api.set_webhook_endpoint_with_http_info, SetWebhookEndpointRequest(endpoint=webhook_url)).status == 200
    current = call(api.get_webhook_endpoint_with_http_info)
    assert current.body == {"endpoint": webhook_url, "active": True}
    check_spec(WEBHOOK, "get", current)
    tested = call(api.test_webhook_endpoint_with_http_info, WebhookTestRequest())
    assert tested.status == 200
    assert tested.body["success"] is True and tested.body["statusCode"] == 200
    check_spec("/v2/bot/channel/webhook/test", "post", tested)
    headers, body = _Webhook.received[-1]
    assert b'"events": []' in body and headers["x-line-signature"]


def test_webhook_test_reports_an_unreachable_endpoint(serve: Callable[..., str], line_api: ApiFor) -> None:
    api = line_api(serve())
    closed = "http://127.0.0.1:9/line/webhook"  # the discard port: nothing listens there
    tested = call(api.test_webhook_endpoint_with_http_info, WebhookTestRequest(endpoint=closed))
    assert tested.status == 200 and tested.body["success"] is False and tested.body["statusCode"] == 0
    check_spec("/v2/bot/channel/webhook/test", "post", tested)
    bad = call(api.set_webhook_endpoint_with_http_info, SetWebhookEndpointRequest.construct(endpoint="ftp://x"))
    assert bad.status == 400


def test_record_shape_order_and_clearing(serve: Callable[..., str], line_api: ApiFor) -> None:
    base = serve(quota=None)
    api = line_api(base)
    key = retry_key()
    push(api, key=key)
    multicast(api, [user(1), user(2)])
    broadcast(api)
    narrowcast(api)
    reply(api, mint_token(base, user(4)))
    push(api, to="bad")
    call(api.get_profile_with_http_info, USER)  # reads are not recorded
    call(api.get_message_quota_with_http_info)
    entries = record(base)
    assert [(e["endpoint"], e["to"], e["status"], e["accepted"]) for e in entries] == [
        ("push", [USER], 200, True),
        ("multicast", [user(1), user(2)], 200, True),
        ("broadcast", [], 200, True),
        ("narrowcast", [], 202, True),
        ("reply", [user(4)], 200, True),
        ("push", ["bad"], 400, False),
    ]
    first = entries[0]
    assert set(first) >= {"endpoint", "to", "messages", "retry_key", "status", "accepted", "at"}
    assert first["messages"] == [{"type": "text", "text": "hello"}] and first["retry_key"] == key
    assert all(isinstance(e["status"], int) and isinstance(e["accepted"], bool) for e in entries)
    times = [datetime.fromisoformat(e["at"]) for e in entries]
    assert times == sorted(times) and all(t.tzinfo is not None for t in times)
    assert record(base) == entries  # reading does not consume
    assert http.delete(f"{base}/_messages").status_code == 204
    assert record(base) == []
    push(api)
    assert len(record(base)) == 1  # cumulative again from the clearing on


def test_a_configured_webhook_url_is_the_default(serve: Callable[..., str], line_api: ApiFor) -> None:
    answer = call(line_api(serve(webhook_url="http://127.0.0.1:8000/line/webhook")).get_webhook_endpoint_with_http_info)
    assert answer.body == {"endpoint": "http://127.0.0.1:8000/line/webhook", "active": True}
