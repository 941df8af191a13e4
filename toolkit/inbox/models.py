from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from toolkit.db import Base, BigId, JsonDoc, UtcDateTime
from toolkit.kit.clock import utcnow
from toolkit.kit.personal import Personal

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
    webhook_event_id: Mapped[str] = mapped_column(String(64), unique=True, info={"personal": None})
    event_type: Mapped[str] = mapped_column(String(32), info={"personal": None})
    user_id: Mapped[str | None] = mapped_column(String(64), index=True, info={"personal": Personal.IDENTIFIER})
    # Opaque and dead within a minute: not personal (erasure clears it all the same).
    reply_token: Mapped[str | None] = mapped_column(String(255), info={"personal": None})
    mode: Mapped[str] = mapped_column(String(16), default="active", info={"personal": None})
    is_redelivery: Mapped[bool] = mapped_column(Boolean, default=False)
    body: Mapped[dict[str, Any]] = mapped_column(JsonDoc, info={"personal": Personal.RECORD})
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default="pending", info={"personal": None})
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # What the handlers decided to say: {"purpose": ..., "messages": [...]}, sent after
    # the domain changes are committed.
    replies: Mapped[dict[str, Any] | None] = mapped_column(JsonDoc, info={"personal": Personal.FREE_TEXT})
    # Where the reply stands: reply_pending, reply_sent, push_pending, push_sent,
    # unknown (a crash mid-reply: never resent), failed, suppressed (standby / gate).
    delivery: Mapped[str | None] = mapped_column(String(16), info={"personal": None})
    # The handlers' own notes ("faq: answered 12"), never the customer's words.
    outcome: Mapped[str | None] = mapped_column(String(200), info={"personal": None})
    last_error: Mapped[str | None] = mapped_column(Text, info={"personal": Personal.FREE_TEXT})
    handled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
