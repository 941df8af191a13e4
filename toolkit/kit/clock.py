"""One place to read the time, so that every stored timestamp is aware UTC."""

from datetime import datetime, timezone


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
