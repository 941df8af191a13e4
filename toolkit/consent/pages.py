"""Admin form posts that record a consent decision for a contact (its page is contacts'
detail page)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse

from toolkit.auth.deps import page_permission
from toolkit.auth.service import Actor
from toolkit.consent import service
from toolkit.contacts import service as contacts
from toolkit.contacts.models import Contact
from toolkit.kit.deps import SessionDep
from toolkit.web.csrf import verify_csrf
from toolkit.kit.storable import CleanText

pages = APIRouter(include_in_schema=False)

Writer = Annotated[Actor, Depends(page_permission("consent.write"))]


def load_contact(contact_id: int, session: SessionDep, _actor: Writer) -> Contact:
    # The 404 comes before any write: an unknown id would otherwise fail on the foreign key.
    return contacts.require(session, contact_id)


def admin_evidence(request: Request, note: str) -> dict[str, Any]:
    evidence = {
        "via": "admin-ui",
        "request_id": request.state.request_id,
        "user_agent": request.headers.get("user-agent"),
    }
    return evidence | ({"note": note.strip()} if note.strip() else {})


@pages.post("/admin/contacts/{contact_id}/consent", dependencies=[Depends(verify_csrf)])
def change_consent(
    request: Request,
    session: SessionDep,
    actor: Writer,
    contact: Annotated[Contact, Depends(load_contact)],
    purpose: Annotated[CleanText, Form(max_length=64)],
    action: Annotated[Literal["grant", "withdraw", "object"], Form()],
    note: Annotated[CleanText, Form(max_length=500)] = "",
) -> RedirectResponse:
    service.record(
        session,
        contact_id=contact.id,
        purpose=purpose,
        action=action,
        source="admin",
        actor=actor.audit_name,
        evidence=admin_evidence(request, note),
    )
    return RedirectResponse(f"/admin/contacts/{contact.id}?done={action}#consent", status_code=303)
