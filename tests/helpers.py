"""Shared test helpers for the REST API."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.auth.factories import make_token
from toolkit.app import create_app


def api_client(session: Session, *, roles: list[str] | None) -> TestClient:
    """A client for the real app; with roles, it carries a bearer token of a user with them."""
    client = TestClient(create_app(), raise_server_exceptions=True)
    if roles is not None:
        client.headers["Authorization"] = f"Bearer {make_token(session, roles=roles)}"
    return client
