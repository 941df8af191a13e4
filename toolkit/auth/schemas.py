from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from toolkit.kit.storable import CleanText

Role = Literal["admin", "editor", "approver", "ops", "agent", "privacy_officer"]
ROLES: tuple[str, ...] = ("admin", "editor", "approver", "ops", "agent", "privacy_officer")
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: CleanText = Field(pattern=EMAIL_PATTERN, max_length=254)
    password: CleanText = Field(min_length=8, max_length=200)
    roles: list[Role] = Field(min_length=1)
    display_name: CleanText | None = Field(default=None, max_length=200)


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    display_name: str | None
    roles: list[str]
    active: bool
    created_at: datetime
    last_login_at: datetime | None


class ApiTokenRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
