"""The sandbox's state behind one small interface, and its in-memory implementation.

The standalone sandbox keeps everything in memory; the one mounted in `toolkit serve` uses
the database (db_store.py) so that several serve processes share one record, one set of
retry keys and reply tokens, and one set of rate counters. Whatever must hold across
processes is a single store call, atomic in the store: counting a request (`hit`) and
accepting a message (`accept`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, Protocol


@dataclass
class Delivery:
    """One message request as the record keeps it (GET /_messages)."""

    endpoint: str
    request_id: str
    at: datetime
    to: list[str] = field(default_factory=list)
    messages: list[Any] = field(default_factory=list)
    retry_key: str | None = None
    status: int = 0
    accepted: bool = False
    sent_messages: list[dict[str, str]] = field(default_factory=list)

    def as_record(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "to": list(self.to),
            "messages": self.messages,
            "retry_key": self.retry_key,
            "status": self.status,
            "accepted": self.accepted,
            "at": self.at.isoformat(),
            "request_id": self.request_id,
        }


class Outcome(Enum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"  # the retry key was accepted before: answer 409
    INVALID_REPLY_TOKEN = "invalid_reply_token"  # used or expired since it was checked
    QUOTA_EXCEEDED = "quota_exceeded"


@dataclass(frozen=True)
class Admission:
    """What `accept` checks besides the delivery itself."""

    retry_since: datetime  # retry keys accepted before this are forgotten (24 h)
    reply_token: str | None = None
    cost: int = 0  # messages counted against the monthly quota
    quota: int | None = None  # None: no limit
    quota_bucket: int = 0  # yyyymm


@dataclass(frozen=True)
class AcceptResult:
    outcome: Outcome
    # For DUPLICATE: the first accepted request's id and sentMessages.
    accepted_request_id: str | None = None
    sent_messages: list[dict[str, str]] = field(default_factory=list)


QUOTA_COUNTER = "quota"


class SandboxStore(Protocol):
    def hit(self, name: str, *, bucket: int, limit: int) -> bool:
        """Count one request in counter (name, bucket); False once the count is past limit."""

    def accept(self, delivery: Delivery, *, admission: Admission) -> AcceptResult:
        """All or nothing: claim the retry key, use up the reply token, reserve quota and
        record the (accepted) delivery. Nothing changes unless the outcome is ACCEPTED."""

    def record(self, delivery: Delivery) -> None:
        """Record a request that was not accepted."""

    def messages(self) -> list[dict[str, Any]]:
        """The record, oldest first."""

    def clear_messages(self) -> None: ...

    def add_reply_token(self, token: str, user_id: str, *, expires_at: datetime) -> None: ...

    def reply_token_user(self, token: str, *, now: datetime) -> str | None:
        """The user of an unused, unexpired reply token (does not use it up)."""

    def count(self, name: str, *, bucket: int) -> int: ...

    def setting(self, name: str) -> dict[str, Any] | None: ...

    def put_setting(self, name: str, value: dict[str, Any] | None) -> None: ...

    def purge(self, *, now: datetime, retry_since: datetime) -> None:
        """Forget expired reply tokens and retry keys accepted before retry_since."""

    def reset(self) -> None:
        """Forget everything (tests)."""


@dataclass
class _Accepted:
    request_id: str
    sent_messages: list[dict[str, str]]
    at: datetime


class MemoryStore:
    """One process's state under one lock; every method is short."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._record: list[Delivery] = []
            self._retry_keys: dict[str, _Accepted] = {}
            self._reply_tokens: dict[str, tuple[str, datetime]] = {}
            self._counters: dict[tuple[str, int], int] = {}
            self._settings: dict[str, dict[str, Any]] = {}

    def hit(self, name: str, *, bucket: int, limit: int) -> bool:
        with self._lock:
            key = (name, bucket)
            if key not in self._counters:
                # A new window: the older ones of this counter are done with.
                for old in [k for k in self._counters if k[0] == name and k[1] < bucket]:
                    del self._counters[old]
            self._counters[key] = self._counters.get(key, 0) + 1
            return self._counters[key] <= limit

    def accept(self, delivery: Delivery, *, admission: Admission) -> AcceptResult:
        with self._lock:
            key = delivery.retry_key
            earlier = self._retry_keys.get(key) if key else None
            if earlier is not None and earlier.at >= admission.retry_since:
                return AcceptResult(Outcome.DUPLICATE, earlier.request_id, earlier.sent_messages)
            if admission.reply_token is not None:
                entry = self._reply_tokens.get(admission.reply_token)
                if entry is None or entry[1] <= delivery.at:
                    return AcceptResult(Outcome.INVALID_REPLY_TOKEN)
            quota_key = (QUOTA_COUNTER, admission.quota_bucket)
            used = self._counters.get(quota_key, 0)
            if admission.quota is not None and admission.cost and used + admission.cost > admission.quota:
                return AcceptResult(Outcome.QUOTA_EXCEEDED)
            # Every check passed: apply them all.
            if admission.reply_token is not None:
                del self._reply_tokens[admission.reply_token]
            if key:
                self._retry_keys[key] = _Accepted(delivery.request_id, delivery.sent_messages, delivery.at)
            if admission.cost:
                self._counters[quota_key] = used + admission.cost
            self._record.append(delivery)
            return AcceptResult(Outcome.ACCEPTED)

    def record(self, delivery: Delivery) -> None:
        with self._lock:
            self._record.append(delivery)

    def messages(self) -> list[dict[str, Any]]:
        with self._lock:
            return [d.as_record() for d in self._record]

    def clear_messages(self) -> None:
        with self._lock:
            self._record.clear()

    def add_reply_token(self, token: str, user_id: str, *, expires_at: datetime) -> None:
        with self._lock:
            self._reply_tokens[token] = (user_id, expires_at)

    def reply_token_user(self, token: str, *, now: datetime) -> str | None:
        with self._lock:
            entry = self._reply_tokens.get(token)
        return entry[0] if entry is not None and entry[1] > now else None

    def count(self, name: str, *, bucket: int) -> int:
        with self._lock:
            return self._counters.get((name, bucket), 0)

    def setting(self, name: str) -> dict[str, Any] | None:
        with self._lock:
            return self._settings.get(name)

    def put_setting(self, name: str, value: dict[str, Any] | None) -> None:
        with self._lock:
            if value is None:
                self._settings.pop(name, None)
            else:
                self._settings[name] = value

    def purge(self, *, now: datetime, retry_since: datetime) -> None:
        with self._lock:
            self._reply_tokens = {t: e for t, e in self._reply_tokens.items() if e[1] > now}
            self._retry_keys = {k: a for k, a in self._retry_keys.items() if a.at >= retry_since}
