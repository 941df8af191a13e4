"""One row per message (or multicast batch) the product sends: what, to whom, for which
purpose, how far it got."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from toolkit.db import Base, BigId, JsonDoc, UtcDateTime
from toolkit.kit.clock import utcnow
from toolkit.kit.personal import Personal


class OutboundState(StrEnum):
    """queued -> sending -> reply_sent | push_sent | failed | unknown; suppressed when the
    consent gate refused it right before sending. A send LINE did not take (429, 5xx, a
    timeout) goes back to queued with a later next_attempt_at; failed after the last attempt.
    unknown: a reply interrupted mid-send whose token LINE then refused — it may have been
    delivered, so it is never pushed as well."""

    QUEUED = "queued"
    SENDING = "sending"
    REPLY_SENT = "reply_sent"
    PUSH_SENT = "push_sent"
    UNKNOWN = "unknown"
    FAILED = "failed"
    SUPPRESSED = "suppressed"

    @property
    def final(self) -> bool:
        return self not in (OutboundState.QUEUED, OutboundState.SENDING)

    @property
    def delivered(self) -> bool:
        return self in (OutboundState.REPLY_SENT, OutboundState.PUSH_SENT)


def _one_of(column: str, enum: type[StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(str(m)) for m in enum)})"


class OutboundMessage(Base):
    """A message to one recipient (a LINE user id). The row exists before LINE hears of it,
    so a crash leaves a row to retry, never a message we do not know about."""

    __tablename__ = "outbound_message"
    __table_args__ = (
        CheckConstraint(_one_of("state", OutboundState), name="state"),
        Index("ix_outbound_message_state_next_attempt", "state", "next_attempt_at"),
        Index("ix_outbound_message_source", "source", "source_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # Who decided to send it and their row: "inbox.reply" + webhook_event.id, ...
    source: Mapped[str] = mapped_column(String(32), info={"personal": None})
    source_id: Mapped[int | None] = mapped_column(BigInteger)
    contact_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    recipient: Mapped[str] = mapped_column(String(64), index=True, info={"personal": Personal.IDENTIFIER})
    # Rows enqueued together for one LINE multicast (a campaign batch of up to 500) share it;
    # the multicast's retry key derives from it, so a retried batch is never delivered twice.
    group_key: Mapped[str | None] = mapped_column(String(64), index=True, info={"personal": None})
    purpose: Mapped[str] = mapped_column(String(64), info={"personal": None})
    messages: Mapped[list[dict[str, Any]]] = mapped_column(JsonDoc, info={"personal": Personal.FREE_TEXT})
    reply_token: Mapped[str | None] = mapped_column(String(255), info={"personal": None})
    push_allowed: Mapped[bool] = mapped_column(Boolean, default=False)
    # X-Line-Retry-Key of a push or multicast: LINE answers a repeat 409, never delivers twice.
    retry_key: Mapped[str] = mapped_column(String(36), unique=True, info={"personal": None})
    state: Mapped[str] = mapped_column(String(16), default=OutboundState.QUEUED, info={"personal": None})
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    line_request_id: Mapped[str | None] = mapped_column(String(64), info={"personal": None})
    error: Mapped[str | None] = mapped_column(Text, info={"personal": None})
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
