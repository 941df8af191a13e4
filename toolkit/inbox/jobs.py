"""Inbox work: handle stored webhook events and send their replies; purge old ones.

A claimed batch costs two short transactions, not two or more per event:
  1. claim: lease up to BATCH due events (SKIP LOCKED on PostgreSQL) and commit, so that a
     worker killed from here on leaves leases that expire, and attempts that count (the
     lease is short and renewed while the batch is handled, so another worker takes over
     a dead one's events within seconds, never a live one's);
  2. handle: every event in a SAVEPOINT of one transaction (a failing event rolls back
     alone and is retried with backoff), every other event finished, and its reply
     enqueued as an outbound message leased to this worker (the messaging domain) —
     committed before anything is sent.
The replies then go out through the outbound pipeline (messaging.sender), outside any
transaction, on a few threads, each recorded as it completes. A worker killed while
sending leaves leased messages that the sender loop (messaging.send_due) takes over when
their lease runs out: a reply token LINE refuses as used is never followed by a push, a
push is repeated with its retry key, so nobody is answered twice. One user's replies go
out one after another in the order their events arrived.

On PostgreSQL a claim is split by user into LANES handled side by side, each in its own
transaction: handling waits on the database about half the time, and another lane's Python
fills it. One user's events are always in one lane, so they are handled and answered in
the order they arrived.

Also on PostgreSQL, a backlog's replies are sent in the background (messaging's Sender):
while batch N's replies wait on LINE, batch N+1 is claimed and handled. A claim that
empties the inbox waits until everything is sent, so when process_events() returns 0
nothing is left in flight.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from sqlalchemy import Engine

from toolkit import db, defaults
from toolkit.inbox import service
from toolkit.inbox.handlers import install_event_handlers
from toolkit.kit.background import job, work_loop
from toolkit.kit.domains import Product
from toolkit.kit.leases import kept_alive
from toolkit.line import client as line
from toolkit.messaging import sender
from toolkit.messaging.channel import NoChannel, line_client
from toolkit.messaging.jobs import concurrent
from toolkit.messaging.schemas import Claimed
from toolkit.settings import get_settings

log = logging.getLogger(__name__)

PROCESS_LOOP = "inbox.process_events"
# Events claimed (leased) at a time: one claim and one handling transaction per batch.
BATCH = 100
# Batches handled at once (PostgreSQL only: SQLite has one writer at a time).
LANES = 2


@work_loop(PROCESS_LOOP, idle_s=0.2)
def process_events() -> int:
    background = concurrent()
    lanes = LANES if background else 1
    with db.session_scope() as session:
        ids = service.claim(session, limit=BATCH * lanes)
        claimed = service.claimed_events(session, ids)
    if claimed:
        with _leases_kept(ids):
            parts = split_by_user(claimed, lanes)
            if len(parts) == 1:
                process_batch(parts[0], background=background)
            else:
                list(_lane_pool().map(lambda part: process_batch(part, background=background), parts))
    if background and len(claimed) < BATCH * lanes:
        sender.background_sender().wait()  # the inbox is empty: let nothing be in flight when we say so
    return len(claimed)


def _leases_kept(ids: Sequence[int]) -> AbstractContextManager[None]:
    """The claim's leases renewed while it is handled, from another connection: needs a
    sessionmaker on an engine (not the tests' one joined connection)."""
    if not isinstance(db.get_sessionmaker().kw.get("bind"), Engine):
        return nullcontext()

    def renew() -> None:
        with db.session_scope() as session:
            service.renew(session, ids)

    return kept_alive(renew, every_s=service.LEASE.total_seconds() / 3, name="inbox-lease")


def split_by_user(claimed: Sequence[service.ClaimedEvent], lanes: int) -> list[list[service.ClaimedEvent]]:
    """At most `lanes` parts of about equal size, every user's events in one part and in
    their order; events without a user go wherever there is room."""
    per_user: dict[str, list[service.ClaimedEvent]] = {}
    for event in claimed:  # oldest first
        per_user.setdefault(event.user_id or f"event:{event.id}", []).append(event)
    parts: list[list[service.ClaimedEvent]] = [[] for _ in range(max(lanes, 1))]
    for own in sorted(per_user.values(), key=len, reverse=True):
        min(parts, key=len).extend(own)
    return [sorted(part, key=lambda e: e.id) for part in parts if part]


def _client_or_none() -> line.LineClient | None:
    try:
        return line_client(pool_size=sender.SEND_THREADS)
    except NoChannel:
        return None


def process_batch(claimed: Sequence[service.ClaimedEvent], *, background: bool = False) -> None:
    """Handle a claimed batch, then send its replies and record each as it goes out: here,
    or in the background (the sender closes the LINE client when done)."""
    client = _client_or_none()
    replies: list[Claimed] = []
    try:
        replies = _handle(claimed, client)
    finally:
        if not replies and client is not None:
            client.close()
    if not replies:
        return
    assert client is not None  # handle_batch leases no reply without one
    if background:
        sender.background_sender().submit(client, replies)
        return
    try:
        sender.send_now(client, replies)
    finally:
        client.close()


def _handle(claimed: Sequence[service.ClaimedEvent], client: line.LineClient | None) -> list[Claimed]:
    """Handle the batch in one transaction; the replies to send after its commit."""
    ids = [c.id for c in claimed]
    try:
        config = service.load_channel_config(defaults.path("line.yaml", get_settings().config_dir))
        # Outside any transaction: on SQLite an open one holds the write lock, and the
        # mounted sandbox answering these calls needs it too.
        profiles = _profiles(client, claimed)
        with db.session_scope() as session:
            replies = service.handle_batch(session, event_ids=ids, config=config, profiles=profiles,
                                           can_send=client is not None)
    except Exception as exc:  # noqa: BLE001 - the batch as a whole (single events fail alone)
        # E.g. an unreadable line.yaml or a lost database connection: nothing of the batch
        # was committed or sent, so every event is simply tried again later.
        log.warning("webhook batch of %d events failed: %s", len(ids), exc)
        with db.session_scope() as session:
            for event_id in ids:
                service.fail(session, event_id=event_id, error=service.describe(exc))
        return []
    return replies


def handle_events_with(product: Product) -> Callable[[], None]:
    """Events go to the handlers the product's domains declare (the FAQ bot's text
    handler), from before the first event is handled until the loops stop."""
    return install_event_handlers(product.event_handlers)


def _profiles(client: line.LineClient | None, claimed: Sequence[service.ClaimedEvent]) -> dict[int, dict[str, Any]]:
    """LINE profiles (display name, language) of the users who followed, for their contact."""
    wanted = [c for c in claimed if c.event_type == "follow" and not c.handled and c.user_id]
    if client is None or not wanted:
        return {}

    def read(event: service.ClaimedEvent) -> dict[str, Any]:
        try:
            result = client.profile(event.user_id or "")
        except Exception as exc:  # noqa: BLE001 - a profile is nice to have, never required
            log.info("no LINE profile for %s: %s", event.user_id, exc)
            return {}
        return result.body if result.status == 200 else {}

    if len(wanted) == 1:
        return {wanted[0].id: read(wanted[0])}
    return dict(zip((c.id for c in wanted), sender.send_pool().map(read, wanted), strict=True))


_lanes_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _lane_pool() -> ThreadPoolExecutor:
    global _lanes_pool
    with _pool_lock:
        if _lanes_pool is None:
            _lanes_pool = ThreadPoolExecutor(max_workers=LANES, thread_name_prefix="inbox-lane")
    return _lanes_pool


@job("inbox.purge_handled", cron="15 4 * * *")
def purge_handled() -> int:
    with db.session_scope() as session:
        return service.purge_handled(session, older_than_days=get_settings().webhook_retention_days)
