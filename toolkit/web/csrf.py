"""CSRF protection for the admin UI's form posts (the API uses bearer tokens instead,
which a browser never attaches on its own, so it needs none)."""

from __future__ import annotations

import hmac
import secrets

from fastapi import Form, Request

from toolkit.kit.errors import PermissionDenied

SESSION_KEY = "csrf"


class CsrfFailed(PermissionDenied):
    code = "csrf_failed"


def csrf_token(request: Request) -> str:
    token = request.session.get(SESSION_KEY)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session[SESSION_KEY] = token
    return token


def verify_csrf(request: Request, csrf_token: str = Form("", include_in_schema=False)) -> None:
    expected = request.session.get(SESSION_KEY)
    if not isinstance(expected, str) or not hmac.compare_digest(expected, csrf_token):
        raise CsrfFailed("the form's CSRF token is missing or wrong; reload the page and try again")
