"""`toolkit serve`, `toolkit worker`, `toolkit demo`: the long-running processes."""

from __future__ import annotations

import logging
import os
from typing import Annotated

import typer
import uvicorn

from toolkit import demo as demo_brand
from toolkit import migrate, worker
from toolkit.app import create_app
from toolkit.db import get_engine, session_scope
from toolkit.settings import get_settings

log = logging.getLogger(__name__)

HostOpt = Annotated[str | None, typer.Option("--host", help="Interface to listen on (default 127.0.0.1)")]
PortOpt = Annotated[int | None, typer.Option("--port", min=1, max=65535, help="Port (default 8000)")]
# Uvicorn's grace period for open requests; with the worker's own shutdown this keeps
# SIGTERM-to-exit well under 10 s.
GRACEFUL_SHUTDOWN_S = 3


def serve_app(host: str, port: int, *, with_worker: bool) -> None:
    if not os.environ.get("TOOLKIT_BASE_URL") and "base_url" not in get_settings().model_fields_set:
        # Links, the mounted sandbox and its webhook URL must name the port we really serve
        # on; the environment carries it to the worker child too.
        os.environ["TOOLKIT_BASE_URL"] = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
        get_settings.cache_clear()
    settings = get_settings()
    # Embedded SQLite runs the worker in-process; PostgreSQL runs it as a child on request.
    mode = "thread" if settings.is_sqlite else ("process" if with_worker else "none")
    app = create_app(settings, worker_mode=mode)
    uvicorn.run(app, host=host, port=port, log_level="info",
                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S, access_log=False)


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        host: HostOpt = None,
        port: PortOpt = None,
        with_worker: Annotated[bool, typer.Option("--with-worker", help="Also run the worker (always on with SQLite)")] = False,
    ) -> None:
        """Serve the web UI, REST API and webhooks."""
        settings = get_settings()
        serve_app(host or settings.host, port or settings.port, with_worker=with_worker)

    @app.command("worker")
    def worker_command() -> None:
        """Run the scheduler and work loops until SIGTERM."""
        worker.run_forever()

    @app.command()
    def demo(
        host: HostOpt = None,
        port: PortOpt = None,
        seed_only: Annotated[bool, typer.Option("--seed-only", help="Migrate and seed, then exit")] = False,
    ) -> None:
        """Migrate, seed the demo brand, print the admin login and serve (with the LINE sandbox)."""
        # The demo stands LINE in with the mounted sandbox unless told otherwise.
        os.environ.setdefault("TOOLKIT_LINE_SANDBOX", "1")
        get_settings.cache_clear()
        settings = get_settings()
        migrate.upgrade(get_engine())
        with session_scope() as session:
            logins = demo_brand.seed(session, config_dir=settings.config_dir, env=settings.env)
        host, port = host or settings.host, port or settings.port
        typer.echo(demo_brand.banner(logins, f"http://{host}:{port}"))
        if not seed_only:
            serve_app(host, port, with_worker=True)
