"""Memos for one unit of work whose caller vouches that what is memoised does not change
while it runs.

The inbox worker handles a batch of webhook events in one transaction; every event of it
asks for the same purposes, the same FAQ index fingerprint, the same users' contacts. The
batch opens a scope and those lookups are made once for it. Outside a scope nothing is
memoised: a request that edits an FAQ entry and then tries a question must see its edit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy.orm import Session

T = TypeVar("T")
_SCOPE = "toolkit.memo"


@contextmanager
def memo_scope(session: Session) -> Iterator[dict[str, Any]]:
    """Memoise in `session` until the block ends. The caller vouches that nothing it runs
    changes what is memoised (or that it forgets what it changed)."""
    previous = session.info.get(_SCOPE)
    scope: dict[str, Any] = {}
    session.info[_SCOPE] = scope
    try:
        yield scope
    finally:
        if previous is None:
            session.info.pop(_SCOPE, None)
        else:
            session.info[_SCOPE] = previous


def memoised(session: Session, key: str, load: Callable[[], T]) -> T:
    """`load()` once per scope; every time outside one."""
    scope = session.info.get(_SCOPE)
    if scope is None:
        return load()
    if key not in scope:
        scope[key] = load()
    return scope[key]


def in_scope(session: Session, key: str) -> Any | None:
    """What the scope holds under `key` (None outside a scope or when nothing is there)."""
    scope = session.info.get(_SCOPE)
    return None if scope is None else scope.get(key)


def remember(session: Session, key: str, value: Any) -> None:
    """Put `value` in the scope (no-op outside one)."""
    scope = session.info.get(_SCOPE)
    if scope is not None:
        scope[key] = value
