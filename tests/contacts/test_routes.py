"""REST API: /api/v1/contacts."""

from __future__ import annotations

import pytest

from tests.contacts.factories import line_id, make_contact
from tests.helpers import api_client
from toolkit.consent import service as consent


def test_list_needs_a_token(session):
    response = api_client(session, roles=None).get("/api/v1/contacts")

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_wrong_token_is_refused(session):
    client = api_client(session, roles=None)
    client.headers["Authorization"] = "Bearer tk_not-a-real-token"

    assert client.get("/api/v1/contacts").status_code == 401


def test_list_searches_and_pages(session):
    for n in range(3):
        make_contact(session, display_name=f"王小明 {n}")
    make_contact(session, display_name="Someone else")
    client = api_client(session, roles=["agent"])

    first = client.get("/api/v1/contacts", params={"search": "王小明", "limit": 2}).json()
    second = client.get("/api/v1/contacts", params={"search": "王小明", "limit": 2, "offset": 2}).json()

    assert first["count"] == 3 and len(first["data"]) == 2 and len(second["data"]) == 1
    names = {c["display_name"] for c in first["data"] + second["data"]}
    assert names == {"王小明 0", "王小明 1", "王小明 2"}


def test_get_returns_identities_and_404_for_unknown(session):
    person = make_contact(session)
    client = api_client(session, roles=["ops"])

    body = client.get(f"/api/v1/contacts/{person.id}").json()
    missing = client.get("/api/v1/contacts/987654321")

    assert body["identities"][0]["external_id"] == person.identities[0].external_id
    assert missing.status_code == 404 and "987654321" in missing.json()["detail"]


def test_create_contact_and_duplicate_is_409(session):
    client = api_client(session, roles=["ops"])
    external_id = line_id()

    created = client.post("/api/v1/contacts", json={"external_id": external_id, "display_name": "林美玲"})
    again = client.post("/api/v1/contacts", json={"external_id": external_id})

    assert created.status_code == 201 and created.json()["display_name"] == "林美玲"
    assert again.status_code == 409 and again.json()["code"] == "identity_exists"


def test_create_refuses_a_suppressed_identity(session):
    external_id = line_id()
    consent.suppress(session, identities=[("line", external_id)], reason="erasure")

    response = api_client(session, roles=["ops"]).post("/api/v1/contacts", json={"external_id": external_id})

    assert response.status_code == 409 and response.json()["code"] == "identity_suppressed"


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "external_id"),
        ({"external_id": "has space"}, "external_id"),
        ({"external_id": 12345}, "external_id"),
        ({"external_id": "U1", "locale": "not a locale"}, "locale"),
        ({"external_id": "U1", "unexpected": 1}, "unexpected"),
    ],
)
def test_create_rejects_bad_input_with_422_naming_the_field(session, body, field):
    response = api_client(session, roles=["ops"]).post("/api/v1/contacts", json=body)

    assert response.status_code == 422
    assert any(field in error["loc"] for error in response.json()["detail"])


@pytest.mark.parametrize("role", ["agent", "editor", "approver"])
def test_roles_without_contacts_write_cannot_create(session, role):
    response = api_client(session, roles=[role]).post("/api/v1/contacts", json={"external_id": line_id()})

    assert response.status_code == 403 and response.json()["code"] == "permission_denied"
