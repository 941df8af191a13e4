"""What a domain contributes to the product, declared once, and the product assembled from
every domain.

Each domain package has a `domain.py` with one `DOMAIN = Domain(...)`: its tables, API and
page routers, jobs and work loops, what it sets up in a worker, its erasure steps, its
handlers of inbound events, its CLI groups and its listeners of outbound deliveries. The
composition root (`toolkit/domains.py`) lists the domains; the app, the worker, the CLI
and Alembic read what they need from the `Product` it assembles. Nothing registers itself when imported.

This module knows no domain: it only says what a contribution looks like.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from sqlalchemy.orm import Session

from toolkit.kit.background import JobSpec, WorkLoop, spec_of_job, spec_of_loop

# `step(session, contact_id)` deletes or anonymises what its domain keeps on a person, in
# the erasure's own transaction, so an erasure is all or nothing.
ErasureStep = Callable[[Session, int], None]
# What a domain sets up in a worker process while its loops run (e.g. the inbox installing
# the product's event handlers); it returns how to undo it, or None.
WorkerSetup = Callable[["Product"], Callable[[], None] | None]
# `listener(session, settled)` hears, in the recording transaction, how the outbound
# messages its domain enqueued under one source name went (messaging.schemas.Settled).
DeliveryListener = Callable[[Session, Sequence[Any]], None]


@dataclass(frozen=True)
class Domain:
    name: str
    models: Sequence[ModuleType] = ()
    api_routers: Sequence[Any] = ()  # fastapi.APIRouter (kit does not import the web framework)
    page_routers: Sequence[Any] = ()
    # ASGI apps served before the router and the session middleware, by (method, path):
    # the LINE webhook's acknowledgement (STYLE.md rule 18).
    fast_paths: Mapping[tuple[str, str], Any] = field(default_factory=dict)
    jobs: Sequence[Callable[..., Any]] = ()  # functions decorated with @job
    work_loops: Sequence[Callable[[], int]] = ()  # functions decorated with @work_loop
    worker_setup: Sequence[WorkerSetup] = ()
    erasure_steps: Sequence[ErasureStep] = ()
    # Handlers of inbound LINE events by kind: "text", or "postback:<data prefix>".
    event_handlers: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    cli_groups: Sequence[tuple[str, Any]] = ()  # (command name, typer.Typer)
    # Listeners of the outbound pipeline, by the source name the domain enqueues under.
    delivery_listeners: Mapping[str, DeliveryListener] = field(default_factory=dict)


class CompositionError(RuntimeError):
    """Two domains claim the same job, loop, handler, command or delivery listener."""


@dataclass(frozen=True)
class Product:
    """Every domain's contributions, merged in the order the domains are listed."""

    domains: tuple[Domain, ...]
    jobs: dict[str, JobSpec]
    work_loops: dict[str, WorkLoop]
    event_handlers: dict[str, Callable[..., Any]]
    cli_groups: dict[str, Any]
    fast_paths: dict[tuple[str, str], Any]
    delivery_listeners: dict[str, DeliveryListener]

    @classmethod
    def of(cls, domains: Sequence[Domain]) -> Product:
        names = [d.name for d in domains]
        if len(set(names)) != len(names):
            raise CompositionError(f"a domain is listed twice: {names}")
        jobs: dict[str, JobSpec] = {}
        loops: dict[str, WorkLoop] = {}
        handlers: dict[str, Callable[..., Any]] = {}
        groups: dict[str, Any] = {}
        fast: dict[tuple[str, str], Any] = {}
        listeners: dict[str, DeliveryListener] = {}
        for domain in domains:
            for spec in map(spec_of_job, domain.jobs):
                _claim(jobs, spec.name, spec, domain, "job")
            for loop in map(spec_of_loop, domain.work_loops):
                _claim(loops, loop.name, loop, domain, "work loop")
            for kind, handler in domain.event_handlers.items():
                _claim(handlers, kind, handler, domain, "event handler")
            for name, group in domain.cli_groups:
                _claim(groups, name, group, domain, "command group")
            for route, app in domain.fast_paths.items():
                _claim(fast, route, app, domain, "fast path")  # type: ignore[arg-type]
            for source, listener in domain.delivery_listeners.items():
                _claim(listeners, source, listener, domain, "delivery listener")
        return cls(tuple(domains), jobs, loops, handlers, groups, fast, listeners)

    @property
    def model_modules(self) -> list[ModuleType]:
        return [m for d in self.domains for m in d.models]

    @property
    def api_routers(self) -> list[Any]:
        return [r for d in self.domains for r in d.api_routers]

    @property
    def page_routers(self) -> list[Any]:
        return [r for d in self.domains for r in d.page_routers]

    @property
    def worker_setup(self) -> list[WorkerSetup]:
        return [s for d in self.domains for s in d.worker_setup]

    @property
    def erasure_steps(self) -> list[ErasureStep]:
        return [s for d in self.domains for s in d.erasure_steps]


def _claim(into: dict[Any, Any], key: Any, value: Any, domain: Domain, what: str) -> None:
    if key in into:
        raise CompositionError(f"{what} {key!r} is declared twice (again by {domain.name})")
    into[key] = value


# The product this process runs, installed by the composition root when an entry point
# (app, worker, CLI, Alembic, tests) starts. Services that need another domain's
# contributions without importing it (erasure, the inbox's handlers) read it here.
_installed: Product | None = None


def install(product: Product) -> None:
    global _installed
    _installed = product


def installed() -> Product:
    if _installed is None:
        raise RuntimeError("the product is not assembled: call toolkit.domains.assemble() at start")
    return _installed
