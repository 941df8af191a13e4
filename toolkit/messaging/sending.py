"""One send to LINE and what it came to, with no session: reply token first, push only
where the row allows it, multicast for a group. Never raises for LINE's answers."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from toolkit.line import client as line
from toolkit.line.limits import MessageLimitError
from toolkit.messaging.models import OutboundState
from toolkit.messaging.schemas import Claimed, SendOutcome

log = logging.getLogger(__name__)

NOT_PUSHED = "the reply token was refused after an interrupted attempt: it may have been delivered, so not pushed"


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


def deliver(client: line.LineClient, row: Claimed) -> SendOutcome:
    """Send one row. An exception (not one of LINE's answers) leaves it to retry."""
    try:
        return _deliver(client, row)
    except MessageLimitError as exc:  # refused before anything was sent, and it would be every time
        return SendOutcome(row, OutboundState.FAILED, f"not sendable: {exc}", reply_token_spent=True)
    except Exception as exc:  # noqa: BLE001 - unknown whether LINE got it: the retry finds out safely
        log.warning("sending outbound message %s failed: %s", row.id, exc)
        return SendOutcome(row, None, describe(exc))


def _deliver(client: line.LineClient, row: Claimed) -> SendOutcome:
    if row.reply_token and row.retried:
        # An earlier attempt may have used the token: LINE refuses a used one, so trying it
        # once more either delivers the reply or proves nothing may be pushed.
        result = client.reply(row.reply_token, row.messages)
        if result.delivered:
            return SendOutcome(row, OutboundState.REPLY_SENT, request_id=result.request_id, reply_token_spent=True)
        if result.invalid_reply_token:
            return SendOutcome(row, OutboundState.UNKNOWN, NOT_PUSHED, reply_token_spent=True)
        if result.retryable:
            return SendOutcome(row, None, f"reply got {result.status}: {result.error}")
        return SendOutcome(row, OutboundState.FAILED, f"reply refused ({result.status}): {result.error}",
                           reply_token_spent=True)
    if row.reply_token:
        delivery, result = line.send_reply(client, reply_token=row.reply_token, messages=row.messages,
                                           push_allowed=row.push_allowed)
        if delivery != line.PUSH_PENDING:
            error = result.error if result is not None and delivery != line.REPLY_SENT else None
            return SendOutcome(row, OutboundState(delivery), error,
                               request_id=result.request_id if result is not None else None, reply_token_spent=True)
    elif not row.push_allowed:
        return SendOutcome(row, OutboundState.FAILED, "no reply token, and its purpose allows no push")
    return _push(client, row)


def _push(client: line.LineClient, row: Claimed) -> SendOutcome:
    result = client.push(row.recipient, row.messages, retry_key=row.retry_key)
    if result.delivered:  # now, or by an earlier try under the same retry key (409)
        return SendOutcome(row, OutboundState.PUSH_SENT, request_id=result.request_id or result.accepted_request_id,
                           reply_token_spent=True)
    if result.retryable:
        return SendOutcome(row, None, f"push got {result.status}: {result.error}", reply_token_spent=True)
    return SendOutcome(row, OutboundState.FAILED, f"push refused ({result.status}): {result.error}",
                       reply_token_spent=True)


def deliver_group(client: line.LineClient, rows: Sequence[Claimed]) -> list[SendOutcome]:
    """Send rows sharing a group key as one multicast (they carry the same messages). The
    retry key is the group's, so a retried batch is answered 409, not delivered twice."""
    if not rows:
        return []
    key = line.retry_key("multicast", rows[0].group_key)
    try:
        result = client.multicast([r.recipient for r in rows], rows[0].messages, retry_key=key)
    except MessageLimitError as exc:
        return [SendOutcome(r, OutboundState.FAILED, f"not sendable: {exc}") for r in rows]
    except Exception as exc:  # noqa: BLE001 - as in deliver
        return [SendOutcome(r, None, describe(exc)) for r in rows]
    if result.delivered:
        request_id = result.request_id or result.accepted_request_id
        return [SendOutcome(r, OutboundState.PUSH_SENT, request_id=request_id) for r in rows]
    state = None if result.retryable else OutboundState.FAILED
    return [SendOutcome(r, state, f"multicast got {result.status}: {result.error}") for r in rows]
