"""Erasure leaves nothing of the person in any table: a contact who followed, chatted with
the bot, was handed off to an agent who answered, and opted out by keyword is erased, and
then every text and JSON column of every table is searched for them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Text, cast, func, or_, select
from sqlalchemy.orm import Session

from tests.auth.factories import make_user
from tests.chatbot.factories import make_retail_bank
from tests.inbox.conftest import line_sandbox, sandbox_server  # noqa: F401 - fixtures
from tests.inbox.factories import arrive, event, line_user_id
from tests.test_personal_data import product_tables
from toolkit.audit import service as audit
from toolkit.chatbot import agent_replies, bot, conversations
from toolkit.chatbot.conversations import HUMAN, WAITING
from toolkit.chatbot.deps import deliver
from toolkit.consent.models import ConsentEvent, Purpose
from toolkit.contacts import service as contacts
from toolkit.inbox import jobs
from toolkit.kit.personal import is_textual
from toolkit.line import client as line
from toolkit.messaging import jobs as messaging_jobs

WEDNESDAY_10 = datetime(2026, 3, 4, 10, 0, tzinfo=ZoneInfo("Asia/Taipei"))  # people are at work
ASKED = "點數怎麼用"  # an alternative question of the retail bank: the bot answers it
HANDOFF = "真人客服"
OPT_OUT = "取消訂閱"


@pytest.fixture
def the_bot() -> Iterator[None]:
    undo = bot.install(clock=lambda: WEDNESDAY_10)
    yield
    undo()


def work(session: Session) -> None:
    """The worker's loops until they have nothing left: events handled, replies sent."""
    while jobs.process_events() + messaging_jobs.send_due():
        pass
    session.expire_all()


def says(session: Session, sandbox, user: str, text: str) -> None:
    arrive(session, sandbox, event("message", user, text=text))
    work(session)


def _forms(needle: str) -> list[str]:
    # SQLite keeps JSON as json.dumps wrote it, non-ASCII escaped; PostgreSQL's jsonb as is.
    return sorted({needle, json.dumps(needle)[1:-1]})


def holders(session: Session, needle: str) -> dict[str, int]:
    """"table.column" -> how many rows hold `needle`, over every text and JSON column of
    every table (JSON cast to text)."""
    found = {}
    for table in product_tables():
        for column in filter(is_textual, table.columns):
            text = cast(column, Text)
            where = or_(*(text.contains(form, autoescape=True) for form in _forms(needle)))
            count = session.scalar(select(func.count()).select_from(table).where(where))
            if count:
                found[f"{table.name}.{column.name}"] = count
    return found


def test_an_erased_contact_is_nowhere_but_in_the_suppression_list(session, line_sandbox, the_bot):  # noqa: F811
    make_retail_bank(session)
    agent = make_user(session, roles=["agent"])
    user, tag = line_user_id(), uuid.uuid4().hex[:10]
    own_words = f"我的訂單編號是 A{tag}，還沒收到"
    agents_words = f"收到，訂單 A{tag} 我幫您查詢"
    # Shared texts (an FAQ's question, keywords that the purposes' notices quote) are judged
    # against what held them before the person came.
    shared = {text: holders(session, text) for text in (ASKED, HANDOFF, OPT_OUT)}

    arrive(session, line_sandbox, event("follow", user))
    work(session)
    contact = contacts.require_by_external_id(session, user)
    name, pseudonym = contact.display_name, contact.identities[0].external_hash
    says(session, line_sandbox, user, ASKED)
    says(session, line_sandbox, user, HANDOFF)
    says(session, line_sandbox, user, own_words)
    conversation = conversations.conversation_for(session, contact_id=contact.id)
    assert conversation.status == WAITING
    reply = agent_replies.plan_agent_reply(session, conversation_id=conversation.id, text=agents_words,
                                           user_id=agent.id, actor=agent.email)
    assert deliver(session, reply) == line.REPLY_SENT and conversation.status == HUMAN
    says(session, line_sandbox, user, OPT_OUT)
    told = [m["messages"][0]["text"] for m in line_sandbox.messages() if user in m["to"] and m["accepted"]]
    assert len(told) == 5 and told[3] == agents_words  # welcome, answer, handoff, agent, opt-out confirmed
    # The search finds the person wherever they are before the erasure.
    assert name and {"contact.display_name"} <= holders(session, name).keys()
    assert {"contact_identity.external_id", "webhook_event.user_id", "webhook_event.body",
            "consent_event.evidence", "outbound_message.recipient"} <= holders(session, user).keys()
    assert {"chat_message.text", "webhook_event.body"} <= holders(session, own_words).keys()
    assert {"chat_message.text", "outbound_message.messages"} <= holders(session, agents_words).keys()
    assert "consent_event.evidence" in holders(session, OPT_OUT)

    contacts.erase(session, contact_id=contact.id, actor="privacy")
    session.expire_all()

    for needle in (user, name, own_words, agents_words):
        assert holders(session, needle) == {}, needle
    for text, before in shared.items():
        assert holders(session, text) == before, text
    assert holders(session, pseudonym) == {"suppression.hash": 1}
    # The consent decisions stay, as evidence of when and how they were given and withdrawn.
    kept = session.execute(
        select(Purpose.code, ConsentEvent.action, ConsentEvent.source, ConsentEvent.evidence)
        .join(Purpose, Purpose.id == ConsentEvent.purpose_id)
        .where(ConsentEvent.contact_id == contact.id).order_by(ConsentEvent.id)
    ).all()
    assert [(code, action, source) for code, action, source, _ in kept] == [
        ("marketing.line_push", "grant", "follow"),
        ("marketing.line_push", "withdraw", "keyword"), ("marketing.profiling", "withdraw", "keyword")]
    assert all(evidence.keys() <= {"webhook_event_id", "notice_version", "erased"} and evidence["erased"]
               for *_, evidence in kept)
    assert audit.verify(session).ok
