"""Retry keys and injected faults: what a client that retries must meet (409, not a second send)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

import pytest
import urllib3
from linebot.v3.messaging import MessagingApi

from tests.line.sandbox.helpers import check_spec, http, multicast, push, record, retry_key, set_faults, user

PUSH = "/v2/bot/message/push"
ApiFor = Callable[[str], MessagingApi]


def test_reused_retry_key_is_409_with_the_accepted_request_id(serve: Callable[..., str], line_api: ApiFor) -> None:
    base = serve()
    api = line_api(base)
    key = retry_key()
    first = push(api, key=key)
    again = push(api, key=key)
    assert first.status == 200 and again.status == 409
    check_spec(PUSH, "post", again)
    assert again.headers["x-line-accepted-request-id"] == first.request_id != again.request_id
    assert again.body == {"message": "The retry key is already accepted", "sentMessages": first.body["sentMessages"]}
    assert "retry-after" not in again.headers
    assert [(r["status"], r["accepted"], r["retry_key"]) for r in record(base)] == [(200, True, key), (409, False, key)]
    assert push(api, key=retry_key()).status == 200  # another key is another message


def test_multicast_409_carries_no_sent_messages(serve: Callable[..., str], line_api: ApiFor) -> None:
    api = line_api(serve())
    key = retry_key()
    first = multicast(api, [user(1), user(2)], key=key)
    again = multicast(api, [user(1), user(2)], key=key)
    assert (first.status, again.status) == (200, 409)
    assert again.body == {"message": "The retry key is already accepted"}
    assert again.headers["x-line-accepted-request-id"] == first.request_id


def test_retry_key_is_forgotten_after_its_time(serve: Callable[..., str], line_api: ApiFor) -> None:
    api = line_api(serve(retry_key_ttl_s=0.2))
    key = retry_key()
    assert push(api, key=key).status == 200
    assert push(api, key=key).status == 409
    time.sleep(0.3)
    assert push(api, key=key).status == 200


def test_injected_faults_come_at_their_rates(serve: Callable[..., str], line_api: ApiFor) -> None:
    base = serve(quota=None)
    api = line_api(base)
    plan = {"429": 0.1, "500": 0.05, "timeout": 0.02, "accept_then_500": 0.02, "timeout_s": 0.01, "seed": 1234}
    set_faults(base, **plan)
    statuses = Counter(push(api, key=retry_key()).status for _ in range(1000))
    # Binomial(1000, p): each count within about 4 standard deviations of its mean.
    expected = {429: 100, 500: 70, 504: 20, 200: 810}
    for status, mean in expected.items():
        assert abs(statuses[status] - mean) <= 4 * (mean * (1 - mean / 1000)) ** 0.5 + 1, statuses
    assert sum(statuses.values()) == 1000
    entries = record(base)
    assert len(entries) == 1000
    accepted = Counter((e["status"], e["accepted"]) for e in entries)
    assert accepted[(429, True)] == accepted[(200, False)] == accepted[(504, False)] == 0
    assert accepted[(504, True)] == statuses[504]
    assert accepted[(200, True)] == statuses[200]
    # 500s: refused (500) and accepted-then-500 are both there, and add up.
    assert accepted[(500, True)] + accepted[(500, False)] == statuses[500]
    assert accepted[(500, True)] > 0 and accepted[(500, False)] > 0


def test_a_seeded_plan_repeats_its_faults(serve: Callable[..., str], line_api: ApiFor) -> None:
    base = serve()
    api = line_api(base)

    def run() -> list[int]:
        set_faults(base, **{"429": 0.3, "500": 0.3, "seed": 99})
        return [push(api).status for _ in range(40)]

    first = run()
    assert run() == first and set(first) == {200, 429, 500}
    set_faults(base)
    assert {push(api).status for _ in range(20)} == {200}


def test_accept_then_500_is_delivered_so_the_retry_meets_409(serve: Callable[..., str], line_api: ApiFor) -> None:
    base = serve()
    api = line_api(base)
    key = retry_key()
    set_faults(base, accept_then_500=1.0)
    first = push(api, key=key)
    assert first.status == 500
    check_spec(PUSH, "post", first)
    set_faults(base)
    again = push(api, key=key)
    assert again.status == 409
    assert again.headers["x-line-accepted-request-id"] == first.request_id
    assert [(r["status"], r["accepted"]) for r in record(base)] == [(500, True), (409, False)]


def test_refused_500_and_429_are_not_delivered(serve: Callable[..., str], line_api: ApiFor) -> None:
    base = serve()
    api = line_api(base)
    key = retry_key()
    for fault in ("500", "429"):
        set_faults(base, **{fault: 1.0})
        answer = push(api, key=key)
        assert answer.status == int(fault)
        check_spec(PUSH, "post", answer)
        assert "retry-after" not in answer.headers
    set_faults(base)
    assert push(api, key=key).status == 200  # nothing was accepted under the key before


def test_timeout_hangs_then_504_and_the_retry_meets_409(serve: Callable[..., str], line_api: ApiFor) -> None:
    base = serve()
    api = line_api(base)
    key = retry_key()
    set_faults(base, timeout=1.0, timeout_s=1.5)
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        push(api, key=key, _request_timeout=0.3)
    set_faults(base)
    again = push(api, key=key)
    assert again.status == 409
    first = record(base)[0]
    assert (first["status"], first["accepted"]) == (504, True)
    assert again.headers["x-line-accepted-request-id"] == first["request_id"]
    set_faults(base, timeout=1.0, timeout_s=0.2)
    assert push(api).status == 504  # a patient client gets the gateway's answer


def test_latency_delays_answers(serve: Callable[..., str], line_api: ApiFor) -> None:
    base = serve()
    api = line_api(base)
    set_faults(base, latency_ms=300)
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        push(api, _request_timeout=0.1)
    assert push(api, _request_timeout=5).status == 200


@pytest.mark.parametrize("plan, prop", [
    ({"429": 1.5}, "429"),
    ({"500": -0.1}, "500"),
    ({"429": 0.6, "500": 0.5}, ""),
    ({"bogus": 0.1}, "bogus"),
    ({"timeout": "often"}, "timeout"),
    ({"timeout_s": 0}, "timeout_s"),
    ({"latency_ms": -1}, "latency_ms"),
    ({"seed": "x"}, "seed"),
])
def test_fault_plans_are_validated(serve: Callable[..., str], plan: dict, prop: str) -> None:
    base = serve()
    response = http.post(f"{base}/_faults", json=plan)
    assert response.status_code == 400
    assert prop in [d["property"] for d in response.json()["details"]]


def test_empty_plan_clears_faults(serve: Callable[..., str]) -> None:
    base = serve()
    set_faults(base, **{"500": 0.5, "latency_ms": 5})
    assert http.get(f"{base}/_faults").json()["500"] == 0.5
    set_faults(base)
    current = http.get(f"{base}/_faults").json()
    assert "500" not in current and current["latency_ms"] == 0
