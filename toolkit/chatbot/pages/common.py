"""What the FAQ bot's pages share: the layout's counts, entry links, translated errors."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import Any
from urllib.parse import quote

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from toolkit.auth.service import Actor
from toolkit.chatbot import conversations, unanswered
from toolkit.chatbot.deps import AGENT, READ
from toolkit.kit.errors import ToolkitError
from toolkit.settings import get_settings
from toolkit.web.csrf import verify_csrf
from toolkit.web.i18n import translator
from toolkit.web.templating import request_locale

Csrf = [Depends(verify_csrf)]


def entry_url(key: str, suffix: str = "") -> str:
    # Keys may hold "/" (the routes take them with the path converter); "?", "#", "%" are quoted.
    return f"/admin/faq/entries/{quote(key, safe='/')}{suffix}"


def lines(text: str) -> list[str]:
    """Questions typed one a line."""
    return [line.strip() for line in text.splitlines() if line.strip()]


# The notes conversations.py keeps in a conversation (English, as stored), and how staff
# read them; a note of another shape is shown as it is.
NOTES = (
    (re.compile(r"^handed off: (?P<reason>.+)$"), "chat.note.handed_off"),
    (re.compile(r"^taken by (?P<who>.+)$"), "chat.note.taken"),
    (re.compile(r"^released to the bot \((?P<reason>[^)]*)\) by (?P<who>.+)$"), "chat.note.released"),
)
REASONS = ("keyword", "complaint", "unsure", "agent", "idle")


def system_note(t: Callable[..., str], text: str) -> str:
    for pattern, key in NOTES:
        found = pattern.match(text)
        if found:
            values = found.groupdict()
            if values.get("reason") in REASONS:
                values["reason"] = t(f"chat.reason.{values['reason']}")
            return t(key, **values)
    return text


def error_message(request: Request, exc: ToolkitError) -> str:
    # Service messages are English; staff see the translated summary first when there is one.
    t = translator(request_locale(request))
    key = f"faq.error.{exc.code}"
    text = t(key)
    return exc.message if text == key else f"{text} ({exc.message})"


def context(request: Request, session: Session, **values: Any) -> dict[str, Any]:
    """The page's values plus the counts its tabs and the nav show (for who may see them)."""
    actor: Actor | None = getattr(request.state, "actor", None)
    can = actor.can if actor else (lambda _permission: False)
    return {
        "tz": get_settings().timezone,
        "entry_url": entry_url,
        "note": partial(system_note, translator(request_locale(request))),
        "open_questions": unanswered.open_count(session) if can(READ) else None,
        "waiting_handoffs": conversations.waiting_count(session) if can(AGENT) else None,
        **values,
    }
