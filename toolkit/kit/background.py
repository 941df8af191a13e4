"""Jobs and work loops: `@job("domain.name", cron=...)` and `@work_loop("domain.name")` next
to the function they describe.

The decorators only describe: they attach a JobSpec or WorkLoop to the function and
register nothing. A domain lists its jobs and loops in its `domain.py`, and the composition
root (`toolkit/domains.py`) is the one place the worker learns them from. A job takes ids
or JSON only and opens its own session.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class JobSpec:
    name: str
    func: Callable[..., Any]
    cron: str | None = None
    every_s: float | None = None


def job(name: str, *, cron: str | None = None, every_s: float | None = None) -> Callable[[F], F]:
    def describe(func: F) -> F:
        func.job_spec = JobSpec(name, func, cron, every_s)  # type: ignore[attr-defined]
        return func

    return describe


def spec_of_job(func: Callable[..., Any]) -> JobSpec:
    spec = getattr(func, "job_spec", None)
    if not isinstance(spec, JobSpec):
        raise TypeError(f"{func.__qualname__} is not a @job")
    return spec


# One wake-up signal per loop name in this process: the webhook nudges the inbox loop after
# storing events without knowing the loop's function (and without importing jobs).
_wake_signals: dict[str, threading.Event] = {}
_wake_lock = threading.Lock()


def wake_signal(name: str) -> threading.Event:
    with _wake_lock:
        return _wake_signals.setdefault(name, threading.Event())


def wake(name: str) -> None:
    """Nudge a loop in this process (e.g. the webhook after storing events)."""
    wake_signal(name).set()


@dataclass(frozen=True)
class WorkLoop:
    """A function the worker calls again and again; it returns how much it did, and the
    worker waits `idle_s` (or until woken) when it did nothing."""

    name: str
    func: Callable[[], int]
    idle_s: float

    @property
    def wake(self) -> threading.Event:
        return wake_signal(self.name)


def work_loop(name: str, *, idle_s: float = 0.5) -> Callable[[F], F]:
    def describe(func: F) -> F:
        func.work_loop = WorkLoop(name, func, idle_s)  # type: ignore[attr-defined]
        return func

    return describe


def spec_of_loop(func: Callable[..., Any]) -> WorkLoop:
    loop = getattr(func, "work_loop", None)
    if not isinstance(loop, WorkLoop):
        raise TypeError(f"{func.__qualname__} is not a @work_loop")
    return loop
