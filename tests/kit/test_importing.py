"""Batches prepared ahead on a thread of their own reach add_batch in file order, and a
failure on either side stops the import with that failure and leaves no thread behind."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session

from toolkit.kit import importing, tabular


def numbered(count: int) -> Iterator[tabular.NumberedRow]:
    return ((line, {"n": str(line)}) for line in range(2, count + 2))


def preparing_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "import-prepare"]


@pytest.fixture(autouse=True)
def _sessions(session: Session) -> None:
    """import_batches opens a session per batch: they join the test's transaction."""


def test_prepared_batches_arrive_in_file_order_each_prepared_once() -> None:
    prepared_on: set[str] = set()
    seen: list[list[int]] = []

    def prepare(batch: list[tabular.NumberedRow]) -> list[int]:
        prepared_on.add(threading.current_thread().name)
        return [line for line, _ in batch]

    def add(_session: Session, lines: list[int]) -> None:
        seen.append(lines)

    importing.import_batches(numbered(1_003), lines=1_004, add_batch=add, batch_rows=100, prepare=prepare)

    assert [line for lines in seen for line in lines] == list(range(2, 1_005))
    assert [len(lines) for lines in seen] == [100] * 10 + [3]
    assert prepared_on == {"import-prepare"}
    assert not preparing_threads()


def test_a_failure_while_preparing_is_raised_and_nothing_after_it_is_added() -> None:
    added: list[int] = []

    def prepare(batch: list[tabular.NumberedRow]) -> int:
        if batch[0][0] > 300:
            raise ValueError("unreadable line")
        return batch[0][0]

    with pytest.raises(ValueError, match="unreadable line"):
        importing.import_batches(numbered(1_000), lines=1_001, add_batch=lambda _s, first: added.append(first),
                                 batch_rows=100, prepare=prepare)

    assert added == [2, 102, 202]
    assert not preparing_threads()


def test_a_failure_while_adding_stops_the_preparing_thread() -> None:
    prepared: list[int] = []

    def prepare(batch: list[tabular.NumberedRow]) -> int:
        prepared.append(batch[0][0])
        return batch[0][0]

    def add(_session: Session, first: int) -> None:
        raise RuntimeError(f"database gone at line {first}")

    with pytest.raises(RuntimeError, match="line 2"):
        importing.import_batches(numbered(100_000), lines=100_001, add_batch=add, batch_rows=10, prepare=prepare)

    assert not preparing_threads()
    # bounded: it stopped a few batches ahead, not at the end of the file
    assert len(prepared) <= importing.PREPARED_AHEAD + 2
