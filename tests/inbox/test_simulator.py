"""The chat simulator's events: LINE's shape, LINE's signature, and how they are sent."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import httpx
import pytest

from tests.inbox.factories import event, line_user_id, store
from toolkit.inbox import simulator
from toolkit.inbox.simulator import SandboxUnreachable, SimulatorDisabled, WebhookRefused, WebhookUnreachable
from toolkit.kit.errors import InvalidInput
from toolkit.line.webhook import InvalidSignature, parse, sign, verify
from toolkit.settings import Settings

SECRET = "simulator-test-secret"
BASE = "http://app.test"
SANDBOX = "http://sandbox.test/line"


def settings(**changes) -> Settings:
    return Settings(**{"line_sandbox": True, "base_url": BASE, "line_api_base": SANDBOX} | changes)


def decode_ulid_ms(value: str) -> int:
    number = 0
    for char in value:
        number = number * 32 + "0123456789ABCDEFGHJKMNPQRSTVWXYZ".index(char)
    return number >> 80


# --- building -----------------------------------------------------------------------------

def test_user_ids_look_like_lines():
    made = {simulator.new_user_id() for _ in range(50)}

    assert len(made) == 50 and all(simulator.is_user_id(u) for u in made)
    assert not any(simulator.is_user_id(bad) for bad in ["", None, "U123", "u" + "a" * 32, "U" + "A" * 32,
                                                         "U" + "a" * 33, " U" + "a" * 32])


def test_event_ids_are_ulids_that_carry_the_time():
    now_ms = int(time.time() * 1000)

    ids = [simulator.new_event_id(now_ms) for _ in range(20)]

    assert len(set(ids)) == 20
    assert all(len(i) == 26 and i[0] in "01234567" for i in ids)
    assert {decode_ulid_ms(i) for i in ids} == {now_ms}


def test_a_follow_is_shaped_as_line_sends_it():
    user = line_user_id()

    follow = simulator.build_event("follow", user_id=user, reply_token="a" * 32, now_ms=1_700_000_000_000)

    assert follow == {
        "type": "follow", "mode": "active", "timestamp": 1_700_000_000_000,
        "source": {"type": "user", "userId": user}, "webhookEventId": follow["webhookEventId"],
        "deliveryContext": {"isRedelivery": False}, "replyToken": "a" * 32, "follow": {"isUnblocked": False},
    }
    assert decode_ulid_ms(follow["webhookEventId"]) == 1_700_000_000_000


def test_a_text_message_and_an_unfollow():
    user = line_user_id()

    text = simulator.build_event("message", user_id=user, text="取消訂閱", reply_token="t")
    unfollow = simulator.build_event("unfollow", user_id=user, reply_token="ignored")

    message = text["message"]
    assert message["type"] == "text" and message["text"] == "取消訂閱"
    assert len(message["id"]) == 18 and message["id"].isdigit() and message["quoteToken"]
    assert text["replyToken"] == "t"
    assert "replyToken" not in unfollow and "message" not in unfollow  # LINE gives an unfollow no token


@pytest.mark.parametrize(("kind", "user", "text"), [
    ("follow", "U123", None),
    ("message", "U" + "0" * 32, None),
    ("message", "U" + "0" * 32, "   "),
    ("message", "U" + "0" * 32, "字" * 5001),
], ids=["bad-user-id", "no-text", "blank-text", "text-too-long"])
def test_bad_input_is_refused_before_anything_is_sent(kind, user, text):
    with pytest.raises(InvalidInput):
        simulator.build_event(kind, user_id=user, text=text)


def test_the_signature_verifies_with_the_channel_secret_and_the_webhook_parses_it():
    user = line_user_id()
    built = simulator.build_event("message", user_id=user, text="你好 👋", reply_token="r" * 32)
    body = simulator.webhook_body([built])

    headers = simulator.signed_headers(SECRET, body)

    verify(SECRET, body, headers["x-line-signature"])  # does not raise
    assert headers["x-line-signature"] == sign(SECRET, body)
    with pytest.raises(InvalidSignature):
        verify("another secret", body, headers["x-line-signature"])
    destination, (parsed,) = parse(body)
    assert destination and destination.startswith("U")
    assert (parsed.webhook_event_id, parsed.type, parsed.user_id, parsed.reply_token, parsed.mode,
            parsed.is_redelivery) == (built["webhookEventId"], "message", user, "r" * 32, "active", False)
    assert "你好 👋".encode() in body  # sent as UTF-8, not \\u escapes


# --- sending ------------------------------------------------------------------------------

class FakeNetwork:
    """Stands in for the sandbox and our webhook; records what was sent."""

    def __init__(self, *, webhook_status: int = 200, down: set[str] | frozenset[str] = frozenset()) -> None:
        self.requests: list[httpx.Request] = []
        self.webhook_status = webhook_status
        self.down = down

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.host in self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if request.url.path == "/line/_reply_tokens":
            return httpx.Response(200, json={"replyToken": "f" * 32})
        if request.url.path == "/line/webhook":
            return httpx.Response(self.webhook_status, json={})
        return httpx.Response(404, json={"message": "Not found"})


@pytest.fixture
def network(monkeypatch):
    fake = FakeNetwork()
    monkeypatch.setattr(simulator, "http_client", lambda: httpx.Client(transport=httpx.MockTransport(fake)))
    return fake


def test_send_mints_a_reply_token_at_the_sandbox_then_posts_a_signed_event_to_our_webhook(network):
    user = line_user_id()

    sent = simulator.send_event(settings(), channel_secret=SECRET, kind="follow", user_id=user)

    mint, post = network.requests
    assert str(mint.url) == f"{SANDBOX}/_reply_tokens" and json.loads(mint.content) == {"user_id": user}
    assert str(post.url) == f"{BASE}/line/webhook" and post.method == "POST"
    verify(SECRET, post.content, post.headers["x-line-signature"])
    (sent_event,) = json.loads(post.content)["events"]
    assert sent_event["replyToken"] == "f" * 32 == sent.reply_token
    assert sent_event["webhookEventId"] == sent.webhook_event_id and sent.status == 200


def test_an_unfollow_needs_no_reply_token(network):
    sent = simulator.send_event(settings(), channel_secret=SECRET, kind="unfollow", user_id=line_user_id())

    (post,) = network.requests
    assert post.url.path == "/line/webhook" and sent.reply_token is None


def test_a_refused_or_unreachable_webhook_is_reported(network):
    network.webhook_status = 401
    with pytest.raises(WebhookRefused) as refused:
        simulator.send_event(settings(), channel_secret=SECRET, kind="follow", user_id=line_user_id())
    network.down = {"app.test"}
    with pytest.raises(WebhookUnreachable):
        simulator.send_event(settings(), channel_secret=SECRET, kind="follow", user_id=line_user_id())
    network.down = {"sandbox.test"}
    with pytest.raises(SandboxUnreachable):
        simulator.send_event(settings(), channel_secret=SECRET, kind="follow", user_id=line_user_id())

    assert refused.value.details["webhook_status"] == 401


def test_nothing_is_sent_without_the_sandbox_or_with_bad_input(network):
    with pytest.raises(SimulatorDisabled):
        simulator.send_event(settings(line_sandbox=False), channel_secret=SECRET, kind="follow", user_id=line_user_id())
    with pytest.raises(InvalidInput):
        simulator.send_event(settings(), channel_secret=SECRET, kind="message", user_id=line_user_id(), text="")

    assert network.requests == []


def test_without_an_explicit_api_base_the_mounted_sandbox_is_used():
    assert simulator.sandbox_url(settings(line_api_base=None)) == f"{BASE}/sandbox/line"
    assert simulator.webhook_url(settings(base_url=BASE + "/")) == f"{BASE}/line/webhook"


# --- the conversation -----------------------------------------------------------------------

def sandbox_record(to: list[str], text: str, at: str, *, endpoint="reply", accepted=True, status=200) -> dict:
    return {"endpoint": endpoint, "to": to, "messages": [{"type": "text", "text": text}], "retry_key": None,
            "status": status, "accepted": accepted, "at": at, "request_id": "r"}


def test_the_conversation_interleaves_what_the_user_sent_and_what_we_answered(session, monkeypatch):
    user, other = line_user_id(), line_user_id()
    follow, said = store(session, event("follow", user), event("message", user, text="取消訂閱"))
    said.received_at = follow.received_at + timedelta(seconds=2)
    store(session, event("message", other, text="not this user's"))
    session.flush()
    follow_at, said_at = follow.received_at.isoformat(), said.received_at.isoformat()
    records = [
        sandbox_record([other], "someone else's reply", follow_at),
        sandbox_record([user], "已為您取消訂閱", said_at),  # same instant as the message: stays after it
        sandbox_record([user], "歡迎加入", follow_at),
        sandbox_record([user], "refused push", said_at, endpoint="push", accepted=False, status=429),
    ]
    monkeypatch.setattr(simulator, "http_client", lambda: httpx.Client(
        transport=httpx.MockTransport(lambda request: httpx.Response(200, json=records))))

    talk = simulator.conversation(session, settings(), user_id=user)

    assert [(b["side"], b["text"]) for b in talk.bubbles] == [
        ("system", None), ("bot", "歡迎加入"), ("user", "取消訂閱"), ("bot", "已為您取消訂閱"), ("bot", "refused push"),
    ]
    assert talk.bubbles[0]["kind"] == "follow" and talk.bubbles[0]["event_id"] == follow.webhook_event_id
    assert talk.bubbles[2]["event_id"] == said.webhook_event_id and talk.bubbles[2]["status"] == "pending"
    assert talk.bubbles[-1]["accepted"] is False and talk.bubbles[-1]["status"] == 429
    assert talk.sandbox_error is None


def test_an_unreachable_sandbox_still_shows_what_the_user_sent(session, monkeypatch):
    user = line_user_id()
    store(session, event("message", user, text="哈囉"))

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    monkeypatch.setattr(simulator, "http_client", lambda: httpx.Client(transport=httpx.MockTransport(refuse)))

    talk = simulator.conversation(session, settings(), user_id=user)

    assert [b["text"] for b in talk.bubbles] == ["哈囉"] and "ConnectError" in talk.sandbox_error
