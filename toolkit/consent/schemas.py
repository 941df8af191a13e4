from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from toolkit.kit.localised import Localised
from toolkit.kit.storable import CleanJson, CleanText

LawfulBasis = Literal["consent", "contract", "legitimate_interest", "legal_obligation"]
ConsentAction = Literal["grant", "withdraw", "object"]
ConsentStateValue = Literal["granted", "withdrawn", "objected", "none"]
ConsentSource = Literal["follow", "unfollow", "keyword", "admin", "api", "import", "form", "cli", "system"]


class PurposeNotice(Localised):
    version: str = Field(min_length=1, max_length=32)


class PurposeDefinition(BaseModel):
    """One entry of purposes.yaml (toolkit.defaults: the brand's own or the shipped one)."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$", max_length=64)
    lawful_basis: LawfulBasis
    name: Localised
    notice: PurposeNotice
    retention_days: int = Field(ge=1, le=36500)


class PurposeFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    purposes: list[PurposeDefinition] = Field(min_length=1)


class PurposeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    lawful_basis: str
    name_zh: str
    name_en: str
    notice_zh: str
    notice_en: str
    notice_version: str
    retention_days: int


class ConsentChangeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    purpose: CleanText = Field(min_length=1, max_length=64, examples=["marketing.line_push"])
    evidence: CleanJson = Field(default_factory=dict, description="Where and how the person said so.")


class ConsentStatusItem(BaseModel):
    state: ConsentStateValue
    lawful_basis: str
    notice_version: str | None
    changed_at: datetime | None


class ConsentEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    purpose: str
    action: str
    source: str
    notice_version: str | None
    evidence: dict[str, Any]
    actor: str | None
    occurred_at: datetime


class ConsentEventList(BaseModel):
    data: list[ConsentEventRead]
    count: int


class ConsentChangeRead(BaseModel):
    purpose: str
    action: str
    applied: bool
    state: ConsentStateValue
    event_id: int | None
