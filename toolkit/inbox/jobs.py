"""Inbox work: handle stored webhook events, reply, retry, purge old ones."""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass
from typing import Any

from toolkit import db
from toolkit.inbox import service
from toolkit.inbox.channel import NoChannel, line_client
from toolkit.inbox.handlers import SERVICE_PURPOSE
from toolkit.kit.jobs import job, work_loop
from toolkit.line import client as line
from toolkit.settings import get_settings

log = logging.getLogger(__name__)

PROCESS_LOOP = "inbox.process_events"
# Events claimed (leased) at a time: one claim query and one LINE client per batch. A
# batch is handled in a few seconds even against a slow LINE, well within the lease.
BATCH = 50
REPLY_PENDING = "reply_pending"
FINAL_DELIVERY = {line.REPLY_SENT, line.PUSH_SENT, line.UNKNOWN, line.FAILED, "suppressed"}


class LineUnavailable(Exception):
    """LINE (or the sandbox) did not take a push yet; the event is retried with backoff."""


@work_loop(PROCESS_LOOP, idle_s=0.2)
def process_events() -> int:
    with db.session_scope() as session:
        ids = service.claim(session, limit=BATCH)
        claimed = service.claimed_events(session, ids)
    if claimed:
        client = _client_or_none()
        try:
            for event in claimed:
                process_event(event, client)
        finally:
            if client is not None:
                client.close()
    return len(claimed)


def _client_or_none() -> line.LineClient | None:
    try:
        return line_client()
    except NoChannel:
        return None


def process_event(claimed: service.ClaimedEvent, client: line.LineClient | None) -> None:
    """Two transactions an event: apply it and plan the reply (marked reply_pending in the
    same commit), then record how sending went together with the event's end."""
    event_id = claimed.id
    config = service.load_channel_config(get_settings().config_dir / "line.yaml")
    try:
        # Outside any transaction: on SQLite an open one holds the write lock, and the
        # mounted sandbox answering this call needs it too.
        wants_profile = claimed.event_type == "follow" and not claimed.handled
        profile = _profile(client, claimed.user_id) if wants_profile else {}
        with db.session_scope() as session:
            event = service.handle(session, event_id=event_id, config=config, profile=profile)
            plan = (event.replies, event.delivery, event.reply_token, event.user_id, event.webhook_event_id)
            if event.replies and event.delivery is None:
                # Committed before the reply goes out: after a crash we know a reply may
                # have been sent, and never send a second one.
                service.set_delivery(session, event_id=event_id, delivery=REPLY_PENDING)
        sent = _deliver(client, *plan)
        with db.session_scope() as session:
            if sent.delivery is not None:
                service.set_delivery(session, event_id=event_id, delivery=sent.delivery, error=sent.error)
            if sent.retry_later:
                service.fail(session, event_id=event_id, error=sent.error or "LINE did not take the push")
            else:
                service.finish(session, event_id=event_id)
    except Exception as exc:  # noqa: BLE001 - every failure is retried, then dead-lettered
        log.warning("webhook event %s failed: %s", event_id, exc)
        with db.session_scope() as session:
            service.fail(session, event_id=event_id, error="".join(traceback.format_exception_only(exc)).strip())


def _profile(client: line.LineClient | None, user_id: str | None) -> dict[str, Any]:
    if client is None or not user_id:
        return {}
    result = client.profile(user_id)
    return result.body if result.status == 200 else {}


@dataclass(frozen=True)
class Sent:
    delivery: str | None  # the new delivery state; None: nothing to record
    error: str | None = None
    retry_later: bool = False  # LINE did not take the push yet: try the event again


def _deliver(client: line.LineClient | None, replies: dict[str, Any] | None, delivery: str | None,
             reply_token: str | None, user_id: str | None, webhook_event_id: str) -> Sent:
    """Send the planned reply. `delivery` is the state before this attempt."""
    if not replies or delivery in FINAL_DELIVERY:
        return Sent(None)
    if delivery == REPLY_PENDING:
        # An earlier attempt stopped after marking the reply: LINE may have it. Never twice.
        return Sent(line.UNKNOWN, "worker stopped mid-reply; not resent")
    if client is None:
        raise LineUnavailable("no LINE access token configured; cannot answer")
    messages = replies["messages"]
    if delivery is None:
        push_allowed = replies.get("purpose") == SERVICE_PURPOSE and user_id is not None
        delivery, result = line.send_reply(client, reply_token=reply_token, messages=messages, push_allowed=push_allowed)
        if delivery != line.PUSH_PENDING:
            return Sent(delivery, result.error if result and delivery != line.REPLY_SENT else None)
    result = client.push(user_id, messages, retry_key=line.retry_key("reply-push", webhook_event_id))
    if result.delivered:
        return Sent(line.PUSH_SENT)
    if result.retryable:
        return Sent(line.PUSH_PENDING, f"push fallback got {result.status}: {result.error}", retry_later=True)
    return Sent(line.FAILED, f"push fallback refused ({result.status}): {result.error}")


@job("inbox.purge_handled", cron="15 4 * * *")
def purge_handled() -> int:
    with db.session_scope() as session:
        return service.purge_handled(session, older_than_days=get_settings().webhook_retention_days)
