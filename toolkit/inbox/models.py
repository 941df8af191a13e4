from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from toolkit.db import Base, BigId, JsonDoc, UtcDateTime
from toolkit.kit.clock import utcnow

# The status of an event refused on arrival, kept with the reason in last_error and never
# handled: it could not be stored as sent (a NUL or a lone surrogate, which PostgreSQL's
# jsonb and text refuse; its body is kept with those characters replaced), or it is older
# than the dedupe window (a captured body replayed after its row was purged).
REFUSED = "refused"


class WebhookEvent(Base):
    """One LINE webhook event, stored before we answer LINE and processed afterwards.

    status: pending -> processing -> done | ignored; a failure goes back to pending with a
    later next_attempt_at, and to dead after the last attempt (retryable by staff). An
    event refused on arrival is REFUSED from the start and never handled.
    """

    __tablename__ = "webhook_event"
    __table_args__ = (Index("ix_webhook_event_status_next_attempt", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    webhook_event_id: Mapped[str] = mapped_column(String(64), unique=True)
    event_type: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str | None] = mapped_column(String(64), index=True)
    reply_token: Mapped[str | None] = mapped_column(String(255))
    mode: Mapped[str] = mapped_column(String(16), default="active")
    is_redelivery: Mapped[bool] = mapped_column(Boolean, default=False)
    body: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # What the handlers decided to say: {"purpose": ..., "messages": [...]}, sent after
    # the domain changes are committed.
    replies: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc)
    # Where the reply stands: reply_pending, reply_sent, push_pending, push_sent,
    # unknown (a crash mid-reply: never resent), failed, suppressed (standby / gate).
    delivery: Mapped[str | None] = mapped_column(String(16))
    outcome: Mapped[str | None] = mapped_column(String(200))
    last_error: Mapped[str | None] = mapped_column(Text)
    handled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
