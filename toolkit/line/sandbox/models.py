"""Tables of the database-backed sandbox store, shared by every `toolkit serve` process.

Only the DB store (db_store.py) touches them, through Core statements: each request is one
or two short transactions, and the atomic parts (counters, retry keys, reply tokens) are
single upserts or deletes with RETURNING, so that several processes agree without locks.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from toolkit.db import Base, BigId, JsonDoc, UtcDateTime
from toolkit.kit.personal import Personal


class SandboxMessage(Base):
    """Every message request the sandbox received (GET /_messages), accepted or not."""

    __tablename__ = "sandbox_message"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(String(36), info={"personal": None})
    endpoint: Mapped[str] = mapped_column(String(16), info={"personal": None})
    recipients: Mapped[list[str]] = mapped_column(JsonDoc, info={"personal": Personal.IDENTIFIER})
    messages: Mapped[list[Any]] = mapped_column(JsonDoc, info={"personal": Personal.FREE_TEXT})
    retry_key: Mapped[str | None] = mapped_column(String(36), info={"personal": None})
    status: Mapped[int] = mapped_column(Integer)
    accepted: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(UtcDateTime)


class SandboxRetryKey(Base):
    """An accepted X-Line-Retry-Key: a second request with it within 24 h gets 409."""

    __tablename__ = "sandbox_retry_key"
    __table_args__ = (Index("ix_sandbox_retry_key_accepted_at", "accepted_at"),)

    retry_key: Mapped[str] = mapped_column(String(36), primary_key=True, info={"personal": None})
    request_id: Mapped[str] = mapped_column(String(36), info={"personal": None})
    endpoint: Mapped[str] = mapped_column(String(16), info={"personal": None})
    sent_messages: Mapped[list[dict[str, str]]] = mapped_column(JsonDoc, info={"personal": None})
    accepted_at: Mapped[datetime] = mapped_column(UtcDateTime)


class SandboxReplyToken(Base):
    """A reply token that has not been used yet; deleted when used."""

    __tablename__ = "sandbox_reply_token"
    __table_args__ = (Index("ix_sandbox_reply_token_expires_at", "expires_at"),)

    token: Mapped[str] = mapped_column(String(255), primary_key=True, info={"personal": None})
    user_id: Mapped[str] = mapped_column(String(33), info={"personal": Personal.IDENTIFIER})
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)


class SandboxCounter(Base):
    """Fixed-window counters: requests per endpoint per rate window (bucket = epoch seconds
    // window length), messages per month (bucket = yyyymm)."""

    __tablename__ = "sandbox_counter"

    name: Mapped[str] = mapped_column(String(32), primary_key=True, info={"personal": None})
    bucket: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    count: Mapped[int] = mapped_column(BigInteger)


class SandboxSetting(Base):
    """Small shared settings set through the API: injected faults, the webhook endpoint."""

    __tablename__ = "sandbox_setting"

    name: Mapped[str] = mapped_column(String(32), primary_key=True, info={"personal": None})
    value: Mapped[dict[str, Any]] = mapped_column(JsonDoc, info={"personal": None})


SANDBOX_TABLES = [
    SandboxMessage.__table__,
    SandboxRetryKey.__table__,
    SandboxReplyToken.__table__,
    SandboxCounter.__table__,
    SandboxSetting.__table__,
]
