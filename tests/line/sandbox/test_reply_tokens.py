"""Reply tokens: minted for the simulator or registered from our webhook; single use; short-lived."""

from __future__ import annotations

import time
from collections.abc import Callable

from linebot.v3.messaging import MessagingApi

from tests.line.sandbox.helpers import check_spec, http, mint_token, record, reply, user
from toolkit.line.sandbox import register_reply_token

REPLY = "/v2/bot/message/reply"
INVALID = {"message": "Invalid reply token"}
ApiFor = Callable[[str], MessagingApi]


def test_a_reply_token_works_once_for_its_user(serve: Callable[..., str], line_api: ApiFor) -> None:
    base = serve()
    api = line_api(base)
    token = mint_token(base, user(7))
    first = reply(api, token)
    assert first.status == 200
    check_spec(REPLY, "post", first)
    assert len(first.body["sentMessages"]) == 1
    second = reply(api, token)
    assert second.status == 400 and second.body == INVALID
    check_spec(REPLY, "post", second)
    entries = record(base)
    assert [(e["endpoint"], e["to"], e["status"], e["accepted"]) for e in entries] == [
        ("reply", [user(7)], 200, True), ("reply", [], 400, False)]


def test_unknown_token_is_invalid(serve: Callable[..., str], line_api: ApiFor) -> None:
    answer = reply(line_api(serve()), "0" * 32)
    assert answer.status == 400 and answer.body == INVALID


def test_a_reply_token_expires(serve: Callable[..., str], line_api: ApiFor) -> None:
    base = serve(reply_token_ttl_s=1.0)
    api = line_api(base)
    fresh, stale = mint_token(base), mint_token(base)
    assert reply(api, fresh).status == 200
    time.sleep(1.2)
    assert reply(api, stale).body == INVALID


def test_webhook_tokens_are_registered_in_python(serve: Callable[..., str], line_api: ApiFor) -> None:
    base = serve()
    api = line_api(base)
    # create_sandbox_app makes its sandbox the one this process serves: the webhook's call
    # needs no handle on it.
    register_reply_token("b" * 32, user(9))
    answer = reply(api, "b" * 32)
    assert answer.status == 200
    assert record(base)[-1]["to"] == [user(9)]


def test_a_known_token_can_be_registered_over_http(serve: Callable[..., str], line_api: ApiFor) -> None:
    base = serve()
    response = http.post(f"{base}/_reply_tokens", json={"user_id": user(3), "replyToken": "event-token-1"})
    assert response.json() == {"replyToken": "event-token-1"}
    assert reply(line_api(base), "event-token-1").status == 200


def test_minting_needs_a_well_formed_user(serve: Callable[..., str]) -> None:
    base = serve()
    for body in ({}, {"user_id": "U1"}, {"user_id": user(1), "replyToken": ""}):
        response = http.post(f"{base}/_reply_tokens", json=body)
        assert response.status_code == 400
        assert response.json()["details"]


def test_a_faulted_reply_keeps_its_token(serve: Callable[..., str], line_api: ApiFor) -> None:
    base = serve()
    api = line_api(base)
    token = mint_token(base)
    http.post(f"{base}/_faults", json={"500": 1.0})
    assert reply(api, token).status == 500  # refused: the token was not used
    http.post(f"{base}/_faults", json={"accept_then_500": 1.0})
    assert reply(api, token).status == 500  # accepted, then 500: the token is used up
    http.post(f"{base}/_faults", json={})
    assert reply(api, token).body == INVALID


def test_many_tokens_are_registered_at_once_or_none_of_them(serve: Callable[..., str], line_api: ApiFor) -> None:
    base = serve()
    tokens = [{"replyToken": f"burst-{n}", "user_id": user(n)} for n in range(1, 4)]
    bad = [*tokens, {"replyToken": "burst-x", "user_id": "U1"}]

    refused = http.post(f"{base}/_reply_tokens/batch", json={"tokens": bad})
    assert refused.status_code == 400 and refused.json()["details"][0]["property"] == "tokens[3].userId"
    assert reply(line_api(base), "burst-1").body == INVALID  # none of them was registered
    registered = http.post(f"{base}/_reply_tokens/batch", json={"tokens": tokens})
    assert registered.json() == {"registered": 3}
    assert [reply(line_api(base), f"burst-{n}").status for n in range(1, 4)] == [200, 200, 200]
    assert [e["to"] for e in record(base)[-3:]] == [[user(1)], [user(2)], [user(3)]]
    assert http.post(f"{base}/_reply_tokens/batch", json={"tokens": []}).status_code == 400
