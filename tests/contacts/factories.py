from __future__ import annotations

import itertools
import uuid

from sqlalchemy.orm import Session

from toolkit.consent import service as consent
from toolkit.contacts import service
from toolkit.contacts.models import Contact
from toolkit.kit.clock import utcnow

_counter = itertools.count(1)


def line_id() -> str:
    return "U" + uuid.uuid4().hex


def make_contact(
    session: Session,
    *,
    external_id: str | None = None,
    display_name: str | None = None,
    consent_to: dict[str, str] | None = None,
    blocked: bool = False,
) -> Contact:
    """A contact with a LINE identity; `consent_to` maps purpose code -> grant|withdraw|object."""
    name = display_name or f"Contact {next(_counter)}"
    contact = service.upsert_identity(session, external_id=external_id or line_id(), display_name=name).contact
    for purpose, action in (consent_to or {}).items():
        consent.record(session, contact_id=contact.id, purpose=purpose, action=action, source="admin", actor="test")
    if blocked:
        contact.identities[0].blocked_at = utcnow()
        contact.identities[0].followed = False
    session.flush()
    return contact
