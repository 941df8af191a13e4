"""REST API for purposes and consent decisions. Admin pages for consent live in pages.py."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from toolkit.auth.deps import api_permission
from toolkit.auth.service import Actor
from toolkit.consent import service
from toolkit.consent.models import Purpose
from toolkit.consent.schemas import (
    ConsentChangeRead,
    ConsentChangeRequest,
    ConsentEventList,
    ConsentEventRead,
    ConsentStatusItem,
    PurposeRead,
)
from toolkit.contacts import service as contacts
from toolkit.kit.deps import IdPath, PageDep, SessionDep
from toolkit.kit.openapi import NOT_FOUND, PROTECTED

router = APIRouter(prefix="/api/v1", tags=["consent"], responses=PROTECTED)

Reader = Annotated[Actor, Depends(api_permission("consent.read"))]
Writer = Annotated[Actor, Depends(api_permission("consent.write"))]


def request_evidence(request: Request, body: ConsentChangeRequest) -> dict[str, Any]:
    return {
        **body.evidence,
        "request_id": request.state.request_id,
        "user_agent": request.headers.get("user-agent"),
        "ip": request.client.host if request.client else None,
    }


@router.get("/purposes", response_model=list[PurposeRead], summary="List processing purposes")
def list_purposes(session: SessionDep, _actor: Reader) -> list[Purpose]:
    return service.list_purposes(session)


@router.get(
    "/contacts/{contact_id}/consents",
    response_model=dict[str, ConsentStatusItem],
    summary="Current consent state per purpose",
    responses=NOT_FOUND,
)
def consent_status(contact_id: IdPath, session: SessionDep, _actor: Reader) -> dict[str, Any]:
    contacts.require(session, contact_id)
    return service.status(session, contact_id=contact_id)


@router.get(
    "/contacts/{contact_id}/consents/history",
    response_model=ConsentEventList,
    summary="Consent events of a contact, newest first",
    responses=NOT_FOUND,
)
def consent_history(contact_id: IdPath, session: SessionDep, _actor: Reader, page: PageDep) -> ConsentEventList:
    contacts.require(session, contact_id)
    rows, count = service.history(session, contact_id=contact_id, limit=page.limit, offset=page.offset)
    data = [ConsentEventRead.model_validate({**vars(e), "purpose": code}) for e, code in rows]
    return ConsentEventList(data=data, count=count)


def _change(action: str):  # noqa: ANN202 - returns a route function
    def change(
        contact_id: IdPath, body: ConsentChangeRequest, request: Request, session: SessionDep, actor: Writer
    ) -> service.ConsentChange:
        contacts.require(session, contact_id)
        return service.record(
            session,
            contact_id=contact_id,
            purpose=body.purpose,
            action=action,
            source="api",
            actor=actor.audit_name,
            evidence=request_evidence(request, body),
        )

    change.__name__ = f"{action}_consent"
    return change


for _action, _summary in (
    ("grant", "Record that the contact granted a purpose"),
    ("withdraw", "Record that the contact withdrew consent (as easy as granting)"),
    ("object", "Record the contact's objection to a purpose"),
):
    router.add_api_route(
        f"/contacts/{{contact_id}}/consents/{_action}",
        _change(_action),
        methods=["POST"],
        response_model=ConsentChangeRead,
        summary=_summary,
        responses=NOT_FOUND,
    )
