"""Shared OpenAPI response descriptions and the operation-id rule."""

from __future__ import annotations

from typing import Any

from fastapi.routing import APIRoute
from pydantic import BaseModel


class ErrorBody(BaseModel):
    detail: str
    code: str


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


UNAUTHORISED = {401: _error("Missing, invalid, expired or revoked API token")}
FORBIDDEN = {403: _error("Your role may not do this")}
NOT_FOUND = {404: _error("No such object")}
CONFLICT = {409: _error("Conflicts with what is stored")}
PROTECTED = {**UNAUTHORISED, **FORBIDDEN}


def operation_id(route: APIRoute) -> str:
    tag = route.tags[0] if route.tags else "default"
    return f"{tag}-{route.name}"
