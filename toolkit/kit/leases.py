"""Keeping a lease alive while the work it covers runs: short leases let another worker
take over a dead one's rows within seconds, and a live worker renews them so that slow
work (a batch waiting on an LLM) is never taken over while it is still going."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)


@contextmanager
def kept_alive(renew: Callable[[], object], *, every_s: float, name: str = "lease-renewal") -> Iterator[None]:
    """Call `renew()` every `every_s` seconds on a thread of its own until the block ends.
    A failed renewal is logged and tried again next time: the lease may then run out,
    which a lease is for."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(every_s):
            try:
                renew()
            except Exception as exc:  # noqa: BLE001 - see the docstring
                log.warning("renewing a lease failed: %s", exc)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
