"""Admin pages for staff users (admins only) and everyone's own API tokens."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from toolkit.auth import service as auth
from toolkit.auth.deps import page_permission
from toolkit.auth.schemas import EMAIL_PATTERN, ROLES
from toolkit.auth.service import Actor
from toolkit.kit.clock import utcnow
from toolkit.kit.deps import SessionDep
from toolkit.kit.errors import InvalidInput, ToolkitError
from toolkit.settings import get_settings
from toolkit.web.csrf import verify_csrf
from toolkit.web.i18n import translator
from toolkit.web.templating import render, request_locale, templates
from toolkit.kit.storable import CleanText

pages = APIRouter(include_in_schema=False)

Admin = Annotated[Actor, Depends(page_permission("users.manage"))]
TokenOwner = Annotated[Actor, Depends(page_permission("tokens.own"))]
# Unticked checkboxes send nothing, so "no roles" arrives as a missing field.
RoleList = Annotated[list[str], Form(default_factory=list)]
Csrf = [Depends(verify_csrf)]
USER_FORM_ERRORS = (auth.UserExists, auth.WeakPassword, auth.UnknownRole)


def _message(request: Request, prefix: str, exc: ToolkitError) -> str:
    # Service messages are English; staff see the translated one when there is one.
    t = translator(request_locale(request))
    key = f"{prefix}.{exc.code}"
    text = t(key)
    return exc.message if text == key else text


# --- users ------------------------------------------------------------------------------

def _users_page(
    request: Request,
    session: Session,
    *,
    done: str | None = None,
    form: dict[str, Any] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    context = {
        "users": auth.list_users(session),
        "all_roles": ROLES,
        "form": form or {"email": "", "display_name": "", "roles": []},
        "error": error,
        "done": done,
        "tz": get_settings().timezone,
    }
    return render(request, "auth/users.html", context, status_code=status_code)


@pages.get("/admin/users")
def users_page(
    request: Request,
    session: SessionDep,
    _admin: Admin,
    done: Literal["created", "roles", "active"] | None = None,
) -> Response:
    return _users_page(request, session, done=done)


@pages.post("/admin/users", dependencies=Csrf)
def create_user(
    request: Request,
    session: SessionDep,
    admin: Admin,
    email: Annotated[CleanText, Form(max_length=254, pattern=EMAIL_PATTERN)],
    password: Annotated[CleanText, Form(max_length=200)],
    roles: RoleList,
    display_name: Annotated[CleanText, Form(max_length=200)] = "",
) -> Response:
    try:
        auth.create_user(session, email=email, password=password, roles=roles,
                         display_name=display_name.strip() or None, actor=admin.audit_name)
    except USER_FORM_ERRORS as exc:
        # Keep what was typed (never the password) so the admin only fixes the mistake.
        form = {"email": email, "display_name": display_name, "roles": roles}
        return _users_page(request, session, form=form, error=_message(request, "users.error", exc),
                           status_code=exc.status_code)
    return RedirectResponse("/admin/users?done=created", status_code=303)


@pages.post("/admin/users/{user_id}/roles", dependencies=Csrf)
def change_roles(request: Request, session: SessionDep, admin: Admin, user_id: int, roles: RoleList) -> Response:
    try:
        auth.set_roles(session, user_id=user_id, roles=roles, actor=admin.audit_name)
    except auth.UnknownRole as exc:
        return _users_page(request, session, error=_message(request, "users.error", exc),
                           status_code=exc.status_code)
    return RedirectResponse("/admin/users?done=roles", status_code=303)


@pages.post("/admin/users/{user_id}/active", dependencies=Csrf)
def change_active(session: SessionDep, admin: Admin, user_id: int, active: Annotated[bool, Form()]) -> Response:
    auth.set_active(session, user_id=user_id, active=active, actor=admin.audit_name)
    return RedirectResponse("/admin/users?done=active", status_code=303)


# --- API tokens -------------------------------------------------------------------------

def _tokens_page(
    request: Request,
    session: Session,
    actor: Actor,
    *,
    done: str | None = None,
    created: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    # Admins oversee every user's tokens; everyone else only ever loads their own.
    tokens = auth.list_tokens(session, user_id=None if "admin" in actor.roles else actor.user_id)
    context = {
        "own": [tok for tok in tokens if tok.user_id == actor.user_id],
        "others": [tok for tok in tokens if tok.user_id != actor.user_id],
        "now": utcnow(),
        "created": created,
        "error": error,
        "done": done,
        "tz": get_settings().timezone,
    }
    response = render(request, "auth/tokens.html", context, status_code=status_code)
    if created:
        response.headers["cache-control"] = "no-store"  # the plain token must not linger in caches
    return response


@pages.get("/admin/tokens")
def tokens_page(
    request: Request, session: SessionDep, actor: TokenOwner, done: Literal["revoked"] | None = None
) -> Response:
    return _tokens_page(request, session, actor, done=done)


@pages.post("/admin/tokens", dependencies=Csrf)
def create_token(
    request: Request,
    session: SessionDep,
    actor: TokenOwner,
    name: Annotated[CleanText, Form(max_length=100)],
    days: Annotated[int | None, Form(ge=1, le=3650)] = None,
) -> Response:
    assert actor.user_id is not None  # page actors are always users
    try:
        _token, plain = auth.create_token(session, user_id=actor.user_id, name=name, actor=actor.audit_name,
                                          expires_in_days=days)
    except InvalidInput as exc:
        return _tokens_page(request, session, actor, error=_message(request, "tokens.error", exc),
                            status_code=exc.status_code)
    # Shown in this response only, never in a redirect URL: it would stay in history and logs.
    return _tokens_page(request, session, actor, created=plain, status_code=201)


@pages.post("/admin/tokens/{token_id}/revoke", dependencies=Csrf)
def revoke_token(session: SessionDep, actor: TokenOwner, token_id: int) -> RedirectResponse:
    auth.revoke_token(session, token_id=token_id, actor=actor)
    return RedirectResponse("/admin/tokens?done=revoked", status_code=303)
