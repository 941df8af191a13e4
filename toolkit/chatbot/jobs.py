"""Chatbot work in the worker: handing quiet conversations back to the bot, and agents'
pushes left pending by an earlier version. (The bot itself is the inbox's text handler, declared
in toolkit/chatbot/domain.py.)"""

from __future__ import annotations

import logging

from toolkit import db
from toolkit.chatbot import agent_replies, conversations, handoff
from toolkit.chatbot.config import load_bot_config
from toolkit.kit.background import job

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
    """Hand agents' pushes left pending by a version from before the outbound pipeline to
    it (the sender loop retries today's itself, with the same retry key)."""
    with db.session_scope() as session:
        return agent_replies.enqueue_legacy_pushes(session)
