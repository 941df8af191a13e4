"""FastAPI factory: middleware, error mapping and every domain's routes."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from toolkit import __version__
from toolkit.auth.deps import LoginRequired
from toolkit.consent import service as consent
from toolkit.inbox import routes as inbox_routes
from toolkit import db, domains
from toolkit.db import session_scope
from toolkit.line.sandbox import DbStore, create_sandbox_app
from toolkit.line.sandbox.models import SandboxReplyToken
from toolkit.kit import secrets
from toolkit.kit.errors import ToolkitError
from toolkit.kit.metrics import HTTP_LATENCY, HTTP_REQUESTS
from toolkit.kit.openapi import operation_id
from toolkit.kit.storable import encodable
from toolkit.line.webhook import InboundEvent
from toolkit.settings import SANDBOX_PREFIX, Settings, get_settings
from toolkit.web import clock as clock_routes
from toolkit.web import routes as web_routes
from toolkit.web.i18n import has_message
from toolkit.web.templating import render
from toolkit import worker

log = logging.getLogger(__name__)

def _wants_html(request: Request) -> bool:
    path = request.url.path
    return not path.startswith("/api/") and "text/html" in request.headers.get("accept", "")


def _error_response(request: Request, exc: ToolkitError) -> Response:
    if isinstance(exc, LoginRequired) and not request.url.path.startswith("/api/"):
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
    if _wants_html(request):
        # Staff read the error in their language; the service's own (English) detail follows.
        key = next((k for k in (f"error.{exc.code}", f"error.{exc.status_code}") if has_message(k)), None)
        context = {"status_code": exc.status_code, "message": exc.message, "summary_key": key}
        return render(request, "web/error.html", context, status_code=exc.status_code)
    body = {"detail": exc.message, "code": exc.code, **exc.details}
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
    return JSONResponse(body, status_code=exc.status_code, headers=headers)


class RequestContextMiddleware:
    """A request id on every response (`x-request-id`, kept from the request when given;
    `request.state.request_id`), and Prometheus counts and latency per route template.

    Pure ASGI rather than `@app.middleware("http")`: BaseHTTPMiddleware runs every request
    through an extra task group and memory streams, which cost the LINE webhook more than
    the rest of its work. `fast_paths` maps (method, path) to a bare ASGI handler that is
    served from here, before the session middleware and the router (rule 18)."""

    def __init__(self, app: ASGIApp, fast_paths: dict[tuple[str, str], ASGIApp] | None = None) -> None:
        self.app = app
        self.fast_paths = fast_paths or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), None)
        request_id = request_id or os.urandom(16).hex()  # as uuid4().hex, without the UUID object
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", request_id.encode("latin-1"))]
            await send(message)

        fast = self.fast_paths.get((scope["method"], scope["path"]))
        try:
            await (fast or self.app)(scope, receive, send_with_id)
        finally:
            template = scope["path"] if fast else getattr(scope.get("route"), "path", "unmatched")
            HTTP_REQUESTS.labels(scope["method"], template, str(status)).inc()
            HTTP_LATENCY.labels(scope["method"], template).observe(time.perf_counter() - started)


WorkerMode = Literal["none", "thread", "process"]


def create_app(settings: Settings | None = None, *, worker_mode: WorkerMode = "none") -> FastAPI:
    """`worker_mode`: run the worker as a thread of this process (embedded SQLite), as a
    child process started and stopped with the app (PostgreSQL), or not at all."""
    settings = settings or get_settings()
    settings.apply_clock()
    product = domains.assemble()

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
        app.state.line_channel_secret = secrets.get_secret(session, secrets.LINE_CHANNEL_SECRET)
    app.add_middleware(
        SessionMiddleware,
        secret_key=signing_key,
        session_cookie="toolkit_session",
        max_age=settings.session_max_age_s,
        same_site="lax",
        https_only=settings.cookies_secure,
    )

    # Outermost of ours: every request gets its id and its metrics, and the LINE webhook
    # leaves the stack here (STYLE.md rule 18).
    app.add_middleware(RequestContextMiddleware, fast_paths=product.fast_paths)

    app.add_exception_handler(ToolkitError, _error_response)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]

    for router in product.api_routers:
        app.include_router(router)
    app.include_router(web_routes.system)
    app.include_router(web_routes.pages)
    for router in product.page_routers:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "web" / "static"), name="static")
    if settings.line_sandbox:
        app.include_router(clock_routes.router)
        mount_sandbox(app, settings)
    return app


async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    # FastAPI's own answer, but able to quote an input holding an unpaired surrogate
    # (which it would fail to encode, turning a 422 into a 500).
    return JSONResponse(status_code=422, content={"detail": encodable(jsonable_encoder(exc.errors()))})


def mount_sandbox(app: FastAPI, settings: Settings) -> None:
    """The LINE sandbox under /sandbox/line, its state in our database so that every serve
    process shares it; reply tokens of events reaching our webhook become valid there."""
    sandbox_app = create_sandbox_app(
        DbStore(db.get_engine()),
        webhook_url=settings.base_url.rstrip("/") + "/line/webhook",
        channel_secret=app.state.line_channel_secret,
    )
    sandbox = sandbox_app.state.sandbox

    def register_reply_tokens(events: list[InboundEvent]) -> None:
        for event in events:
            if event.reply_token and event.user_id:
                sandbox.register_reply_token(event.reply_token, event.user_id)

    # On PostgreSQL the webhook upserts the tokens into the sandbox's table in its own
    # statement instead of calling this (one round trip per acknowledgement, rule 18).
    app.state.reply_token_sink = inbox_routes.ReplyTokenSink(
        register_reply_tokens, table=SandboxReplyToken.__table__, ttl_s=sandbox.config.reply_token_ttl_s)
    app.mount(SANDBOX_PREFIX, sandbox_app)
