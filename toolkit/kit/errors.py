"""The one error hierarchy. app.py maps it to JSON responses, cli maps it to exit 2."""

from __future__ import annotations

from typing import Any


class ToolkitError(Exception):
    status_code = 500
    code = "internal_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidInput(ToolkitError):
    status_code = 422
    code = "invalid_input"


class NotAuthenticated(ToolkitError):
    status_code = 401
    code = "not_authenticated"


class PermissionDenied(ToolkitError):
    status_code = 403
    code = "permission_denied"


class NotFound(ToolkitError):
    status_code = 404
    code = "not_found"


class Conflict(ToolkitError):
    status_code = 409
    code = "conflict"


class ConsentDenied(ToolkitError):
    status_code = 403
    code = "consent_denied"
