"""Who is calling: bearer tokens for the API, the signed session cookie for admin pages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from toolkit.auth import service
from toolkit.auth.service import Actor
from toolkit.kit.deps import SessionDep
from toolkit.kit.errors import NotAuthenticated

bearer_scheme = HTTPBearer(auto_error=False, description="An API token from the admin UI or `toolkit users token`")
SESSION_USER_KEY = "user_id"


class LoginRequired(NotAuthenticated):
    """Raised by admin pages; the app answers it with a redirect to /login."""

    code = "login_required"


def api_actor(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Actor:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise NotAuthenticated("send an API token as 'Authorization: Bearer <token>'")
    user = service.authenticate_token(session, credentials.credentials)
    return service.actor_for(user, via="token")


def page_actor(request: Request, session: SessionDep) -> Actor:
    user_id = request.session.get(SESSION_USER_KEY)
    user = service.get_user(session, user_id) if isinstance(user_id, int) else None
    if user is None or not user.active:
        request.session.clear()
        raise LoginRequired("please log in")
    actor = service.actor_for(user, via="session")
    request.state.actor = actor  # the layout shows who is logged in and what they may open
    return actor


ApiActor = Annotated[Actor, Depends(api_actor)]
PageActor = Annotated[Actor, Depends(page_actor)]


def api_permission(permission: str) -> Callable[[Actor], Actor]:
    def check(actor: ApiActor) -> Actor:
        service.require_permission(actor, permission)
        return actor

    return check


def page_permission(permission: str) -> Callable[[Actor], Actor]:
    def check(actor: PageActor) -> Actor:
        service.require_permission(actor, permission)
        return actor

    return check
