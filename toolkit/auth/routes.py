"""REST API for the caller's own identity. Admin pages for users and tokens live in pages.py."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from toolkit.auth.deps import ApiActor
from toolkit.kit.openapi import UNAUTHORISED

router = APIRouter(prefix="/api/v1", tags=["auth"], responses=UNAUTHORISED)


class Me(BaseModel):
    user_id: int | None
    email: str
    roles: list[str]


@router.get("/me", response_model=Me, summary="Who the API token belongs to")
def read_me(actor: ApiActor) -> Me:
    return Me(user_id=actor.user_id, email=actor.email, roles=sorted(actor.roles))
