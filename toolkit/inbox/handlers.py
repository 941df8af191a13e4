"""What each kind of LINE event does to our data, and what we answer.

Handlers run in the worker, each event in a SAVEPOINT of its batch's transaction; they
return the reply to send afterwards (never send themselves), so a rollback never leaves a
sent message. Whoever plans a reply, the inbox service asks the consent gate (service.chat,
for the Outcome's contact) before it is sent: a handler needs no check of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from toolkit.consent import service as consent
from toolkit.contacts import service as contacts
from toolkit.contacts.models import Contact
from toolkit.inbox.models import WebhookEvent
from toolkit.inbox.schemas import ChannelConfig
from toolkit.kit.clock import utcnow
from toolkit.kit.memo import in_scope, memoised, remember
from toolkit.kit.text import compact
from toolkit.line.client import text_message
from toolkit.llm.notice import processor_notice
from toolkit.settings import get_settings

SERVICE_PURPOSE = "service.chat"
CHANNEL = "line"
MARKETING_PREFIX = "marketing."


@dataclass
class Outcome:
    note: str
    messages: list[dict[str, Any]] = field(default_factory=list)
    contact_id: int | None = None  # whom the messages go to (the gate checks them); None: the event's user


@dataclass(frozen=True)
class TextContext:
    """What a text handler (the FAQ bot) gets: the contact, the message, the event."""

    contact: Contact
    text: str
    event: WebhookEvent
    config: ChannelConfig
    chat_allowed: bool | None = None  # service.chat reaches the contact; None: not looked up, ask the gate


TextHandler = Callable[[Session, TextContext], Outcome | None]
_text_handler: TextHandler | None = None
PostbackHandler = Callable[[Session, Contact, str, WebhookEvent], Outcome | None]
_postback_handlers: dict[str, PostbackHandler] = {}


def register_text_handler(handler: TextHandler | None) -> None:
    """The one text handler (the FAQ bot). Keywords are matched before it is called."""
    global _text_handler
    _text_handler = handler


def current_text_handler() -> TextHandler | None:
    """The installed text handler, so that whoever replaces it can put it back."""
    return _text_handler


def register_postback_handler(prefix: str, handler: PostbackHandler) -> None:
    _postback_handlers[prefix] = handler


POSTBACK_KIND = "postback:"


def install_event_handlers(handlers: Mapping[str, Callable[..., Any]]) -> Callable[[], None]:
    """Make the product's handlers (by kind: "text", "postback:<prefix>") the ones events
    go to in this process; returns how to put back what was there."""
    global _text_handler
    previous_text, previous_postbacks = _text_handler, dict(_postback_handlers)
    for kind, handler in handlers.items():
        if kind == "text":
            _text_handler = handler
        elif kind.startswith(POSTBACK_KIND):
            _postback_handlers[kind.removeprefix(POSTBACK_KIND)] = handler
        else:
            raise ValueError(f"no inbound event of kind {kind!r}")

    def undo() -> None:
        global _text_handler
        _text_handler = previous_text
        _postback_handlers.clear()
        _postback_handlers.update(previous_postbacks)

    return undo


def _evidence(event: WebhookEvent, **extra: Any) -> dict[str, Any]:
    return {"webhook_event_id": event.webhook_event_id, "user_id": event.user_id, **extra}


# --- the batch's users, looked up once --------------------------------------------------

KNOWN_USERS = "inbox.known_users"


@dataclass
class KnownUsers:
    """A batch's LINE users as the batch began: their contacts, which of them are suppressed,
    and which contacts service.chat reaches. An event that may change a user's identity or
    consent (follow, unfollow, postback) forgets that user, and the user's later events in
    the batch look them up again."""

    contacts: dict[str, Contact]
    suppressed: set[str]
    chat_allowed: set[int]

    def forget(self, user_id: str) -> None:
        self.contacts.pop(user_id, None)
        self.suppressed.discard(user_id)


def look_up_users(session: Session, user_ids: Iterable[str | None]) -> KnownUsers:
    """Three queries for a whole batch instead of four for each of its events. Inside a
    memo scope (toolkit.kit.memo) the handlers then use them; elsewhere nothing changes."""
    wanted = {user_id for user_id in user_ids if user_id}
    found = contacts.by_external_ids(session, wanted)
    suppressed = consent.suppressed_among(session, channel=CHANNEL, external_ids=wanted)
    reachable = [contact.id for user_id, contact in found.items() if user_id not in suppressed]
    chat_allowed = consent.allowed(session, reachable, purpose=SERVICE_PURPOSE, channel=CHANNEL) if reachable else set()
    known = KnownUsers(found, suppressed, chat_allowed)
    remember(session, KNOWN_USERS, known)
    return known


def batch_contact_ids(session: Session) -> list[int]:
    """The contacts of the batch being handled (none outside a batch): a text handler may
    load what it keeps on them in one query too."""
    known: KnownUsers | None = in_scope(session, KNOWN_USERS)
    return sorted({contact.id for contact in known.contacts.values()}) if known is not None else []


def _contact_of(session: Session, user_id: str) -> tuple[Contact, bool | None]:
    """The user's contact (created on first contact) and whether service.chat reaches it
    (None: not known here, ask the gate). IdentitySuppressed for a suppressed identity."""
    known: KnownUsers | None = in_scope(session, KNOWN_USERS)
    if known is not None and user_id in known.suppressed:
        raise contacts.IdentitySuppressed(user_id)
    if known is not None and user_id in known.contacts:
        contact = known.contacts[user_id]
        return contact, contact.id in known.chat_allowed
    return contacts.upsert_identity(session, external_id=user_id).contact, None


def _forget(session: Session, user_id: str) -> None:
    known: KnownUsers | None = in_scope(session, KNOWN_USERS)
    if known is not None:
        known.forget(user_id)


def _marketing_purposes(session: Session) -> list[str]:
    return memoised(session, "inbox.marketing_purposes", lambda: [
        p.code for p in consent.list_purposes(session) if p.code.startswith(MARKETING_PREFIX)])


def _notice(session: Session, config: ChannelConfig, locale: str | None) -> tuple[str, str]:
    code = config.marketing_purpose
    purpose = memoised(session, f"inbox.purpose:{code}", lambda: consent.get_purpose(session, code))
    text = purpose.notice_en if (locale or "").startswith("en") else purpose.notice_zh
    return text, config.welcome_notice_version or purpose.notice_version


def _format(template: str, session: Session, config: ChannelConfig, locale: str | None) -> str:
    notice, version = _notice(session, config, locale)
    notice += processor_notice(get_settings(), locale)  # names the LLM processor when customer text goes to it
    return template.format(brand=config.brand_name.pick(locale), notice=notice, version=version)


def on_follow(session: Session, event: WebhookEvent, config: ChannelConfig, profile: dict[str, Any]) -> Outcome:
    assert event.user_id
    _forget(session, event.user_id)  # unblocked, maybe created: looked up afresh from here on
    try:
        result = contacts.upsert_identity(
            session, external_id=event.user_id,
            display_name=profile.get("displayName"), locale=profile.get("language"),
        )
    except contacts.IdentitySuppressed:
        # Erased or objected to all contact: we keep no record and send nothing.
        return Outcome("suppressed identity: not re-added, no welcome")
    contact = result.contact
    identity = next(i for i in contact.identities if i.channel == "line" and i.external_id == event.user_id)
    if not identity.followed or identity.blocked_at is not None:  # no UPDATE when nothing changes
        identity.followed, identity.blocked_at = True, None
    _, version = _notice(session, config, contact.locale)
    change = consent.grant(
        session, contact_id=contact.id, purpose=config.marketing_purpose, source="follow",
        notice_version=version, evidence=_evidence(event, notice_version=version),
    )
    note = "followed; marketing granted" if change.applied else f"followed; earlier refusal stands ({change.state})"
    welcome = text_message(_format(config.texts.welcome.pick(contact.locale), session, config, contact.locale))
    return Outcome(note, [welcome], contact.id)


def on_unfollow(session: Session, event: WebhookEvent, config: ChannelConfig) -> Outcome:
    assert event.user_id
    _forget(session, event.user_id)  # blocked from here on
    contact = contacts.get_by_external_id(session, event.user_id)
    if contact is None:
        return Outcome("unfollow from an unknown user")
    for identity in contact.identities:
        if identity.channel == "line" and identity.external_id == event.user_id:
            identity.followed, identity.blocked_at = False, utcnow()
    for code in _marketing_purposes(session):
        consent.withdraw(session, contact_id=contact.id, purpose=code, source="unfollow",
                         evidence=_evidence(event))
    return Outcome("blocked; marketing withdrawn", contact_id=contact.id)


def on_text(session: Session, event: WebhookEvent, config: ChannelConfig, text: str) -> Outcome:
    assert event.user_id
    try:
        contact, chat_allowed = _contact_of(session, event.user_id)
    except contacts.IdentitySuppressed:
        return Outcome("suppressed identity: ignored")
    said = compact(text)
    if said in {compact(k) for k in config.keywords.opt_out}:
        for code in _marketing_purposes(session):
            consent.withdraw(session, contact_id=contact.id, purpose=code, source="keyword",
                             evidence=_evidence(event, text=text))
        reply = config.texts.opt_out_confirmation.pick(contact.locale)
        return Outcome("opt-out keyword: marketing withdrawn",
                       [text_message(_format(reply, session, config, contact.locale))], contact.id)
    if said in {compact(k) for k in config.keywords.opt_in}:
        _, version = _notice(session, config, contact.locale)
        consent.grant(session, contact_id=contact.id, purpose=config.marketing_purpose, source="keyword",
                      notice_version=version, evidence=_evidence(event, text=text, notice_version=version))
        reply = config.texts.opt_in_confirmation.pick(contact.locale)
        return Outcome("opt-in keyword: marketing granted",
                       [text_message(_format(reply, session, config, contact.locale))], contact.id)
    if _text_handler is None:
        return Outcome("text: no text handler installed", contact_id=contact.id)
    outcome = _text_handler(session, TextContext(contact, text, event, config, chat_allowed))
    if outcome is None:
        return Outcome("text: handler had no answer", contact_id=contact.id)
    if outcome.contact_id is None:
        outcome.contact_id = contact.id  # whom the inbox's consent gate checks before replying
    return outcome


def on_postback(session: Session, event: WebhookEvent, data: str) -> Outcome:
    assert event.user_id
    _forget(session, event.user_id)  # a postback handler may change what we hold on the user
    contact = contacts.get_by_external_id(session, event.user_id)
    for prefix, handler in _postback_handlers.items():
        if contact is not None and data.startswith(prefix):
            return handler(session, contact, data, event) or Outcome(f"postback {prefix}: no answer")
    return Outcome("postback: no handler")
