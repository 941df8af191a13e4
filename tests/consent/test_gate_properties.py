"""Property test: the set-based gate agrees with a plain-Python reading of the rules
for any mix of consent states, blocked channels, suppression and erasure."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.contacts.factories import make_contact
from toolkit.consent import service as consent
from toolkit.contacts import service as contacts

PURPOSES = {"marketing.line_push": "consent", "service.chat": "contract", "analytics.aggregate": "legitimate_interest"}
ACTIONS = st.sampled_from([None, "grant", "withdraw", "object"])

person = st.fixed_dictionaries(
    {
        "decisions": st.lists(st.tuples(st.sampled_from(sorted(PURPOSES)), ACTIONS), max_size=4),
        "blocked": st.booleans(),
        "suppressed": st.booleans(),
        "erased": st.booleans(),
    }
)


def expected(profile: dict, purpose: str, channel: str | None) -> bool:
    if profile["erased"] or profile["suppressed"]:
        return False
    if channel is not None and profile["blocked"]:
        return False
    state = None
    for code, action in profile["decisions"]:
        if code == purpose and action is not None:
            state = consent.STATE_AFTER[action]
    if PURPOSES[purpose] == "consent":
        return state == "granted"
    return state not in ("withdrawn", "objected")


@given(population=st.lists(person, min_size=1, max_size=8))
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_gate_matches_the_rules(session, population):
    nested = session.begin_nested()
    try:
        ids = []
        for profile in population:
            contact = make_contact(session, blocked=profile["blocked"])
            for code, action in profile["decisions"]:
                if action is not None:
                    consent.record(session, contact_id=contact.id, purpose=code, action=action, source="admin")
            external_id = contact.identities[0].external_id
            if profile["suppressed"]:
                consent.suppress(session, identities=[("line", external_id)], reason="objection")
            if profile["erased"]:
                contacts.erase(session, contact_id=contact.id, actor="test")
            ids.append(contact.id)

        for purpose in PURPOSES:
            for channel in ("line", None):
                want = {cid for cid, p in zip(ids, population) if expected(p, purpose, channel)}
                assert consent.allowed(session, ids, purpose=purpose, channel=channel) == want, (purpose, channel)
    finally:
        nested.rollback()
