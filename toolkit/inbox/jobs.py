"""Inbox work: handle stored webhook events, reply, retry, purge old ones.

A claimed batch costs three short transactions, not two or more per event:
  1. claim: lease up to BATCH due events (SKIP LOCKED on PostgreSQL) and commit, so that a
     worker killed from here on leaves leases that expire, and attempts that count;
  2. handle: every event in a SAVEPOINT of one transaction (a failing event rolls back
     alone and is retried with backoff), events with nothing to send finished, replies
     marked reply_pending — committed before anything is sent, so a crash while sending
     never leads to a second message;
  3. record: after the batch's replies went out, every delivery and every event's end.
Sending happens between 2 and 3, outside any transaction, on a few threads: LINE answers in
tens of milliseconds, and one call at a time left the worker waiting on the network. The
events of one user are sent one after another in the order they arrived.

On PostgreSQL a claim is split by user into LANES handled side by side, each in its own
transaction: handling waits on the database about half the time, and another lane's Python
fills it. One user's events are always in one lane, so they are handled and answered in
the order they arrived.

Also on PostgreSQL, a backlog's batches are sent in the background (the Outbox): while
batch N's replies wait on LINE, batch N+1 is claimed and handled. At most BATCHES_AHEAD
batches are out at once; a user's replies always go out on one send thread, so in order
across batches too; and a claim that empties the inbox waits until everything is sent,
so when process_events() returns 0 nothing is left in flight.
"""

from __future__ import annotations

import logging
import threading
import zlib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from typing import Any, TypeVar

from sqlalchemy import Engine

from toolkit import db
from toolkit.inbox import service
from toolkit.inbox.channel import NoChannel, line_client
from toolkit.inbox.handlers import install_event_handlers
from toolkit.kit.domains import Product
from toolkit.kit.background import job, work_loop
from toolkit.line import client as line
from toolkit.line.limits import MessageLimitError
from toolkit.settings import get_settings

log = logging.getLogger(__name__)

PROCESS_LOOP = "inbox.process_events"
# Events claimed (leased) at a time: one claim, one handling transaction and one recording
# transaction per batch. A batch is handled and sent in about a second even against a slow
# LINE (100 replies over SEND_THREADS at 50 ms each), well within the two-minute lease.
BATCH = 100
# Replies (and profile reads) in flight at once, for both lanes. At LINE's ~50 ms round
# trip a late reply costs two (the refused reply token, then the push): measured with every
# token expired, 16 threads drained 66 events/s, 32 drained 82/s, 64 no more. LINE allows
# 2,000 replies and 2,000 pushes a second.
SEND_THREADS = 32
# Batches handled at once (PostgreSQL only: SQLite has one writer at a time).
LANES = 2
# Batches whose replies may still be going out while the next claim is handled: at LINE's
# ~50 ms round trip a batch's sends take about as long as handling the next one.
BATCHES_AHEAD = 4
# How long a stopping worker waits for replies in flight (a reply cut short is marked
# "unknown" on the next attempt, never sent twice).
STOP_WAIT_S = 3.0
T = TypeVar("T")
R = TypeVar("R")


@work_loop(PROCESS_LOOP, idle_s=0.2)
def process_events() -> int:
    concurrent = _concurrent()
    lanes = LANES if concurrent else 1
    with db.session_scope() as session:
        ids = service.claim(session, limit=BATCH * lanes)
        claimed = service.claimed_events(session, ids)
    outbox = _outbox() if concurrent else None
    if claimed:
        parts = split_by_user(claimed, lanes)
        if len(parts) == 1:
            process_batch(parts[0], outbox=outbox)
        else:
            list(_lane_pool().map(lambda part: process_batch(part, outbox=outbox), parts))
    if outbox is not None and len(claimed) < BATCH * lanes:
        outbox.wait()  # the inbox is empty: let nothing be in flight when we say so
    return len(claimed)


def _concurrent() -> bool:
    """Lanes and background sends: PostgreSQL through an engine. A sessionmaker bound to
    one connection (the tests' joined transaction) cannot serve two transactions at once;
    nor can SQLite's single writer."""
    bind = db.get_sessionmaker().kw.get("bind")
    return isinstance(bind, Engine) and bind.dialect.name == "postgresql"


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
        return line_client(pool_size=SEND_THREADS)
    except NoChannel:
        return None


def process_batch(claimed: Sequence[service.ClaimedEvent], *, outbox: Outbox | None = None) -> None:
    """Handle a claimed batch, send its replies, record how that went (see the module doc):
    here, or, given an outbox, in the background (the outbox closes the LINE client)."""
    client = _client_or_none()
    replies: list[service.Reply] = []
    try:
        replies = _handle(claimed, client)
    finally:
        if not replies and client is not None:
            client.close()
    if not replies:
        return
    assert client is not None  # handle_batch plans no reply without one
    if outbox is not None:
        outbox.send(client, replies)
        return
    try:
        sent = send_replies(client, replies)
    finally:
        client.close()
    with db.session_scope() as session:
        service.record_sends(session, sent=sent)


def _handle(claimed: Sequence[service.ClaimedEvent], client: line.LineClient | None) -> list[service.Reply]:
    """Handle the batch in one transaction; the replies to send after its commit."""
    ids = [c.id for c in claimed]
    try:
        config = service.load_channel_config(get_settings().config_dir / "line.yaml")
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


def replies_by_user(replies: Sequence[service.Reply]) -> dict[str, list[service.Reply]]:
    """Each user's replies, oldest first (a reply without a user stands alone)."""
    per_user: dict[str, list[service.Reply]] = {}
    for reply in replies:  # oldest first
        per_user.setdefault(reply.user_id or f"event:{reply.event_id}", []).append(reply)
    return per_user


def send_in_order(client: line.LineClient, own: Sequence[service.Reply]) -> list[tuple[int, service.Sent]]:
    return [(reply.event_id, send_one(client, reply)) for reply in own]


def send_replies(client: line.LineClient, replies: Sequence[service.Reply]) -> dict[int, service.Sent]:
    """Send every reply, several users at once but each user's replies in order."""
    per_user = replies_by_user(replies).values()
    return {event_id: sent for pairs in _map(lambda own: send_in_order(client, own), per_user)
            for event_id, sent in pairs}


class Outbox:
    """Batches' replies sent in the background, then recorded, while the worker handles the
    next claim. A user's replies always go to the same send thread (one of SEND_THREADS,
    by a hash of the user), so they leave in the order they were planned, across batches
    too. send() blocks while BATCHES_AHEAD batches are still out."""

    def __init__(self, *, threads: int = SEND_THREADS, ahead: int = BATCHES_AHEAD) -> None:
        self._senders = [ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"inbox-send-{i}")
                         for i in range(threads)]
        self._recorder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inbox-record")
        self._room = threading.BoundedSemaphore(ahead)
        self._lock = threading.Lock()
        self._out: set[Future[None]] = set()

    def send(self, client: line.LineClient, replies: Sequence[service.Reply]) -> Future[None]:
        """Send the batch's replies, then record them and close `client` (the batch's)."""
        self._room.acquire()
        try:
            sends = [self._sender(user).submit(send_in_order, client, own)
                     for user, own in replies_by_user(replies).items()]
            recorded = self._recorder.submit(self._record, client, sends)
        except BaseException:
            self._room.release()
            raise
        with self._lock:
            self._out.add(recorded)
        recorded.add_done_callback(self._done)
        return recorded

    def wait(self, timeout_s: float | None = None) -> bool:
        """Until every batch sent so far is recorded (True), or the timeout (False)."""
        with self._lock:
            out = list(self._out)
        return not futures_wait(out, timeout=timeout_s).not_done

    def _sender(self, user: str) -> ThreadPoolExecutor:
        return self._senders[zlib.crc32(user.encode()) % len(self._senders)]

    def _record(self, client: line.LineClient, sends: list[Future[list[tuple[int, service.Sent]]]]) -> None:
        try:
            sent = {event_id: result for future in sends for event_id, result in future.result()}
            with db.session_scope() as session:
                service.record_sends(session, sent=sent)
        except Exception:  # the events stay reply_pending: their next attempt marks them unknown
            log.exception("recording a batch's replies failed")
        finally:
            client.close()
            self._room.release()

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._out.discard(future)


_the_outbox: Outbox | None = None


def _outbox() -> Outbox:
    global _the_outbox
    with _pool_lock:
        if _the_outbox is None:
            _the_outbox = Outbox()
    return _the_outbox


def handle_events_with(product: Product) -> Callable[[], None]:
    """Events go to the handlers the product's domains declare (the FAQ bot's text
    handler), from before the first event is handled until the loops stop."""
    return install_event_handlers(product.event_handlers)


def finish_sends_when_stopping(_product: Product) -> Callable[[], None]:
    """A stopping worker lets the replies in flight go out (for up to STOP_WAIT_S)."""

    def finish() -> None:
        if _the_outbox is not None and not _the_outbox.wait(STOP_WAIT_S):
            log.warning("worker stopped with replies in flight: they are marked unknown, never resent")

    return finish


def send_one(client: line.LineClient, reply: service.Reply) -> service.Sent:
    try:
        return _deliver(client, reply)
    except MessageLimitError as exc:
        # Refused before anything was sent, and it would be every time.
        return service.Sent(line.FAILED, f"reply not sendable: {exc}")
    except Exception as exc:  # noqa: BLE001 - unknown whether LINE got it: delivery stays as it is
        # (reply_pending: the retry records it as unknown and never sends it again;
        # push_pending: the retry pushes with the same retry key, which LINE deduplicates).
        log.warning("sending the reply to webhook event %s failed: %s", reply.event_id, exc)
        return service.Sent(None, service.describe(exc), retry_later=True)


def _deliver(client: line.LineClient, reply: service.Reply) -> service.Sent:
    if not reply.push_due:
        delivery, result = line.send_reply(client, reply_token=reply.reply_token, messages=reply.messages,
                                           push_allowed=reply.push_allowed)
        if delivery != line.PUSH_PENDING:
            return service.Sent(delivery, result.error if result and delivery != line.REPLY_SENT else None)
    assert reply.user_id is not None  # push_allowed needs one
    result = client.push(reply.user_id, reply.messages, retry_key=line.retry_key("reply-push", reply.webhook_event_id))
    if result.delivered:
        return service.Sent(line.PUSH_SENT)
    if result.retryable:
        return service.Sent(line.PUSH_PENDING, f"push fallback got {result.status}: {result.error}", retry_later=True)
    return service.Sent(line.FAILED, f"push fallback refused ({result.status}): {result.error}")


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

    return dict(zip((c.id for c in wanted), _map(read, wanted), strict=True))


_pool: ThreadPoolExecutor | None = None
_lanes_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _lane_pool() -> ThreadPoolExecutor:
    global _lanes_pool
    with _pool_lock:
        if _lanes_pool is None:
            _lanes_pool = ThreadPoolExecutor(max_workers=LANES, thread_name_prefix="inbox-lane")
    return _lanes_pool


def _map(fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """fn over items on the send threads, results in the order of items."""
    items = list(items)
    if len(items) <= 1:
        return [fn(item) for item in items]
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=SEND_THREADS, thread_name_prefix="inbox-send")
    return list(_pool.map(fn, items))


@job("inbox.purge_handled", cron="15 4 * * *")
def purge_handled() -> int:
    with db.session_scope() as session:
        return service.purge_handled(session, older_than_days=get_settings().webhook_retention_days)
