"""Admin pages for the audit log: browse it and check its hash chain."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from toolkit.audit import service
from toolkit.auth.deps import page_permission
from toolkit.auth.service import Actor
from toolkit.kit.deps import PageDep, SessionDep
from toolkit.settings import get_settings
from toolkit.web.csrf import verify_csrf
from toolkit.web.templating import render, templates

pages = APIRouter(include_in_schema=False)

Reader = Annotated[Actor, Depends(page_permission("audit.read"))]


@pages.get("/admin/audit")
def audit_log(request: Request, session: SessionDep, _actor: Reader, page: PageDep) -> Response:
    entries, total = service.list_entries(session, limit=page.limit, offset=page.offset)
    context = {"entries": entries, "total": total, "page": page, "tz": get_settings().timezone}
    return render(request, "audit/list.html", context)


@pages.post("/admin/audit/verify", dependencies=[Depends(verify_csrf)])
def verify_chain(request: Request, session: SessionDep, _actor: Reader) -> Response:
    # A POST because it reads the whole chain (no prefetcher should start it), but it
    # changes nothing, so the result is rendered here rather than redirected to.
    return render(request, "audit/verify.html", {"report": service.verify(session)})
