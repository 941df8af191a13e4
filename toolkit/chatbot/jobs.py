"""Chatbot work in the worker: handing quiet conversations back to the bot, and agents'
pushes that LINE did not take yet. (The bot itself is the inbox's text handler, declared
in toolkit/chatbot/domain.py.)"""

from __future__ import annotations

import logging

from toolkit import db
from toolkit.chatbot import agent_replies, conversations, handoff
from toolkit.chatbot.config import load_bot_config
from toolkit.inbox.channel import NoChannel, line_client
from toolkit.kit.background import job
from toolkit.line.limits import MessageLimitError

log = logging.getLogger(__name__)

@job("chatbot.release_idle", cron="*/5 * * * *")
def release_idle() -> int:
    """Conversations with people where nothing was said for idle_release_minutes go back
    to the bot (one handed off while closed waits for the next opening first)."""
    config = load_bot_config()
    hours = config.business_hours
    with db.session_scope() as session:
        return conversations.release_idle(
            session, idle_minutes=config.idle_release_minutes,
            opens_after=lambda at: handoff.next_opening(hours, at),
        )


@job("chatbot.retry_agent_pushes", cron="* * * * *")
def retry_agent_pushes() -> int:
    """Push again, with the same retry key, the agents' messages LINE answered with 429,
    5xx or not at all: LINE answers 409 to a repeat it already has, so nothing arrives twice."""
    with db.session_scope() as session:
        plans = agent_replies.pending_pushes(session)
    if not plans:
        return 0
    try:
        client = line_client()
    except NoChannel:
        return 0
    outcomes = []
    try:
        for plan in plans:
            try:
                outcomes.append((plan.message_id, agent_replies.push_agent_reply(client, plan)))
            except MessageLimitError as exc:
                outcomes.append((plan.message_id, agent_replies.AgentDelivery("failed", str(exc))))
    finally:
        client.close()
    with db.session_scope() as session:
        for message_id, outcome in outcomes:
            agent_replies.record_agent_delivery(session, message_id=message_id, delivery=outcome.delivery,
                                                error=outcome.error)
    return sum(1 for _, o in outcomes if o.delivery != "push_pending")
