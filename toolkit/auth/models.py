from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from toolkit.db import Base, BigId, JsonDoc, UtcDateTime
from toolkit.kit.clock import utcnow
from toolkit.kit.personal import Personal


class User(Base):
    __tablename__ = "user"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True, info={"personal": Personal.CONTACT})
    display_name: Mapped[str | None] = mapped_column(String(200), info={"personal": Personal.NAME})
    password_hash: Mapped[str] = mapped_column(String(255), info={"personal": None})
    roles: Mapped[list[str]] = mapped_column(JsonDoc, default=list, info={"personal": None})
    locale: Mapped[str | None] = mapped_column(String(16), info={"personal": Personal.PROFILE})
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    tokens: Mapped[list[ApiToken]] = relationship(back_populates="user", cascade="all, delete-orphan")


class ApiToken(Base):
    """A bearer token for the REST API. Only its SHA-256 is stored; the token is shown once."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100), info={"personal": None})
    prefix: Mapped[str] = mapped_column(String(16), info={"personal": None})
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, info={"personal": None})
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    user: Mapped[User] = relationship(back_populates="tokens")
