"""REST API for contacts. Admin pages for contacts live in pages.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from toolkit.auth.deps import api_permission
from toolkit.auth.service import Actor
from toolkit.contacts import service
from toolkit.contacts.models import Contact
from toolkit.contacts.schemas import ContactCreate, ContactList, ContactRead
from toolkit.kit.deps import IdPath, PageDep, SessionDep
from toolkit.kit.openapi import CONFLICT, NOT_FOUND, PROTECTED

router = APIRouter(prefix="/api/v1/contacts", tags=["contacts"], responses=PROTECTED)

Reader = Annotated[Actor, Depends(api_permission("contacts.read"))]
Writer = Annotated[Actor, Depends(api_permission("contacts.write"))]


def load_contact(contact_id: IdPath, session: SessionDep, _actor: Reader) -> Contact:
    return service.require(session, contact_id)


CurrentContact = Annotated[Contact, Depends(load_contact)]


@router.get("", response_model=ContactList, summary="List contacts")
def list_contacts(
    session: SessionDep,
    _actor: Reader,
    page: PageDep,
    search: Annotated[str | None, Query(max_length=200, description="Name or external id prefix")] = None,
) -> ContactList:
    rows, count = service.list_contacts(session, search=search, limit=page.limit, offset=page.offset)
    return ContactList(data=[ContactRead.model_validate(c) for c in rows], count=count)


@router.get("/{contact_id}", response_model=ContactRead, summary="Get a contact", responses=NOT_FOUND)
def read_contact(contact: CurrentContact) -> Contact:
    return contact


@router.post("", status_code=201, response_model=ContactRead, summary="Create a contact", responses=CONFLICT)
def create_contact(data: ContactCreate, session: SessionDep, actor: Writer) -> Contact:
    return service.create(
        session,
        external_id=data.external_id,
        channel=data.channel,
        display_name=data.display_name,
        locale=data.locale,
        actor=actor.audit_name,
    )
