"""The job registry: `@job("domain.name", cron=...)` next to the function it schedules.

A job takes ids or JSON only and opens its own session. The worker imports JOB_MODULES
so that every domain's jobs register themselves.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

JOB_MODULES = ["toolkit.audit.jobs", "toolkit.inbox.jobs", "toolkit.chatbot.jobs"]


@dataclass(frozen=True)
class JobSpec:
    name: str
    func: Callable[..., Any]
    cron: str | None = None
    every_s: float | None = None


REGISTRY: dict[str, JobSpec] = {}


def job(name: str, *, cron: str | None = None, every_s: float | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def register(func: Callable[..., Any]) -> Callable[..., Any]:
        if name in REGISTRY and REGISTRY[name].func is not func:
            raise RuntimeError(f"job name {name!r} registered twice")
        REGISTRY[name] = JobSpec(name, func, cron, every_s)
        return func

    return register


@dataclass(frozen=True)
class WorkLoop:
    """A function the worker calls again and again; it returns how much it did, and the
    worker waits `idle_s` (or until woken) when it did nothing."""

    name: str
    func: Callable[[], int]
    idle_s: float
    wake: threading.Event


LOOPS: dict[str, WorkLoop] = {}


def work_loop(name: str, *, idle_s: float = 0.5) -> Callable[[Callable[[], int]], Callable[[], int]]:
    def register(func: Callable[[], int]) -> Callable[[], int]:
        if name in LOOPS and LOOPS[name].func is not func:
            raise RuntimeError(f"work loop {name!r} registered twice")
        LOOPS[name] = WorkLoop(name, func, idle_s, threading.Event())
        return func

    return register


# What a domain sets up in a process while it runs the work loops (the chatbot installs
# its text handler into the inbox). Each returns how to undo it, or None. Run when the
# loops start, undone when they stop: importing a jobs module sets nothing up.
WorkerSetup = Callable[[], Callable[[], None] | None]
WORKER_SETUP: list[WorkerSetup] = []


def on_worker_start(setup: WorkerSetup) -> WorkerSetup:
    if setup not in WORKER_SETUP:
        WORKER_SETUP.append(setup)
    return setup


def wake(name: str) -> None:
    """Nudge a loop in this process (e.g. the webhook after storing events)."""
    loop = LOOPS.get(name)
    if loop is not None:
        loop.wake.set()
