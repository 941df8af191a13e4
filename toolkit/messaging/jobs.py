"""The sender loop: rows that are due — queued by a campaign or a journey, a push LINE did
not take yet, a send interrupted by a crash — claimed, gated and sent."""

from __future__ import annotations

from sqlalchemy import Engine

from toolkit import db
from toolkit.kit.background import work_loop
from toolkit.messaging import sender, service
from toolkit.messaging.channel import NoChannel, line_client
from toolkit.messaging.schemas import SendOutcome

SEND_LOOP = "messaging.send_due"
BATCH = 500


def concurrent() -> bool:
    """Background sends need a second transaction while one is open: PostgreSQL through an
    engine. A sessionmaker bound to one connection (the tests' joined transaction) cannot;
    nor can SQLite's single writer."""
    bind = db.get_sessionmaker().kw.get("bind")
    return isinstance(bind, Engine) and bind.dialect.name == "postgresql"


@work_loop(SEND_LOOP, idle_s=0.5)
def send_due() -> int:
    with db.session_scope() as session:
        claimed = service.claim(session, limit=BATCH)
    if not claimed:
        return 0
    try:
        client = line_client(pool_size=sender.SEND_THREADS)
    except NoChannel as exc:  # tried again with backoff: the channel may be configured by then
        sender.record_now([SendOutcome(row, None, str(exc)) for row in claimed])
        return len(claimed)
    if concurrent():
        sender.background_sender().submit(client, claimed)
    else:
        try:
            sender.send_now(client, claimed)
        finally:
            client.close()
    return len(claimed)
