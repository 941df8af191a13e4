"""Rate limits per endpoint (429 with LINE's body, no Retry-After) and the monthly quota."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from linebot.v3.messaging import MessagingApi

from tests.line.sandbox.helpers import (
    USER,
    broadcast,
    call,
    check_spec,
    mint_token,
    multicast,
    narrowcast,
    push,
    reply,
    user,
)
from toolkit.line.limits import RATE_LIMITS, RateLimit
from toolkit.line.sandbox import SandboxConfig

ApiFor = Callable[[str], MessagingApi]
RATE_LIMITED = {"message": "The API rate limit has been exceeded. Try again later."}
# A window far longer than any test, so that no window boundary falls inside one.
LONG = 10**6


def test_default_rate_limits_are_lines() -> None:
    assert dict(SandboxConfig().rate_limits) == dict(RATE_LIMITS) == {
        "reply": RateLimit(2000, 1),
        "push": RateLimit(2000, 1),
        "multicast": RateLimit(200, 1),
        "narrowcast": RateLimit(60, 3600),
        "broadcast": RateLimit(60, 3600),
    }


def test_push_past_its_limit_is_429_without_retry_after(serve: Callable[..., str], line_api: ApiFor) -> None:
    api = line_api(serve(rate_limits={"push": RateLimit(5, LONG)}))
    answers = [push(api) for _ in range(8)]
    assert [a.status for a in answers] == [200] * 5 + [429] * 3
    for answer in answers[5:]:
        assert answer.body == RATE_LIMITED
        assert "retry-after" not in answer.headers
        check_spec("/v2/bot/message/push", "post", answer)
    # Limits are per endpoint: multicast has its own (here: none).
    assert multicast(api, [USER]).status == 200


def test_reply_and_multicast_limits(serve: Callable[..., str], line_api: ApiFor) -> None:
    base = serve(rate_limits={"reply": RateLimit(2, LONG), "multicast": RateLimit(3, LONG)})
    api = line_api(base)
    assert [reply(api, mint_token(base)).status for _ in range(3)] == [200, 200, 429]
    assert [multicast(api, [USER]).status for _ in range(4)] == [200, 200, 200, 429]


def test_rate_windows_reset(serve: Callable[..., str], line_api: ApiFor) -> None:
    api = line_api(serve(rate_limits={"push": RateLimit(1, 1)}))
    statuses = [push(api).status for _ in range(3)]
    assert statuses.count(200) >= 1 and 429 in statuses
    time.sleep(1.05)
    assert push(api).status == 200


def test_broadcast_default_limit_is_60_an_hour(serve: Callable[..., str], line_api: ApiFor) -> None:
    # The real default, sent for real: 60 broadcasts pass, the 61st is refused.
    api = line_api(serve(quota=None))
    hour = time.time() // 3600
    statuses = [broadcast(api).status for _ in range(61)]
    if time.time() // 3600 != hour:
        pytest.skip("an hour window ended during the test; its counts are split")
    assert statuses == [200] * 60 + [429]
    assert narrowcast(api).status == 202  # narrowcast counts on its own


def test_quota_counts_recipients_of_accepted_sends(serve: Callable[..., str], line_api: ApiFor) -> None:
    base = serve(quota=10, friends=3)
    api = line_api(base)
    quota = call(api.get_message_quota_with_http_info)
    assert quota.body == {"type": "limited", "value": 10}
    check_spec("/v2/bot/message/quota", "get", quota)
    assert push(api).status == 200  # 1
    assert push(api, messages=[]).status == 400  # refused: not counted
    assert multicast(api, [user(1), user(2), user(3), user(4)]).status == 200  # 4 (5 objects would still be 4)
    assert broadcast(api).status == 200  # 3 friends
    assert reply(api, mint_token(base)).status == 200  # replies are free
    usage = call(api.get_message_quota_consumption_with_http_info)
    assert usage.body == {"totalUsage": 8}
    check_spec("/v2/bot/message/quota/consumption", "get", usage)
    over = multicast(api, [user(1), user(2), user(3)])  # 8 + 3 > 10
    assert over.status == 429
    assert over.body == {"message": "You have reached your monthly limit."}
    assert push(api).status == 200 and push(api).status == 200  # 10: exactly full
    assert push(api).status == 429
    assert call(api.get_message_quota_consumption_with_http_info).body == {"totalUsage": 10}


def test_unlimited_quota(serve: Callable[..., str], line_api: ApiFor) -> None:
    api = line_api(serve(quota=None))
    answer = call(api.get_message_quota_with_http_info)
    assert answer.body == {"type": "none"}
    check_spec("/v2/bot/message/quota", "get", answer)
