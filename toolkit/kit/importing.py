"""What every `toolkit <domain> import` shares: a progress bar on stderr and rows
imported in batches, one transaction a batch."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import islice
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy.orm import Session

from toolkit.db import session_scope
from toolkit.kit import tabular

# Rows per transaction: a crash loses at most one batch, and re-running resumes (imports are idempotent).
BATCH_ROWS = 500
stderr = Console(stderr=True)


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
    add_batch: Callable[[Session, list[tabular.NumberedRow]], None], batch_rows: int = BATCH_ROWS,
) -> None:
    """Feed the rows to `add_batch` `batch_rows` at a time, one transaction a batch, with a
    progress bar by line number up to `lines`."""
    with progress_bar("importing") as progress:
        task = progress.add_task("import", total=lines)
        while batch := list(islice(rows, batch_rows)):
            with session_scope() as session:
                add_batch(session, batch)
            progress.update(task, completed=batch[-1][0])
        progress.update(task, completed=lines)


def summary(counts: dict[str, int]) -> str:
    return ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items())
