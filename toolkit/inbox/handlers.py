"""What each kind of LINE event does to our data, and what we answer.

Handlers run in the worker, each event in a SAVEPOINT of its batch's transaction; they
return the reply to send afterwards (never send themselves), so a rollback never leaves a
sent message. Whoever plans a reply, the inbox service asks the consent gate (service.chat,
for the Outcome's contact) before it is sent: a handler needs no check of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from toolkit.consent import service as consent
from toolkit.contacts import service as contacts
from toolkit.contacts.models import Contact
from toolkit.inbox.models import WebhookEvent
from toolkit.inbox.schemas import ChannelConfig
from toolkit.kit.clock import utcnow
from toolkit.kit.text import compact
from toolkit.line.client import text_message
from toolkit.llm.notice import processor_notice
from toolkit.settings import get_settings

SERVICE_PURPOSE = "service.chat"
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


def _evidence(event: WebhookEvent, **extra: Any) -> dict[str, Any]:
    return {"webhook_event_id": event.webhook_event_id, "user_id": event.user_id, **extra}


def _memo(session: Session, key: str, load: Callable[[], Any]) -> Any:
    """`load()` once per transaction: the worker handles a whole batch in one, and every
    event of it asks for the same few purposes (they change only with purposes.yaml)."""
    transaction = session.get_transaction()
    memo = session.info.get("inbox.memo")
    if memo is None or memo[0] is not transaction:
        memo = session.info["inbox.memo"] = (transaction, {})
    if key not in memo[1]:
        memo[1][key] = load()
    return memo[1][key]


def _marketing_purposes(session: Session) -> list[str]:
    return _memo(session, "marketing", lambda: [
        p.code for p in consent.list_purposes(session) if p.code.startswith(MARKETING_PREFIX)])


def _notice(session: Session, config: ChannelConfig, locale: str | None) -> tuple[str, str]:
    code = config.marketing_purpose
    purpose = _memo(session, f"purpose:{code}", lambda: consent.get_purpose(session, code))
    text = purpose.notice_en if (locale or "").startswith("en") else purpose.notice_zh
    return text, config.welcome_notice_version or purpose.notice_version


def _format(template: str, session: Session, config: ChannelConfig, locale: str | None) -> str:
    notice, version = _notice(session, config, locale)
    notice += processor_notice(get_settings(), locale)  # names the LLM processor when customer text goes to it
    return template.format(brand=config.brand_name.pick(locale), notice=notice, version=version)


def on_follow(session: Session, event: WebhookEvent, config: ChannelConfig, profile: dict[str, Any]) -> Outcome:
    assert event.user_id
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
        contact = contacts.upsert_identity(session, external_id=event.user_id).contact
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
    outcome = _text_handler(session, TextContext(contact, text, event, config))
    if outcome is None:
        return Outcome("text: handler had no answer", contact_id=contact.id)
    if outcome.contact_id is None:
        outcome.contact_id = contact.id  # whom the inbox's consent gate checks before replying
    return outcome


def on_postback(session: Session, event: WebhookEvent, data: str) -> Outcome:
    assert event.user_id
    contact = contacts.get_by_external_id(session, event.user_id)
    for prefix, handler in _postback_handlers.items():
        if contact is not None and data.startswith(prefix):
            return handler(session, contact, data, event) or Outcome(f"postback {prefix}: no answer")
    return Outcome("postback: no handler")
