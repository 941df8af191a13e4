"""Keys the product generates for itself: made once, stored in the database, shared by
every process (never regenerated per process, or sessions and suppression hashes break)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import datetime

from pydantic import SecretStr
from sqlalchemy import String, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from toolkit.db import Base, UtcDateTime
from toolkit.kit.clock import utcnow
from toolkit.settings import get_settings

SESSION_KEY = "session_signing"
SUPPRESSION_KEY = "suppression_hmac"
# Generated only for development and the sandbox; a real channel's secret comes from settings.
LINE_CHANNEL_SECRET = "line_channel_secret"


class AppSecret(Base):
    __tablename__ = "app_secret"

    name: Mapped[str] = mapped_column(String(64), primary_key=True, info={"personal": None})
    value: Mapped[str] = mapped_column(String(128), info={"personal": None})
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


_cache: dict[tuple[str, str], str] = {}


def _configured(name: str) -> SecretStr | None:
    settings = get_settings()
    return {
        SESSION_KEY: settings.secret_key,
        SUPPRESSION_KEY: settings.suppression_key,
        LINE_CHANNEL_SECRET: settings.line_channel_secret,
    }.get(name)


def get_secret(session: Session, name: str) -> str:
    """The configured secret, else the one stored in the database, else a new one stored there."""
    configured = _configured(name)
    if configured is not None:
        return configured.get_secret_value()
    bind = session.get_bind()
    cache_key = (str(bind.engine.url), name)
    if cache_key in _cache:
        return _cache[cache_key]
    value = session.scalar(select(AppSecret.value).where(AppSecret.name == name))
    if value is None:
        insert = pg_insert if bind.dialect.name == "postgresql" else sqlite_insert
        # Two processes may start at once: the first insert wins and both read it back.
        session.execute(
            insert(AppSecret)
            .values(name=name, value=secrets.token_urlsafe(48), created_at=utcnow())
            .on_conflict_do_nothing(index_elements=["name"])
        )
        value = session.scalar(select(AppSecret.value).where(AppSecret.name == name))
    assert value is not None
    _cache[cache_key] = value
    return value


def identity_hash(session: Session, channel: str, external_id: str) -> str:
    """Keyed hash of a channel identity; what suppression stores instead of the id itself."""
    return identity_hasher(session, channel)(external_id)


def identity_hasher(session: Session, channel: str) -> Callable[[str], str]:
    """identity_hash for many ids of one channel, with the key looked up once."""
    key = get_secret(session, SUPPRESSION_KEY).encode()
    prefix = f"{channel}:"
    return lambda external_id: hmac.new(key, (prefix + external_id).encode(), hashlib.sha256).hexdigest()


def clear_cache() -> None:
    _cache.clear()
