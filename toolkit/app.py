"""FastAPI factory: middleware, error mapping and every domain's routes."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from toolkit import __version__
from toolkit.auth import pages as auth_pages
from toolkit.auth import routes as auth_routes
from toolkit.auth.deps import LoginRequired
from toolkit.consent import pages as consent_pages
from toolkit.consent import routes as consent_routes
from toolkit.consent import service as consent
from toolkit.contacts import pages as contact_pages
from toolkit.contacts import routes as contact_routes
from toolkit.audit import pages as audit_pages
from toolkit.db import session_scope
from toolkit.kit import secrets
from toolkit.kit.errors import ToolkitError
from toolkit.kit.metrics import HTTP_LATENCY, HTTP_REQUESTS
from toolkit.kit.openapi import operation_id
from toolkit.settings import Settings, get_settings
from toolkit.web import routes as web_routes
from toolkit.web.templating import render
from toolkit import worker

log = logging.getLogger(__name__)

API_ROUTERS = [contact_routes.router, consent_routes.router, auth_routes.router]
PAGE_ROUTERS = [web_routes.pages, contact_pages.pages, consent_pages.pages, auth_pages.pages, audit_pages.pages]


def _wants_html(request: Request) -> bool:
    path = request.url.path
    return not path.startswith("/api/") and "text/html" in request.headers.get("accept", "")


def _error_response(request: Request, exc: ToolkitError) -> Response:
    if isinstance(exc, LoginRequired) and not request.url.path.startswith("/api/"):
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
    if _wants_html(request):
        return render(request, "web/error.html", {"status_code": exc.status_code, "message": exc.message},
                      status_code=exc.status_code)
    body = {"detail": exc.message, "code": exc.code, **exc.details}
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
    return JSONResponse(body, status_code=exc.status_code, headers=headers)


WorkerMode = Literal["none", "thread", "process"]


def create_app(settings: Settings | None = None, *, worker_mode: WorkerMode = "none") -> FastAPI:
    """`worker_mode`: run the worker as a thread of this process (embedded SQLite), as a
    child process started and stopped with the app (PostgreSQL), or not at all."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        with session_scope() as session:
            consent.sync_from_config(session, settings.config_dir)
        # Stopped in the lifespan, not after uvicorn.run(): uvicorn re-raises SIGTERM once
        # it has shut down, so code after it would never run.
        runner = {"thread": worker.EmbeddedWorker, "process": worker.ChildWorker}.get(worker_mode)
        background = runner() if runner else None
        if background:
            background.start()
        try:
            yield
        finally:
            if background:
                background.stop()

    app = FastAPI(
        title="Social-ops toolkit",
        version=__version__,
        description="REST API of the social-ops toolkit. Authenticate with `Authorization: Bearer <API token>`.",
        generate_unique_id_function=operation_id,
        lifespan=lifespan,
    )

    with session_scope() as session:
        signing_key = secrets.get_secret(session, secrets.SESSION_KEY)
    app.add_middleware(
        SessionMiddleware,
        secret_key=signing_key,
        session_cookie="toolkit_session",
        max_age=settings.session_max_age_s,
        same_site="lax",
        https_only=settings.cookies_secure,
    )

    @app.middleware("http")
    async def request_id_and_metrics(request: Request, call_next):  # noqa: ANN001, ANN202
        request.state.request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        template = getattr(route, "path", "unmatched")
        HTTP_REQUESTS.labels(request.method, template, str(response.status_code)).inc()
        HTTP_LATENCY.labels(request.method, template).observe(time.perf_counter() - started)
        response.headers["x-request-id"] = request.state.request_id
        return response

    app.add_exception_handler(ToolkitError, _error_response)  # type: ignore[arg-type]

    for router in API_ROUTERS:
        app.include_router(router)
    app.include_router(web_routes.system)
    for router in PAGE_ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "web" / "static"), name="static")
    return app
