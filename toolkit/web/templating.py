"""Rendering admin pages with the layout, the translator and the CSRF token."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from toolkit.settings import get_settings
from toolkit.web.csrf import csrf_token
from toolkit.web.i18n import install_filters, negotiate, translator

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
install_filters(templates.env)


def request_locale(request: Request) -> str:
    return negotiate(
        request.cookies.get("lang"), request.headers.get("accept-language"), get_settings().default_locale
    )


def render(request: Request, template: str, context: dict[str, Any] | None = None, status_code: int = 200) -> HTMLResponse:
    locale = request_locale(request)
    base = {
        "t": translator(locale),
        "lang": locale,
        "csrf_token": csrf_token(request),
        "actor": getattr(request.state, "actor", None),
    }
    return templates.TemplateResponse(request, template, {**base, **(context or {})}, status_code=status_code)
