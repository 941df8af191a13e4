"""What callers hand the pipeline and what it hands back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from toolkit.messaging.models import OutboundState


@dataclass(frozen=True)
class Outbound:
    """A message to enqueue, in the transaction that decided to send it."""

    source: str  # the deciding domain's name for it, e.g. "inbox.reply"
    source_id: int | None  # the deciding domain's row (webhook_event.id, chat_message.id)
    contact_id: int | None  # whom the consent gate is asked about; None: never sent
    recipient: str  # LINE user id
    purpose: str  # consent purpose, e.g. "service.chat", "marketing.line_push"
    messages: list[dict[str, Any]]
    retry_key: str  # X-Line-Retry-Key of its push (stable: line.client.retry_key)
    reply_token: str | None = None
    push_allowed: bool = False  # may a spent or missing reply token fall back to push
    group_key: str | None = None  # rows sharing it go out as one multicast (≤ 500)


@dataclass(frozen=True)
class Claimed:
    """A row leased for sending by this process until `locked_until`."""

    id: int
    source: str
    source_id: int | None
    recipient: str
    messages: list[dict[str, Any]]
    reply_token: str | None
    push_allowed: bool
    retry_key: str
    group_key: str | None
    attempts: int  # this one included
    locked_until: datetime

    @property
    def retried(self) -> bool:
        """An earlier attempt may have used the reply token (it was interrupted, or LINE's
        answer was ambiguous): a refused token then means the reply may have gone out."""
        return self.attempts > 1


@dataclass(frozen=True)
class SendOutcome:
    """How one send went. state None: LINE did not take it (429, 5xx, a timeout): retry."""

    row: Claimed
    state: OutboundState | None
    error: str | None = None
    request_id: str | None = None
    reply_token_spent: bool = False  # the token was used or refused: a retry pushes


@dataclass(frozen=True)
class Settled:
    """What a source domain hears about one of its rows after a send (or a refusal):
    `state` queued means it will be tried again."""

    source_id: int | None
    state: OutboundState
    error: str | None = None
    push_next: bool = False  # queued again with no reply token left: the retry pushes
