"""Sending claimed rows to LINE and recording each send as it completes.

A claim is cut into units: one recipient's rows (sent one after another, in order), or a
group's rows (one multicast per 500). Units go out on SEND_THREADS threads with no
transaction open; every completed unit is recorded right away — by the caller's thread
(send_now), or by a recorder thread that writes whatever has completed in one short
transaction (Sender, for a backlog on PostgreSQL, where the next claim is handled while
this one's sends wait on LINE). A crash therefore loses at most the sends in flight, and
those rows are leased, not lost: claim() takes them again when the lease runs out.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass, field

from sqlalchemy import text

from toolkit import db
from toolkit.kit.clock import utcnow
from toolkit.kit.domains import Product
from toolkit.line import client as line
from toolkit.line.limits import MAX_MULTICAST_RECIPIENTS
from toolkit.messaging import service
from toolkit.messaging.schemas import Claimed, SendOutcome
from toolkit.messaging.sending import deliver, deliver_group

log = logging.getLogger(__name__)

# Sends in flight at once. At LINE's ~50 ms round trip a late reply costs two calls (the
# refused token, then the push): measured with every token expired, 16 threads drained 66
# events/s, 32 drained 82/s, 64 no more. LINE allows 2,000 replies and pushes a second.
SEND_THREADS = 32
# Claims whose sends may still be out while the next one is handled (Sender).
BATCHES_AHEAD = 4
# Outcomes written in one recording transaction at most, and how long the recorder waits
# for more after the first (a group commit): a commit per send would cost a disk flush per
# message. A crash loses at most this much of records, and what it loses is retried safely.
RECORD_MAX = 500
RECORD_LINGER_S = 0.02
# How long a stopping worker waits for sends in flight (the rest are retried safely).
STOP_WAIT_S = 3.0


def units_in_order(claimed: Sequence[Claimed]) -> list[list[Claimed]]:
    """The claim cut into units: a recipient's rows in order, or up to 500 rows of a group."""
    units: dict[tuple[str, str], list[Claimed]] = {}
    for row in sorted(claimed, key=lambda r: r.id):
        key = ("group", row.group_key) if row.group_key else ("to", row.recipient)
        units.setdefault(key, []).append(row)
    cut: list[list[Claimed]] = []
    for (kind, _), rows in units.items():
        if kind == "group":
            cut.extend(rows[i:i + MAX_MULTICAST_RECIPIENTS] for i in range(0, len(rows), MAX_MULTICAST_RECIPIENTS))
        else:
            cut.append(rows)
    return cut


def unit_key(unit: Sequence[Claimed]) -> str:
    return unit[0].group_key or unit[0].recipient


def attempt(client: line.LineClient, unit: Sequence[Claimed]) -> list[SendOutcome]:
    """Send a unit. A row whose lease ran out before its turn is not sent (nor any after it
    to the same person): another sender may have taken it over; claim() gets it again."""
    if unit and unit[0].group_key:
        live = [r for r in unit if utcnow() < r.locked_until]
        return deliver_group(client, live)
    outcomes: list[SendOutcome] = []
    for row in unit:
        if utcnow() >= row.locked_until:
            log.warning("outbound message %s: lease ran out before its send; left for a retry", row.id)
            break
        outcomes.append(deliver(client, row))
    return outcomes


def record_now(outcomes: Sequence[SendOutcome]) -> None:
    if not outcomes:
        return
    try:
        with db.session_scope() as session:
            if session.get_bind().dialect.name == "postgresql":
                # No wait for the disk: a record lost in a database crash leaves its row
                # leased, and the retry finds out safely (a used token, a 409).
                session.execute(text("SET LOCAL synchronous_commit TO off"))
            service.record(session, outcomes)
    except Exception:  # the rows stay leased: when the lease runs out they are retried safely
        log.exception("recording %d sends failed", len(outcomes))


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def send_pool() -> ThreadPoolExecutor:
    """SEND_THREADS threads for work that waits on LINE (sends, profile reads)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=SEND_THREADS, thread_name_prefix="messaging-send")
    return _pool


def send_now(client: line.LineClient, claimed: Sequence[Claimed]) -> None:
    """Send the claim on the send threads; on this thread, record what has completed each
    time a unit completes (all that completed meanwhile in one transaction)."""
    units = units_in_order(claimed)
    if len(units) == 1:
        record_now(attempt(client, units[0]))
        return
    pending = {send_pool().submit(attempt, client, unit) for unit in units}
    while pending:
        done, pending = futures_wait(pending, return_when=FIRST_COMPLETED)
        record_now([outcome for future in done for outcome in future.result()])


@dataclass
class _Batch:
    """A claim handed to the Sender: done when its every unit is recorded."""

    client: line.LineClient
    units_left: int
    done: Future[None] = field(default_factory=Future)


class Sender:
    """Claims sent in the background and recorded as their sends complete, while the caller
    handles the next claim. A recipient's (or group's) units always go to the same send
    thread, so one person's messages leave in order across claims too. submit() blocks
    while BATCHES_AHEAD claims are out."""

    def __init__(self, *, threads: int = SEND_THREADS, ahead: int = BATCHES_AHEAD) -> None:
        self._senders = [ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"messaging-send-{i}")
                         for i in range(threads)]
        self._room = threading.BoundedSemaphore(ahead)
        self._completed: queue.Queue[tuple[_Batch, list[SendOutcome]]] = queue.Queue()
        self._lock = threading.Lock()
        self._out: set[Future[None]] = set()
        self._recorder = threading.Thread(target=self._record_forever, name="messaging-record", daemon=True)
        self._recorder.start()

    def submit(self, client: line.LineClient, claimed: Sequence[Claimed]) -> Future[None]:
        """Send the claim, record it, then close `client` (the claim's)."""
        units = units_in_order(claimed)
        batch = _Batch(client, len(units))
        if not units:
            client.close()
            batch.done.set_result(None)
            return batch.done
        self._room.acquire()
        with self._lock:
            self._out.add(batch.done)
        for unit in units:
            self._thread(unit_key(unit)).submit(self._send, batch, unit)
        return batch.done

    def wait(self, timeout_s: float | None = None) -> bool:
        """Until every claim submitted so far is recorded (True), or the timeout (False)."""
        with self._lock:
            out = list(self._out)
        return not futures_wait(out, timeout=timeout_s).not_done

    def _thread(self, key: str) -> ThreadPoolExecutor:
        return self._senders[zlib.crc32(key.encode()) % len(self._senders)]

    def _send(self, batch: _Batch, unit: Sequence[Claimed]) -> None:
        try:
            outcomes = attempt(batch.client, unit)
        except Exception:  # noqa: BLE001 - attempt() catches LINE's failures; this is a bug: retried later
            log.exception("sending a unit of %d outbound messages failed", len(unit))
            outcomes = []
        self._completed.put((batch, outcomes))

    def _record_forever(self) -> None:
        while True:
            completed = [self._completed.get()]
            count = len(completed[0][1])
            until = time.monotonic() + RECORD_LINGER_S
            while count < RECORD_MAX:
                try:
                    item = self._completed.get(timeout=max(until - time.monotonic(), 0))
                except queue.Empty:
                    break
                completed.append(item)
                count += len(item[1])
            record_now([outcome for _, outcomes in completed for outcome in outcomes])
            for batch, _ in completed:
                batch.units_left -= 1
                if batch.units_left == 0:
                    self._finish(batch)

    def _finish(self, batch: _Batch) -> None:
        try:
            batch.client.close()
        finally:
            self._room.release()
            with self._lock:
                self._out.discard(batch.done)
            batch.done.set_result(None)


_the_sender: Sender | None = None


def background_sender() -> Sender:
    global _the_sender
    with _pool_lock:
        if _the_sender is None:
            _the_sender = Sender()
    return _the_sender


def finish_sends_when_stopping(_product: Product) -> Callable[[], None]:
    """A stopping worker lets the sends in flight go out and be recorded (for up to
    STOP_WAIT_S); the rest stay leased and are retried, never sent twice."""

    def finish() -> None:
        if _the_sender is not None and not _the_sender.wait(STOP_WAIT_S):
            log.warning("worker stopped with sends in flight: they are retried when their lease runs out")

    return finish
