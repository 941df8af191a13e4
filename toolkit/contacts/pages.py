"""Admin pages for contacts: the searchable list and one contact's identities and consent."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from toolkit.auth.deps import page_permission
from toolkit.auth.service import Actor
from toolkit.consent import service as consent
from toolkit.contacts import service
from toolkit.contacts.models import Contact
from toolkit.kit.deps import PageDep, SessionDep
from toolkit.settings import get_settings
from toolkit.web.templating import render, templates

pages = APIRouter(include_in_schema=False)

Reader = Annotated[Actor, Depends(page_permission("contacts.read"))]


def load_contact(contact_id: int, session: SessionDep, _actor: Reader) -> Contact:
    return service.require(session, contact_id)


CurrentContact = Annotated[Contact, Depends(load_contact)]


@pages.get("/admin/contacts")
def contact_list(
    request: Request,
    session: SessionDep,
    _actor: Reader,
    page: PageDep,
    search: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    rows, total = service.list_contacts(session, search=search, limit=page.limit, offset=page.offset)
    context = {"contacts": rows, "total": total, "search": search, "page": page, "tz": get_settings().timezone}
    return render(request, "contacts/list.html", context)


@pages.get("/admin/contacts/{contact_id}")
def contact_page(
    request: Request,
    session: SessionDep,
    contact: CurrentContact,
    actor: Reader,
    done: Literal["grant", "withdraw", "object"] | None = None,
) -> Response:
    context: dict[str, object] = {"contact": contact, "done": done, "status": None, "tz": get_settings().timezone}
    # Editors and approvers may look a contact up, but consent decisions are not theirs to see.
    if actor.can("consent.read"):
        history, history_total = consent.history(session, contact_id=contact.id)
        context |= {
            "status": consent.status(session, contact_id=contact.id),
            "history": history,
            "history_total": history_total,
        }
    return render(request, "contacts/detail.html", context)
