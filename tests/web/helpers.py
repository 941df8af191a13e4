"""Driving the admin UI in page tests: a TestClient logged in through the real /login form."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.auth.factories import PASSWORD, make_user
from toolkit.app import create_app

CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(html: str) -> str:
    match = CSRF_INPUT.search(html)
    assert match, "the page has no CSRF token"
    return match.group(1)


def page_csrf(client: TestClient, path: str) -> str:
    """The CSRF token of the form on PATH, as a browser would find it."""
    response = client.get(path)
    assert response.status_code == 200, response.text
    return csrf_from(response.text)


def anonymous_client(*, lang: str = "en") -> TestClient:
    # Created inside a test, after the `session` fixture patched db, so every request's
    # Session joins the test's rolled-back transaction.
    client = TestClient(create_app(), follow_redirects=False, headers={"accept": "text/html"})
    client.cookies.set("lang", lang)
    return client


def log_in(client: TestClient, email: str, password: str = PASSWORD) -> None:
    token = page_csrf(client, "/login")
    response = client.post("/login", data={"email": email, "password": password, "csrf_token": token})
    assert response.status_code == 303, response.text


def logged_in_client(session: Session, roles: list[str], *, lang: str = "en", email: str | None = None) -> TestClient:
    user = make_user(session, roles=roles, email=email)
    client = anonymous_client(lang=lang)
    log_in(client, user.email)
    return client
