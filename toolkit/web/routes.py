"""Login, logout, language, the home redirect, health and metrics."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from toolkit import db
from toolkit.auth import service as auth
from toolkit.auth.deps import SESSION_USER_KEY
from toolkit.kit import heartbeat
from toolkit.kit.deps import SessionDep
from toolkit.kit.errors import NotAuthenticated
from toolkit.kit.metrics import observe_workers
from toolkit.web.csrf import verify_csrf
from toolkit.web.i18n import LOCALES, translator
from toolkit.web.templating import render, request_locale
from toolkit.kit.storable import CleanText

pages = APIRouter(include_in_schema=False)
system = APIRouter(tags=["system"])
log = logging.getLogger(__name__)

HOME = "/admin/contacts"


def _safe_next(target: str | None) -> str:
    # Only same-site paths: an open redirect after login would help phishing.
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return HOME


@pages.get("/")
def home(request: Request) -> RedirectResponse:
    return RedirectResponse(HOME if request.session.get(SESSION_USER_KEY) else "/login", status_code=303)


@pages.get("/login")
def login_form(request: Request, next: str = "") -> Response:
    return render(request, "web/login.html", {"next": _safe_next(next), "email": "", "error": None})


@pages.post("/login", dependencies=[Depends(verify_csrf)])
def login(
    request: Request,
    session: SessionDep,
    email: Annotated[CleanText, Form(max_length=254)],
    password: Annotated[CleanText, Form(max_length=200)],
    next: Annotated[str, Form()] = "",
) -> Response:
    try:
        user = auth.authenticate(session, email=email, password=password)
    except NotAuthenticated:
        t = translator(request_locale(request))
        context = {"next": _safe_next(next), "email": email, "error": t("login.failed")}
        return render(request, "web/login.html", context, status_code=401)
    request.session.clear()  # a fresh session (and CSRF token) at every login
    request.session[SESSION_USER_KEY] = user.id
    return RedirectResponse(_safe_next(next), status_code=303)


@pages.post("/logout", dependencies=[Depends(verify_csrf)])
def logout(request: Request) -> RedirectResponse:
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@pages.get("/lang/{locale}")
def set_language(locale: str, request: Request) -> RedirectResponse:
    referer = request.headers.get("referer", "")
    path = referer.split(str(request.base_url).rstrip("/"), 1)[-1] if referer else "/"
    response = RedirectResponse(_safe_next(path) if path != "/" else "/", status_code=303)
    if locale in LOCALES:
        response.set_cookie("lang", locale, max_age=365 * 86400, samesite="lax")
    return response


# Both open their own session rather than the request's: a database that does not answer
# must give a JSON 503 (health) or the process's own metrics, not the request's failed commit.
@system.get("/healthz", summary="Liveness, database and worker heartbeats",
            responses={503: {"description": "The database does not answer"}})
def healthz() -> JSONResponse:
    try:
        with db.session_scope() as session:
            session.execute(text("SELECT 1"))
            beats = heartbeat.workers(session)
    except SQLAlchemyError:
        log.warning("healthz: the database does not answer", exc_info=True)
        return JSONResponse({"status": "unavailable", "database": "unreachable",
                             "reason": "the database does not answer"}, status_code=503)
    return JSONResponse(heartbeat.health(beats))


@system.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics() -> Response:
    try:
        with db.session_scope() as session:
            observe_workers(heartbeat.workers(session))
    except SQLAlchemyError:
        log.warning("metrics: no worker heartbeats, the database does not answer", exc_info=True)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
