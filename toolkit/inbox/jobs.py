"""Inbox work: handle stored webhook events, reply, retry, purge old ones."""

from __future__ import annotations

import logging
import traceback
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
FINAL_DELIVERY = {line.REPLY_SENT, line.PUSH_SENT, line.UNKNOWN, line.FAILED, "suppressed"}


class LineUnavailable(Exception):
    """LINE (or the sandbox) did not take a push yet; the event is retried with backoff."""


@work_loop(PROCESS_LOOP, idle_s=0.2)
def process_events() -> int:
    with db.session_scope() as session:
        ids = service.claim(session, limit=BATCH)
    if ids:
        client = _client_or_none()
        try:
            for event_id in ids:
                process_event(event_id, client)
        finally:
            if client is not None:
                client.close()
    return len(ids)


def _client_or_none() -> line.LineClient | None:
    try:
        return line_client()
    except NoChannel:
        return None


def process_event(event_id: int, client: line.LineClient | None) -> None:
    settings = get_settings()
    config = service.load_channel_config(settings.config_dir / "line.yaml")
    try:
        with db.session_scope() as session:
            event = service.get(session, event_id)
            if event is None:
                return
            wants_profile = event.event_type == "follow" and event.handled_at is None
            user_id = event.user_id
        # Outside any transaction: on SQLite an open one holds the write lock, and the
        # mounted sandbox answering this call needs it too.
        profile = _profile(client, user_id) if wants_profile else {}
        with db.session_scope() as session:
            event = service.handle(session, event_id=event_id, config=config, profile=profile)
            plan = (event.replies, event.delivery, event.reply_token, event.user_id, event.webhook_event_id)
        _deliver(event_id, client, *plan)
        with db.session_scope() as session:
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


def _deliver(event_id: int, client: line.LineClient | None, replies: dict[str, Any] | None,
             delivery: str | None, reply_token: str | None, user_id: str | None, webhook_event_id: str) -> None:
    if not replies or delivery in FINAL_DELIVERY:
        return
    if client is None:
        raise LineUnavailable("no LINE access token configured; cannot answer")
    messages = replies["messages"]
    push_allowed = replies.get("purpose") == SERVICE_PURPOSE and user_id is not None
    if delivery is None:
        _set_delivery(event_id, "reply_pending")
        delivery, result = line.send_reply(client, reply_token=reply_token, messages=messages, push_allowed=push_allowed)
        _set_delivery(event_id, delivery, result.error if result and delivery != line.REPLY_SENT else None)
    elif delivery == "reply_pending":
        # We crashed between sending and recording: LINE may have it. Never send twice.
        _set_delivery(event_id, line.UNKNOWN, "worker stopped mid-reply; not resent")
        return
    if delivery == line.PUSH_PENDING:
        result = client.push(user_id, messages, retry_key=line.retry_key("reply-push", webhook_event_id))
        if result.delivered:
            _set_delivery(event_id, line.PUSH_SENT)
        elif result.retryable:
            raise LineUnavailable(f"push fallback got {result.status}: {result.error}")
        else:
            _set_delivery(event_id, line.FAILED, f"push fallback refused ({result.status}): {result.error}")


def _set_delivery(event_id: int, delivery: str, error: str | None = None) -> None:
    with db.session_scope() as session:
        service.set_delivery(session, event_id=event_id, delivery=delivery, error=error)


@job("inbox.purge_handled", cron="15 4 * * *")
def purge_handled() -> int:
    with db.session_scope() as session:
        return service.purge_handled(session, older_than_days=get_settings().webhook_retention_days)
