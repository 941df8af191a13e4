"""The composition root: the one list of the product's domains.

The app (routers, pages, the webhook's fast path), the worker (jobs, work loops, worker
set-up, inbound event handlers), the CLI (command groups), Alembic (models) and erasure
(every domain's steps) read what they need from PRODUCT. Adding a domain is one new package
with a `domain.py` and one line below. Entry points call `assemble()` when they start.
"""

from __future__ import annotations

from toolkit.audit.domain import DOMAIN as AUDIT
from toolkit.auth.domain import DOMAIN as AUTH
from toolkit.chatbot.domain import DOMAIN as CHATBOT
from toolkit.consent.domain import DOMAIN as CONSENT
from toolkit.contacts.domain import DOMAIN as CONTACTS
from toolkit.inbox.domain import DOMAIN as INBOX
from toolkit.kit import heartbeat, secrets
from toolkit.kit.domains import Domain, Product, install
from toolkit.messaging.domain import DOMAIN as MESSAGING
from toolkit.line.sandbox import models as sandbox_models

# Tables that belong to no domain: generated secrets, workers' heartbeats, and the LINE
# sandbox's state (kept in our database so that every serve process shares it).
PLATFORM = Domain("platform", models=[secrets, heartbeat, sandbox_models])

DOMAINS: tuple[Domain, ...] = (
    PLATFORM,
    CONTACTS,
    CONSENT,
    AUTH,
    AUDIT,
    MESSAGING,
    INBOX,
    CHATBOT,
)

PRODUCT = Product.of(DOMAINS)


def assemble() -> Product:
    """Install the product in this process (idempotent) and return it."""
    install(PRODUCT)
    return PRODUCT
