"""The bot that answers customers' text messages on LINE: the inbox's text handler.

The inbox has already matched the opt-out/opt-in keywords (DESIGN.md, "Webhook"); then,
for everything else:

1. the message is recorded in the contact's conversation (nothing at all when the person
   objected to service.chat: no answer may come of it, so there is nothing to process it for);
2. while people own the conversation (waiting, human) the bot is silent — but out of
   hours a customer writing again to a waiting conversation is told again when people
   answer (at most every waiting_reminder_minutes);
3. handoff triggers (chatbot.yaml: keywords, a complaint tone) hand it to people,
   with one message saying a person will answer — now, or from the next opening time;
4. a thank-you or an acknowledgement (「謝謝」, "ok") gets a short reply and is not a
   question; a message of only emoji or punctuation gets none;
5. else the FAQ: an answer verbatim in one text message, or one "not sure" message
   offering a person, the question queued as unanswered; `miss_limit` not-sure answers
   in a row hand the conversation to people.

The handler only returns messages: the inbox sends them after its commit (reply token
first, push fallback for service.chat) and withholds them if the gate says no.

It is installed by install(), which the worker runs when its loops start (registered in
toolkit.chatbot.jobs through toolkit.kit.background.on_worker_start): every process that handles
webhook events — the embedded worker of `toolkit serve`, its child worker, `toolkit
worker` — has it, and importing the chatbot anywhere else (a test, a page) changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from toolkit.chatbot import answering, conversations, handoff, service, unanswered
from toolkit.chatbot.config import BotConfig, load_bot_config
from toolkit.chatbot.conversations import BOT, BOT_SENDER, CUSTOMER, IN, OUT, WAITING
from toolkit.chatbot.matcher import Match
from toolkit.chatbot.models import ChatMessage, Conversation
from toolkit.contacts.models import Contact
from toolkit.inbox import handlers
from toolkit.inbox.handlers import Outcome, TextContext
from toolkit.kit.clock import utcnow
from toolkit.kit.localised import Localised
from toolkit.kit.memo import memoised
from toolkit.kit.text import normalise
from toolkit.line.client import text_message

UNSURE = "unsure"


def faq_answer(session: Session, text: str) -> Match:
    """The one place the bot asks the FAQ for an answer: the lexical matcher, checked by
    the semantic signals when an LLM is configured and may see customer text."""
    return answering.answer(session, text)


def respond(session: Session, ctx: TextContext, *, config: BotConfig, now: datetime | None = None) -> Outcome:
    """What the bot does with one text message (see the module's doc)."""
    now = now or utcnow()
    contact = ctx.contact
    may_chat = ctx.chat_allowed if ctx.chat_allowed is not None else conversations.may_chat(session, contact.id)
    if not may_chat:
        return Outcome("chat: service.chat not allowed; not recorded, not answered", contact_id=contact.id)
    conversation = _conversation_of(session, contact.id)
    # Not flushed yet: with the answer it goes out as one INSERT (an unsure answer needs its id).
    inbound = conversations.add_message(session, conversation, direction=IN, sender=CUSTOMER, text=ctx.text,
                                        now=now, webhook_event_id=ctx.event.id, flush=False)
    if ctx.event.mode == "standby":
        return Outcome("chat: recorded; standby, the bot does not answer", contact_id=contact.id)
    if conversation.status != BOT:
        reminder = _remind_out_of_hours(session, ctx, conversation, config, now=now)
        return reminder or Outcome(f"chat: recorded for people ({conversation.status}); bot silent",
                                   contact_id=contact.id)

    reason = handoff.trigger(ctx.text, config.handoff)
    if reason is not None:
        return _hand_off(session, ctx, conversation, config, reason=reason, now=now)
    if not normalise(ctx.text):
        return Outcome("chat: only emoji or punctuation; nothing to answer", contact_id=contact.id)
    if handoff.is_acknowledgement(ctx.text, config.acknowledgements):
        text = config.texts.acknowledged.pick(contact.locale)
        _say(session, ctx, conversation, text, now=now)
        return Outcome("chat: acknowledged", [text_message(text)], contact.id)

    match = faq_answer(session, ctx.text)
    answer = service.answer_of(session, match.entry_id) if match.answered and match.entry_id else None
    if answer:
        conversation.misses = 0
        _say(session, ctx, conversation, answer, now=now, entry_key=match.entry_id, score=float(match.score),
             answered=True, flush=False)
        quick = [_human_button(config, contact)] if config.offer_human_with_answers else []
        *texts, last = service.answer_texts(answer)
        messages = [*(text_message(t) for t in texts), text_message(last, quick_replies=quick)]
        return Outcome(f"faq: answered {match.entry_id}"[:200], messages, contact.id)

    conversation.misses += 1
    session.flush()  # the queued question points at the customer's message
    unanswered.record(session, text=ctx.text, contact_id=contact.id, message_id=inbound.id,
                      best_entry_key=match.top_id, score=float(match.score))
    if conversation.misses >= config.handoff.miss_limit:
        return _hand_off(session, ctx, conversation, config, reason=UNSURE, now=now)
    text = config.texts.not_sure.pick(contact.locale)
    _say(session, ctx, conversation, text, now=now, entry_key=match.top_id, score=float(match.score), answered=False)
    quick = [_human_button(config, contact)]
    return Outcome("faq: not sure; offered a person", [text_message(text, quick_replies=quick)], contact.id)


def _conversation_of(session: Session, contact_id: int) -> Conversation:
    # A batch of webhook events (a memo scope) loads its contacts' conversations at once.
    loaded = memoised(session, "chatbot.batch_conversations",
                      lambda: conversations.by_contacts(session, handlers.batch_contact_ids(session)))
    return loaded.get(contact_id) or conversations.conversation_for(session, contact_id=contact_id)


def _hand_off(session: Session, ctx: TextContext, conversation: Conversation, config: BotConfig, *, reason: str,
              now: datetime) -> Outcome:
    conversations.hand_off(session, conversation_id=conversation.id, reason=reason, now=now)
    text = handoff_text(config, ctx.contact, reason=reason, now=now)
    _say(session, ctx, conversation, text, now=now)
    return Outcome(f"handoff: {reason}", [text_message(text)], ctx.contact.id)


def _remind_out_of_hours(session: Session, ctx: TextContext, conversation: Conversation, config: BotConfig, *,
                         now: datetime) -> Outcome | None:
    """A customer writing again while the conversation waits for people, out of hours, is
    told again when they answer: silence would look like a broken bot. Not more often than
    waiting_reminder_minutes; never once a person has taken the conversation."""
    every = config.waiting_reminder_minutes
    if conversation.status != WAITING or not every or handoff.is_open(config.business_hours, now):
        return None
    said = conversations.last_bot_message_at(session, conversation_id=conversation.id)
    if said is not None and now - said < timedelta(minutes=every):
        return None
    text = _closed_text(config, ctx.contact, config.texts.waiting_closed, now=now)
    _say(session, ctx, conversation, text, now=now)
    return Outcome("chat: waiting for people out of hours; told when they answer", [text_message(text)],
                   ctx.contact.id)


def _closed_text(config: BotConfig, contact: Contact, template: Localised, *, now: datetime) -> str:
    hours, locale = config.business_hours, contact.locale
    opening = handoff.describe_opening(hours, handoff.next_opening(hours, now), now=now, locale=locale)
    return template.pick(locale).format(hours=hours.summary.pick(locale), next_open=opening)


def handoff_text(config: BotConfig, contact: Contact, *, reason: str, now: datetime) -> str:
    """A person will answer (open), or when they will (closed); a complaint is met with an
    apology and a miss with honesty first."""
    locale, hours, texts = contact.locale, config.business_hours, config.texts
    if handoff.is_open(hours, now):
        text = texts.handoff_open.pick(locale)
    else:
        text = _closed_text(config, contact, texts.handoff_closed, now=now)
    lead = {handoff.COMPLAINT: texts.lead_complaint, UNSURE: texts.lead_unsure}.get(reason)
    return f"{lead.pick(locale)}{' ' if _latin_locale(locale) else ''}{text}" if lead else text


def _latin_locale(locale: str | None) -> bool:
    return (locale or "").lower().startswith("en")


def _human_button(config: BotConfig, contact: Contact) -> tuple[str, str]:
    return config.texts.human_button.pick(contact.locale), config.texts.human_button_text.pick(contact.locale)


def _say(session: Session, ctx: TextContext, conversation: Conversation, text: str, *, now: datetime,
         **fields: Any) -> ChatMessage:
    # webhook_event_id: the event whose reply token this answer uses (agents must not reuse it).
    return conversations.add_message(session, conversation, direction=OUT, sender=BOT_SENDER, text=text, now=now,
                                     webhook_event_id=ctx.event.id, **fields)


def handle(session: Session, ctx: TextContext) -> Outcome:
    """The inbox's text handler, with the configuration as it is now on disk."""
    return respond(session, ctx, config=load_bot_config())


def install(*, config: BotConfig | None = None, clock: Callable[[], datetime] | None = None) -> Callable[[], None]:
    """Make the bot the inbox's text handler; returns how to put the previous one back.
    `config` and `clock` fix the configuration and the time (tests)."""
    previous = handlers.current_text_handler()

    def handler(session: Session, ctx: TextContext) -> Outcome:
        return respond(session, ctx, config=config or load_bot_config(), now=clock() if clock else None)

    handlers.register_text_handler(handler if (config or clock) else handle)
    return lambda: handlers.register_text_handler(previous)
