"""Recording a file's consent decisions at once: the rules of the registry, set-based."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.contacts.factories import make_contact
from toolkit.consent import service as consent
from toolkit.consent.bulk import Decision, record_decisions
from toolkit.consent.models import ConsentEvent, ConsentState
from toolkit.kit.clock import utcnow
from toolkit.kit.errors import InvalidInput

PUSH = "marketing.line_push"
CHAT = "service.chat"


def state_of(session: Session, contact_id: int, purpose: str) -> str:
    return consent.status(session, contact_id=contact_id)[purpose]["state"]


def record(session: Session, *decisions: Decision, source: str = "import") -> dict[int, int]:
    return dict(record_decisions(session, decisions, source=source, actor="ops", occurred_at=utcnow()))


def test_a_decision_becomes_an_event_and_the_state_it_points_at(session: Session) -> None:
    person = make_contact(session)

    changes = record(session, Decision(7, person.id, PUSH, "grant", {"file": "a.csv", "line": 7}))

    assert changes == {7: 1}
    current = session.get(ConsentState, (person.id, consent.get_purpose(session, PUSH).id))
    event = session.get(ConsentEvent, current.event_id)
    assert (current.state, current.source) == ("granted", "import")
    assert (event.action, event.source, event.actor, event.evidence) == ("grant", "import", "ops", {"file": "a.csv", "line": 7})
    assert event.notice_version == consent.get_purpose(session, PUSH).notice_version == current.notice_version


@pytest.mark.parametrize(
    ("earlier", "action", "source", "after", "recorded"),
    [
        ("grant", "grant", "import", "granted", 0),  # already in force
        ("withdraw", "withdraw", "import", "withdrawn", 0),
        ("object", "withdraw", "import", "objected", 0),  # a withdrawal does not soften an objection
        ("withdraw", "grant", "import", "withdrawn", 0),  # an implicit grant never overturns a refusal
        ("object", "grant", "import", "objected", 0),
        ("withdraw", "grant", "admin", "granted", 1),  # an explicit one does
        ("grant", "withdraw", "import", "withdrawn", 1),
        ("withdraw", "object", "import", "objected", 1),
    ],
)
def test_what_is_recorded_over_an_earlier_decision(
    session: Session, earlier: str, action: str, source: str, after: str, recorded: int,
) -> None:
    person = make_contact(session, consent_to={PUSH: earlier})
    events_before = len(consent.history(session, contact_id=person.id)[0])

    changes = record(session, Decision(1, person.id, PUSH, action), source=source)

    assert changes.get(1, 0) == recorded
    assert state_of(session, person.id, PUSH) == after
    assert len(consent.history(session, contact_id=person.id)[0]) == events_before + recorded


def test_many_contacts_and_purposes_at_once_are_counted_per_ref(session: Session) -> None:
    people = [make_contact(session) for _ in range(3)]
    refused = make_contact(session, consent_to={CHAT: "object"})

    changes = record(
        session,
        *(Decision(n, p.id, code, "grant") for n, p in enumerate(people) for code in (PUSH, CHAT)),
        Decision(9, refused.id, CHAT, "grant"),
    )

    assert changes == {0: 2, 1: 2, 2: 2}
    assert all(state_of(session, p.id, code) == "granted" for p in people for code in (PUSH, CHAT))
    assert state_of(session, refused.id, CHAT) == "objected"
    ids = session.scalars(select(ConsentEvent.id).where(ConsentEvent.contact_id.in_([p.id for p in people]))
                          .order_by(ConsentEvent.id)).all()
    assert len(ids) == len(set(ids)) == 6


def test_unknown_purpose_action_and_source_are_clear_errors(session: Session) -> None:
    person = make_contact(session)

    with pytest.raises(InvalidInput, match="unknown purpose 'nope'"):
        record(session, Decision(1, person.id, "nope", "grant"))
    with pytest.raises(InvalidInput, match="unknown consent action 'maybe'"):
        record(session, Decision(1, person.id, PUSH, "maybe"))
    with pytest.raises(InvalidInput, match="unknown consent source 'fax'"):
        record(session, Decision(1, person.id, PUSH, "grant"), source="fax")
