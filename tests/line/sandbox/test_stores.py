"""The store contract under concurrency: racing requests from separate stores (for the DB
store: separate engines, as separate serve processes have) agree on every count."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from linebot.v3.messaging import MessagingApi

from tests.line.sandbox.conftest import StoreFactory
from tests.line.sandbox.helpers import USER, mint_token, push, record, reply, retry_key
from toolkit.kit.clock import utcnow
from toolkit.line.sandbox.store import Admission, Delivery, Outcome

WORKERS = 8
ApiFor = Callable[[str], MessagingApi]


def _race(new_store: StoreFactory, attempts: int, action: Callable[[Any, int], Any]) -> list[Any]:
    """Run `attempts` actions over WORKERS threads, each thread with its own store."""
    stores = [new_store() for _ in range(WORKERS)]
    with ThreadPoolExecutor(WORKERS) as pool:
        return list(pool.map(lambda i: action(stores[i % WORKERS], i), range(attempts)))


def _delivery(key: str | None = None) -> Delivery:
    return Delivery(endpoint="push", request_id=str(uuid.uuid4()), at=utcnow(), to=[USER],
                    messages=[{"type": "text", "text": "x"}], retry_key=key, status=200, accepted=True,
                    sent_messages=[{"id": "1"}])


def _admission(**kwargs: Any) -> Admission:
    return Admission(retry_since=utcnow() - timedelta(days=1), **kwargs)


def test_rate_counter_admits_exactly_the_limit(new_store: StoreFactory) -> None:
    allowed = _race(new_store, 200, lambda store, _i: store.hit("rate:push", bucket=7, limit=50))
    assert allowed.count(True) == 50


def test_one_of_racing_requests_wins_a_retry_key(new_store: StoreFactory) -> None:
    key = retry_key()
    deliveries = [_delivery(key) for _ in range(24)]
    results = _race(new_store, 24, lambda store, i: store.accept(deliveries[i], admission=_admission()))
    outcomes = Counter(r.outcome for r in results)
    assert outcomes == {Outcome.ACCEPTED: 1, Outcome.DUPLICATE: 23}
    winner = next(d for d, r in zip(deliveries, results) if r.outcome is Outcome.ACCEPTED)
    assert {r.accepted_request_id for r in results if r.outcome is Outcome.DUPLICATE} == {winner.request_id}
    assert len(new_store().messages()) == 1  # only the winner is in the record


def test_a_reply_token_is_used_once_under_a_race(new_store: StoreFactory) -> None:
    store = new_store()
    store.add_reply_token("tok", USER, expires_at=utcnow() + timedelta(minutes=1))
    results = _race(new_store, 16, lambda s, _i: s.accept(_delivery(), admission=_admission(reply_token="tok")))
    assert Counter(r.outcome for r in results) == {Outcome.ACCEPTED: 1, Outcome.INVALID_REPLY_TOKEN: 15}


def test_quota_is_never_overspent(new_store: StoreFactory) -> None:
    admission = _admission(cost=1, quota=10, quota_bucket=202601)
    results = _race(new_store, 30, lambda s, _i: s.accept(_delivery(), admission=admission))
    assert Counter(r.outcome for r in results) == {Outcome.ACCEPTED: 10, Outcome.QUOTA_EXCEEDED: 20}
    assert new_store().count("quota", bucket=202601) == 10


def test_a_refused_accept_leaves_nothing_behind(new_store: StoreFactory) -> None:
    store = new_store()
    key = retry_key()
    result = store.accept(_delivery(key), admission=_admission(cost=5, quota=4, quota_bucket=1))
    assert result.outcome is Outcome.QUOTA_EXCEEDED
    assert store.messages() == [] and store.count("quota", bucket=1) == 0
    assert store.accept(_delivery(key), admission=_admission()).outcome is Outcome.ACCEPTED  # key still free


def test_old_rate_windows_are_dropped(new_store: StoreFactory) -> None:
    store = new_store()
    store.hit("rate:push", bucket=1, limit=5)
    store.hit("rate:push", bucket=2, limit=5)
    assert store.count("rate:push", bucket=1) == 0 and store.count("rate:push", bucket=2) == 1


def test_purge_forgets_expired_tokens_and_keys(new_store: StoreFactory) -> None:
    store = new_store()
    now = utcnow()
    store.add_reply_token("old", USER, expires_at=now - timedelta(seconds=1))
    store.add_reply_token("new", USER, expires_at=now + timedelta(minutes=1))
    key = retry_key()
    store.accept(_delivery(key), admission=_admission())
    store.purge(now=now, retry_since=now + timedelta(seconds=1))
    assert store.reply_token_user("new", now=now) == USER and store.reply_token_user("old", now=now) is None
    assert store.accept(_delivery(key), admission=_admission()).outcome is Outcome.ACCEPTED


def test_two_servers_over_one_store_share_everything(
    serve: Callable[..., str], new_store: StoreFactory, line_api: ApiFor,
) -> None:
    first, second = serve(new_store()), serve(new_store())
    a, b = line_api(first), line_api(second)
    key = retry_key()
    accepted = push(a, key=key)
    again = push(b, key=key)
    assert (accepted.status, again.status) == (200, 409)
    assert again.headers["x-line-accepted-request-id"] == accepted.request_id
    token = mint_token(first)
    assert reply(b, token).status == 200 and reply(a, token).status == 400
    assert record(first) == record(second) and len(record(first)) == 4
