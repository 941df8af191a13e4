from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from toolkit.db import Base, BigId, JsonDoc, UtcDateTime
from toolkit.kit.clock import utcnow
from toolkit.kit.personal import Personal


class Purpose(Base):
    """A processing purpose from config/purposes.yaml, synced at every start."""

    __tablename__ = "purpose"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True, info={"personal": None})
    lawful_basis: Mapped[str] = mapped_column(String(32), info={"personal": None})
    name_zh: Mapped[str] = mapped_column(String(200), info={"personal": None})
    name_en: Mapped[str] = mapped_column(String(200), info={"personal": None})
    notice_zh: Mapped[str] = mapped_column(Text, info={"personal": None})
    notice_en: Mapped[str] = mapped_column(Text, info={"personal": None})
    notice_version: Mapped[str] = mapped_column(String(32), info={"personal": None})
    retention_days: Mapped[int] = mapped_column(Integer)
    # A purpose removed from the YAML is kept (its events refer to it) but no longer offered.
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class ConsentEvent(Base):
    """Append-only record of every grant, withdrawal and objection, with its evidence."""

    __tablename__ = "consent_event"
    __table_args__ = (Index("ix_consent_event_contact_occurred", "contact_id", "occurred_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id", ondelete="CASCADE"))
    purpose_id: Mapped[int] = mapped_column(ForeignKey("purpose.id"))
    action: Mapped[str] = mapped_column(String(16), info={"personal": None})
    source: Mapped[str] = mapped_column(String(32), info={"personal": None})
    notice_version: Mapped[str | None] = mapped_column(String(32), info={"personal": None})
    evidence: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict, info={"personal": Personal.RECORD})
    # The staff member or integration that recorded it, never the person: kept by erasure.
    actor: Mapped[str | None] = mapped_column(String(128), info={"personal": Personal.IDENTIFIER})
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class ConsentState(Base):
    """Current value per contact x purpose, written in the same transaction as its event."""

    __tablename__ = "consent_state"
    __table_args__ = (Index("ix_consent_state_purpose_state_contact", "purpose_id", "state", "contact_id"),)

    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id", ondelete="CASCADE"), primary_key=True)
    purpose_id: Mapped[int] = mapped_column(ForeignKey("purpose.id"), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), info={"personal": None})
    notice_version: Mapped[str | None] = mapped_column(String(32), info={"personal": None})
    source: Mapped[str] = mapped_column(String(32), info={"personal": None})
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    event_id: Mapped[int] = mapped_column(ForeignKey("consent_event.id"))


class Suppression(Base):
    """Keyed hash of a channel identity that must never be messaged or re-added.

    Written by erasure and by an objection to all contact; it outlives the contact row.
    """

    __tablename__ = "suppression"

    hash: Mapped[str] = mapped_column(String(64), primary_key=True, info={"personal": Personal.PSEUDONYM})
    reason: Mapped[str] = mapped_column(String(32), info={"personal": None})
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
