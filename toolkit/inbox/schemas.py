from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from toolkit.kit.localised import Localised


class Keywords(BaseModel):
    model_config = ConfigDict(extra="forbid")

    opt_out: list[str] = Field(min_length=1)
    opt_in: list[str] = Field(min_length=1)


class Texts(BaseModel):
    model_config = ConfigDict(extra="forbid")

    welcome: Localised
    opt_out_confirmation: Localised
    opt_in_confirmation: Localised


class ChannelConfig(BaseModel):
    """line.yaml (toolkit.defaults: the brand's own or the shipped one)."""

    model_config = ConfigDict(extra="forbid")

    brand_name: Localised
    marketing_purpose: str = "marketing.line_push"
    welcome_notice_version: str | None = None
    keywords: Keywords
    texts: Texts


class WebhookEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    webhook_event_id: str
    event_type: str
    user_id: str | None
    mode: str
    is_redelivery: bool
    received_at: datetime
    status: str
    attempts: int
    next_attempt_at: datetime
    delivery: str | None
    outcome: str | None
    last_error: str | None
    handled_at: datetime | None
    body: dict[str, Any]


class WebhookEventList(BaseModel):
    data: list[WebhookEventRead]
    count: int
