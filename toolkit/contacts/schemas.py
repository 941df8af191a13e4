from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from toolkit.kit.storable import CleanText

# A channel identity as LINE and most channels spell it: no spaces, no control characters.
EXTERNAL_ID_PATTERN = r"^[!-~]{1,128}$"
LOCALE_PATTERN = r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8}){0,2}$"
LOCALE_MAX_LENGTH = 16


class IdentityRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    channel: str
    external_id: str
    followed: bool
    blocked_at: datetime | None


class ContactCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    external_id: str = Field(pattern=EXTERNAL_ID_PATTERN, examples=["U4af4980629a1b2c3d4e5f60718293a4b"])
    display_name: CleanText | None = Field(default=None, max_length=200)
    locale: str | None = Field(default=None, pattern=LOCALE_PATTERN, max_length=LOCALE_MAX_LENGTH, examples=["zh-TW"])
    channel: Literal["line"] = "line"


class ContactRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    display_name: str | None
    locale: str | None
    tier: str | None
    created_at: datetime
    erased_at: datetime | None
    identities: list[IdentityRead]


class ContactList(BaseModel):
    data: list[ContactRead]
    count: int
