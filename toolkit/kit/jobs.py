"""The job registry: `@job("domain.name", cron=...)` next to the function it schedules.

A job takes ids or JSON only and opens its own session. The worker imports JOB_MODULES
so that every domain's jobs register themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

JOB_MODULES = ["toolkit.audit.jobs"]


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
