"""Request-scoped dependencies shared by every domain's routes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Query
from pydantic import BaseModel
from sqlalchemy.orm import Session

from toolkit import db


def get_session() -> Iterator[Session]:
    """One Session per request, committed once after the handler (Polar's pattern)."""
    with db.session_scope() as session:
        yield session


# scope="function": commit before the response is sent, so a redirect after a POST never
# reads stale data and a failed commit is never reported as success.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


class Page(BaseModel):
    limit: int
    offset: int


def page_params(
    limit: Annotated[int, Query(ge=1, le=500, description="Rows per page")] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000, description="Rows to skip")] = 0,
) -> Page:
    return Page(limit=limit, offset=offset)


PageDep = Annotated[Page, Depends(page_params)]


# Database ids are signed 64-bit; anything outside is a 422, not a driver overflow.
MAX_ID = 2**63 - 1
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
