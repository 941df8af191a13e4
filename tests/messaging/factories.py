from __future__ import annotations

import itertools

from toolkit.line import client as line
from toolkit.messaging.schemas import Outbound

_keys = itertools.count(1)


def outbound(contact, *, purpose: str = "service.chat", text: str = "hello", push_allowed: bool = True,
             reply_token: str | None = None, group_key: str | None = None, source: str = "test") -> Outbound:
    """A message to the contact's LINE identity, with a retry key of its own."""
    return Outbound(
        source=source, source_id=None, contact_id=contact.id, recipient=contact.identities[0].external_id,
        purpose=purpose, messages=[line.text_message(text)], retry_key=line.retry_key("test", next(_keys), text),
        reply_token=reply_token, push_allowed=push_allowed, group_key=group_key,
    )
