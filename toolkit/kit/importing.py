"""What every `toolkit <domain> import` shares: a progress bar on stderr and rows
imported in batches, one transaction a batch."""

from __future__ import annotations

import gc
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from itertools import islice
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy.orm import Session

from toolkit.db import session_scope
from toolkit.kit import tabular

# Rows per transaction: a crash loses at most one batch, and re-running resumes (imports are idempotent).
BATCH_ROWS = 500
# Batches prepared ahead of the one being written: enough to keep the database busy, few
# enough that memory stays flat whatever the file's size.
PREPARED_AHEAD = 2
stderr = Console(stderr=True)
Prepared = TypeVar("Prepared")


def progress_bar(label: str) -> Progress:
    # On a terminal the bar disappears when done; in a log its final state stays.
    columns = [TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    return Progress(*columns, console=stderr, transient=stderr.is_terminal)


def import_in_batches(
    rows: Iterator[tabular.NumberedRow], *, lines: int, add: Callable[[Session, int, dict[str, Any] | str], None],
) -> None:
    """Feed every row to `add` (which records its own outcome), committing every
    BATCH_ROWS rows, with a progress bar by line number up to `lines`."""

    def add_each(session: Session, batch: list[tabular.NumberedRow]) -> None:
        for line, row in batch:
            add(session, line, row)

    import_batches(rows, lines=lines, add_batch=add_each)


def import_batches(
    rows: Iterator[tabular.NumberedRow], *, lines: int,
    add_batch: Callable[[Session, Any], None], batch_rows: int = BATCH_ROWS,
    prepare: Callable[[list[tabular.NumberedRow]], Any] | None = None,
) -> None:
    """Feed the rows to `add_batch` `batch_rows` at a time, one transaction a batch, with a
    progress bar by line number up to `lines`. With `prepare`, each batch goes through it
    first on a thread of its own, ahead of the batch being written: parsing the next rows
    then fills the time the database spends on this one (`add_batch` gets what it returns)."""
    batches = _batches(rows, batch_rows)
    ready: Iterable[tuple[int, Any]] = (
        ((batch[-1][0], batch) for batch in batches) if prepare is None else _ahead(batches, prepare))
    with progress_bar("importing") as progress, _few_collections():
        task = progress.add_task("import", total=lines)
        for last_line, batch in ready:
            with session_scope() as session:
                add_batch(session, batch)
            progress.update(task, completed=last_line)
        progress.update(task, completed=lines)


def _batches(rows: Iterator[tabular.NumberedRow], size: int) -> Iterator[list[tabular.NumberedRow]]:
    while batch := list(islice(rows, size)):
        yield batch


_DONE = object()


def _ahead(batches: Iterator[list[tabular.NumberedRow]],
           prepare: Callable[[list[tabular.NumberedRow]], Prepared]) -> Iterator[tuple[int, Prepared]]:
    """The batches prepared on a thread, at most PREPARED_AHEAD waiting; an exception there
    is raised here. Leaving early (an error in add_batch) stops the thread."""
    ready: queue.Queue[Any] = queue.Queue(maxsize=PREPARED_AHEAD)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for batch in batches:
                if not put((batch[-1][0], prepare(batch))):
                    return
            put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            put(exc)

    thread = threading.Thread(target=produce, name="import-prepare", daemon=True)
    thread.start()
    try:
        while (item := ready.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


@contextmanager
def _few_collections() -> Iterator[None]:
    """A big import allocates millions of short-lived, acyclic objects: with the default
    thresholds the cyclic collector runs thousands of times over everything alive (a
    measured tenth of the run). Objects from before the import are frozen out of its scans."""
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


def summary(counts: dict[str, int]) -> str:
    return ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items())
