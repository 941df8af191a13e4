"""Sending through LINE's SDK: answers, payload rules and LINE's error shape, on every store."""

from __future__ import annotations

from collections.abc import Callable

from linebot.v3.messaging import MessagingApi, StickerMessage

from tests.line.sandbox.helpers import (
    USER,
    broadcast,
    check_spec,
    http,
    multicast,
    narrowcast,
    push,
    record,
    retry_key,
    text,
    user,
)

PUSH, MULTICAST = "/v2/bot/message/push", "/v2/bot/message/multicast"
ApiFor = Callable[[str], MessagingApi]


def test_push_returns_sent_messages_as_line_does(serve: Callable[..., str], line_api: ApiFor) -> None:
    base = serve()
    answer = push(line_api(base), messages=[text("hi"), StickerMessage(packageId="446", stickerId="1988")])
    assert answer.status == 200
    check_spec(PUSH, "post", answer)
    sent = answer.body["sentMessages"]
    assert len(sent) == 2 and all(m["id"].isdigit() and len(m["id"]) == 18 for m in sent)
    assert all(m["quoteToken"] for m in sent)
    assert answer.request_id and answer.headers["content-type"] == "application/json"


def test_multicast_broadcast_narrowcast_answer_empty_objects(serve: Callable[..., str], line_api: ApiFor) -> None:
    api = line_api(serve(quota=None))
    answers = {
        MULTICAST: multicast(api, [user(1), user(2)]),
        "/v2/bot/message/broadcast": broadcast(api),
        "/v2/bot/message/narrowcast": narrowcast(api),
    }
    assert [a.status for a in answers.values()] == [200, 200, 202]  # narrowcast: 202, as in the spec
    for path, answer in answers.items():
        assert answer.body == {}
        check_spec(path, "post", answer)


def test_multicast_takes_500_ids_and_refuses_501(serve: Callable[..., str], line_api: ApiFor) -> None:
    api = line_api(serve(quota=None))
    assert multicast(api, [user(i) for i in range(500)]).status == 200
    answer = multicast(api, [user(i) for i in range(501)])
    assert answer.status == 400
    check_spec(MULTICAST, "post", answer)
    assert answer.body["details"] == [{"message": "Size must be between 1 and 500", "property": "to"}]
    assert multicast(api, []).status == 400


def test_five_messages_pass_and_six_do_not(serve: Callable[..., str], line_api: ApiFor) -> None:
    api = line_api(serve())
    assert push(api, messages=[text()] * 5).status == 200
    answer = push(api, messages=[text()] * 6)
    assert answer.status == 400
    check_spec(PUSH, "post", answer)
    assert answer.body == {"message": "The request body has 1 error(s)",
                           "details": [{"message": "Size must be between 1 and 5", "property": "messages"}]}
    assert push(api, messages=[]).status == 400


def test_text_length_counts_utf16_units(serve: Callable[..., str], line_api: ApiFor) -> None:
    api = line_api(serve())
    emoji = "\N{GRINNING FACE}"  # outside the BMP: 2 UTF-16 units, 1 Python character
    assert push(api, messages=[text("a" * 5000)]).status == 200
    assert push(api, messages=[text(emoji * 2500)]).status == 200  # 2,500 characters, 5,000 units
    assert push(api, messages=[text("a" * 4998 + emoji)]).status == 200  # 5,000 units exactly
    too_long = push(api, messages=[text("a" * 4999 + emoji)])  # 5,000 characters but 5,001 units
    assert too_long.status == 400
    check_spec(PUSH, "post", too_long)
    assert too_long.body["details"] == [{"message": "Length must be between 0 and 5000", "property": "messages[0].text"}]
    assert push(api, messages=[text("a" * 5001)]).status == 400


def test_body_over_2_mb_is_413(serve: Callable[..., str], line_api: ApiFor) -> None:
    base = serve()
    answer = push(line_api(base), messages=[text("a" * (2 * 1024 * 1024 + 1))])
    assert answer.status == 413
    check_spec(PUSH, "post", answer)
    assert record(base)[-1]["status"] == 413


def test_malformed_user_ids_are_400(serve: Callable[..., str], line_api: ApiFor) -> None:
    api = line_api(serve())
    for bad in ("U123", "u" + "a" * 32, "U" + "A" * 32, "U" + "g" * 32, ""):
        assert push(api, to=bad).status == 400, bad
    answer = multicast(api, [USER, "nobody"])
    assert answer.status == 400
    assert answer.body["details"] == [{"message": "Invalid user ID", "property": "to[1]"}]


def test_missing_or_malformed_authorization_is_401(serve: Callable[..., str]) -> None:
    base = serve()
    body = {"to": USER, "messages": [{"type": "text", "text": "x"}]}
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer"}):
        response = http.post(f"{base}{PUSH}", json=body, headers=headers)
        assert response.status_code == 401
        assert response.json() == {"message": "Authentication failed. Confirm that the access token in the "
                                              "authorization header is valid."}
        assert response.headers["x-line-request-id"]
    assert http.get(f"{base}/v2/bot/info").status_code == 401
    assert http.post(f"{base}{PUSH}", json=body, headers={"Authorization": "Bearer any"}).status_code == 200


def test_malformed_json_and_unknown_message_types_are_400(serve: Callable[..., str]) -> None:
    base = serve()
    headers = {"Authorization": "Bearer x", "Content-Type": "application/json"}
    assert http.post(f"{base}{PUSH}", content=b"{not json", headers=headers).status_code == 400
    response = http.post(f"{base}{PUSH}", json={"to": USER, "messages": [{"type": "fax"}]}, headers=headers)
    assert response.status_code == 400
    assert response.json()["details"][0]["property"] == "messages[0].type"


def test_retry_key_must_be_a_uuid_and_only_where_line_takes_one(serve: Callable[..., str], line_api: ApiFor) -> None:
    base = serve()
    api = line_api(base)
    answer = push(api, key="not-a-uuid")
    assert answer.status == 400
    assert answer.body["details"] == [{"message": "Must be a UUID in hexadecimal format", "property": "X-Line-Retry-Key"}]
    headers = {"Authorization": "Bearer x", "X-Line-Retry-Key": retry_key()}
    response = http.post(f"{base}/v2/bot/message/reply", headers=headers,
                          json={"replyToken": "t", "messages": [{"type": "text", "text": "x"}]})
    assert response.status_code == 400
    assert response.json()["details"][0]["property"] == "X-Line-Retry-Key"


def test_every_response_carries_a_request_id(serve: Callable[..., str]) -> None:
    base = serve()
    ids = set()
    for response in (http.get(f"{base}/_messages"), http.get(f"{base}/nowhere"),
                     http.post(f"{base}/_faults", json={"bogus": 1}), http.get(f"{base}/v2/bot/info")):
        ids.add(response.headers["x-line-request-id"])
    assert len(ids) == 4
    assert http.get(f"{base}/nowhere").json() == {"message": "Not Found"}
