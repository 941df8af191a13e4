from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from toolkit.db import Base, JsonDoc, UtcDateTime
from toolkit.kit.personal import Personal


class AuditLog(Base):
    """One link of the chain: `hash` covers every other column, `prev_hash` the row before."""

    __tablename__ = "audit_log"

    # Gapless position in the chain, assigned by the appender (a sequence would skip after
    # a rollback and hide a removed row).
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # Staff's login (their personal data), a token, "system" or "source:<how>": never a contact.
    actor: Mapped[str] = mapped_column(String(128), info={"personal": Personal.IDENTIFIER})
    action: Mapped[str] = mapped_column(String(64), index=True, info={"personal": None})
    target_type: Mapped[str | None] = mapped_column(String(32), info={"personal": None})
    # A row id or a file name: a contact is audited by its id, never by its LINE id.
    target_id: Mapped[str | None] = mapped_column(String(128), info={"personal": None})
    # May name staff (user.create); erasure leaves the chain alone, so no step writes a
    # contact's identifiers or words here.
    details: Mapped[dict[str, Any]] = mapped_column(JsonDoc, info={"personal": Personal.RECORD})
    prev_hash: Mapped[str] = mapped_column(String(64), info={"personal": None})
    hash: Mapped[str] = mapped_column(String(64), info={"personal": None})


class AuditHead(Base):
    """The chain's tip. Appenders lock this single row, which orders them; verify compares
    it with the last row so that removing rows from the end is detected too."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64), info={"personal": None})
