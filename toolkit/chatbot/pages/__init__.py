"""Admin pages of the FAQ bot: the entries (with versions, generated alternatives to
review, a box to try a question, the accuracy report), the unanswered queue, and the
agents' inbox of conversations handed to people."""

from __future__ import annotations

from fastapi import APIRouter

from toolkit.chatbot.pages import conversations, entries, unanswered

pages = APIRouter(include_in_schema=False)
for module in (entries, unanswered, conversations):
    pages.include_router(module.pages)
