"""REST API: purposes and consent decisions."""

from __future__ import annotations

import pytest

from tests.contacts.factories import make_contact
from tests.helpers import api_client
from toolkit.consent import service as consent

PUSH = "marketing.line_push"


def test_purposes_are_listed_from_config(session):
    body = api_client(session, roles=["agent"]).get("/api/v1/purposes").json()

    codes = {p["code"]: p for p in body}
    assert {"service.chat", PUSH, "marketing.profiling", "analytics.aggregate"} <= codes.keys()
    assert codes[PUSH]["lawful_basis"] == "consent" and codes[PUSH]["notice_version"]


def test_grant_then_withdraw_is_equally_easy_and_recorded_with_evidence(session):
    person = make_contact(session)
    client = api_client(session, roles=["agent"])
    client.headers["User-Agent"] = "crm-sync/1.0"

    granted = client.post(f"/api/v1/contacts/{person.id}/consents/grant",
                          json={"purpose": PUSH, "evidence": {"form": "newsletter"}})
    assert granted.status_code == 200 and granted.json()["state"] == "granted"
    assert consent.allowed(session, [person.id], purpose=PUSH, channel="line") == {person.id}

    withdrawn = client.post(f"/api/v1/contacts/{person.id}/consents/withdraw", json={"purpose": PUSH})
    assert withdrawn.json()["state"] == "withdrawn"
    assert consent.allowed(session, [person.id], purpose=PUSH, channel="line") == set()

    history = client.get(f"/api/v1/contacts/{person.id}/consents/history").json()
    assert [e["action"] for e in history["data"]] == ["withdraw", "grant"]
    assert history["data"][1]["evidence"]["form"] == "newsletter"
    assert history["data"][1]["evidence"]["user_agent"] == "crm-sync/1.0"
    assert history["data"][0]["source"] == "api"


def test_status_lists_every_purpose(session):
    person = make_contact(session, consent_to={PUSH: "object"})

    body = api_client(session, roles=["agent"]).get(f"/api/v1/contacts/{person.id}/consents").json()

    assert body[PUSH]["state"] == "objected"
    assert body["service.chat"] == {
        "state": "none", "lawful_basis": "contract", "notice_version": "2026-01", "changed_at": None,
    }


def test_unknown_purpose_is_422_with_the_known_ones(session):
    person = make_contact(session)

    response = api_client(session, roles=["agent"]).post(
        f"/api/v1/contacts/{person.id}/consents/grant", json={"purpose": "marketing.sms"})

    assert response.status_code == 422
    assert "unknown purpose 'marketing.sms'" in response.json()["detail"]
    assert PUSH in response.json()["detail"]


def test_unknown_contact_is_404(session):
    response = api_client(session, roles=["agent"]).post(
        "/api/v1/contacts/999999999/consents/withdraw", json={"purpose": PUSH})

    assert response.status_code == 404


@pytest.mark.parametrize("body", [{"purpose": 5}, {}, {"purpose": PUSH, "evidence": "nope"}, [1, 2]])
def test_wrong_types_are_422(session, body):
    person = make_contact(session)

    response = api_client(session, roles=["agent"]).post(f"/api/v1/contacts/{person.id}/consents/grant", json=body)

    assert response.status_code == 422


@pytest.mark.parametrize("role", ["editor", "approver"])
def test_roles_without_consent_write_are_refused(session, role):
    person = make_contact(session)

    response = api_client(session, roles=[role]).post(
        f"/api/v1/contacts/{person.id}/consents/grant", json={"purpose": PUSH})

    assert response.status_code == 403
    assert consent.status(session, contact_id=person.id)[PUSH]["state"] == "none"
