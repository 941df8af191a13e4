"""The product's clock: the one place services read the time, always aware UTC.

Real time by default. Tests freeze or move it (`frozen`, `moved`); a demo or a browser test
starts a server with `TOOLKIT_CLOCK_OFFSET` (the worker it starts inherits it) or, with the
LINE sandbox on, sets it at run time through `PUT /api/v1/clock`. Everything that stores or
compares a time (column defaults, leases, quiet hours, schedules, as-of builds) calls
`utcnow()`, so moving the clock moves all of them. Refused in production (settings).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone


@dataclass(frozen=True)
class ClockState:
    offset: timedelta = timedelta(0)  # added to the real time
    frozen_at: datetime | None = None  # when set, the time stands still here

    @property
    def moved(self) -> bool:
        return self.frozen_at is not None or self.offset != timedelta(0)


REAL_TIME = ClockState()
_state = REAL_TIME
_lock = threading.Lock()


def real_utcnow() -> datetime:
    """The machine's time, for what must not move with the product's clock (timeouts,
    rate-limit windows of the LINE sandbox)."""
    return datetime.now(timezone.utc)


def utcnow() -> datetime:
    state = _state
    if state.frozen_at is not None:
        return state.frozen_at
    return real_utcnow() + state.offset


def state() -> ClockState:
    return _state


def set_state(new: ClockState) -> ClockState:
    """Replace the clock's setting; returns the previous one."""
    global _state
    if new.frozen_at is not None and new.frozen_at.tzinfo is None:
        raise ValueError("the clock needs an aware datetime")
    with _lock:
        previous, _state = _state, new
    return previous


def set_time(at: datetime, *, frozen: bool = False) -> ClockState:
    """Make it `at` now: frozen there, or running on from there."""
    if at.tzinfo is None:
        raise ValueError("the clock needs an aware datetime")
    at = at.astimezone(timezone.utc)
    return set_state(ClockState(frozen_at=at) if frozen else ClockState(offset=at - real_utcnow()))


@contextmanager
def frozen(at: datetime) -> Iterator[None]:
    """The time stands still at `at` inside the block (tests)."""
    previous = set_time(at, frozen=True)
    try:
        yield
    finally:
        set_state(previous)


@contextmanager
def moved(by: timedelta) -> Iterator[None]:
    """The time runs, `by` ahead of the machine's (tests)."""
    previous = set_state(ClockState(offset=_state.offset + by, frozen_at=_state.frozen_at and _state.frozen_at + by))
    try:
        yield
    finally:
        set_state(previous)


_OFFSET = re.compile(r"^([+-]?)(\d+(?:\.\d+)?)([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class BadClockSetting(ValueError):
    pass


def parse_setting(value: str) -> ClockState:
    """TOOLKIT_CLOCK_OFFSET: an offset ("+3d", "-90m", "3600") or the time it is now
    (ISO 8601 with an offset: "2026-12-24T20:00:00+08:00"; add "@frozen" to stop it there)."""
    text = value.strip()
    match = _OFFSET.match(text)
    if match:
        sign, amount, unit = match.groups()
        seconds = float(amount) * _UNITS[unit] * (-1 if sign == "-" else 1)
        return ClockState(offset=timedelta(seconds=seconds))
    frozen_there = text.endswith("@frozen")
    try:
        at = datetime.fromisoformat(text.removesuffix("@frozen"))
    except ValueError:
        raise BadClockSetting(f"{value!r} is neither an offset like +3d / -90m / 3600 nor an ISO 8601 time") from None
    if at.tzinfo is None:
        raise BadClockSetting(f"{value!r} needs a UTC offset, e.g. 2026-12-24T20:00:00+08:00")
    at = at.astimezone(timezone.utc)
    return ClockState(frozen_at=at) if frozen_there else ClockState(offset=at - real_utcnow())
