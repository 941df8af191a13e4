from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from toolkit.db import Base, BigId, UtcDateTime
from toolkit.kit.clock import utcnow
from toolkit.kit.personal import Personal


class Contact(Base):
    __tablename__ = "contact"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    display_name: Mapped[str | None] = mapped_column(String(200), info={"personal": Personal.NAME})
    locale: Mapped[str | None] = mapped_column(String(16), info={"personal": Personal.PROFILE})
    tz: Mapped[str | None] = mapped_column(String(64), info={"personal": Personal.PROFILE})
    tier: Mapped[str | None] = mapped_column(String(32), info={"personal": Personal.PROFILE})
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)
    # Set by erasure; an erased contact keeps its id (for foreign keys) and nothing personal.
    erased_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    identities: Mapped[list[ContactIdentity]] = relationship(
        back_populates="contact", cascade="all, delete-orphan", order_by="ContactIdentity.id"
    )


class ContactIdentity(Base):
    __tablename__ = "contact_identity"
    __table_args__ = (
        UniqueConstraint("channel", "external_id"),
        Index("ix_contact_identity_contact_channel", "contact_id", "channel"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16), info={"personal": None})
    external_id: Mapped[str] = mapped_column(String(128), info={"personal": Personal.IDENTIFIER})
    # Keyed HMAC of channel + external id: what the suppression list is matched against.
    external_hash: Mapped[str] = mapped_column(String(64), index=True, info={"personal": Personal.PSEUDONYM})
    followed: Mapped[bool] = mapped_column(Boolean, default=True)
    blocked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    contact: Mapped[Contact] = relationship(back_populates="identities")
