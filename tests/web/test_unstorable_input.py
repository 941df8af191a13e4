"""Text the database cannot store (NUL, an unpaired surrogate, other control characters)
is refused where it comes in, with a 422 saying so, on every form and API body that
stores text — never a 500 from deep inside a transaction. And no database error puts the
statement's values (hashes, customer text) into a log."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from tests.contacts.factories import line_id, make_contact
from tests.helpers import api_client
from tests.web.helpers import anonymous_client, logged_in_client, page_csrf
from toolkit.kit.storable import REASON, refuse_unstorable, refuse_unstorable_in

BAD = ["nul\x00inside", "bell\x07", "lone \ud800 surrogate", "del\x7f"]
FINE = ["王小明", "tab\tand\nnewline\r\n", "emoji 🎁", ""]


@pytest.mark.parametrize("value", BAD)
def test_unstorable_text_is_refused_with_the_reason(value: str) -> None:
    with pytest.raises(ValueError, match="cannot be stored"):
        refuse_unstorable(value)
    with pytest.raises(ValueError, match="cannot be stored"):
        refuse_unstorable_in({"a": [1, {"b": value}]})
    with pytest.raises(ValueError, match="cannot be stored"):
        refuse_unstorable_in({value: 1})


@pytest.mark.parametrize("value", FINE)
def test_ordinary_text_passes(value: str) -> None:
    assert refuse_unstorable(value) == value
    assert refuse_unstorable_in({"k": [value]}) == {"k": [value]}


def refused(response) -> bool:
    return response.status_code == 422 and REASON in response.text


def test_the_login_form_refuses_a_nul(session: Session) -> None:
    client = anonymous_client()
    token = page_csrf(client, "/login")

    for form in ({"email": "a\x00@test.example", "password": "x"}, {"email": "a@test.example", "password": "p\x00"}):
        assert refused(client.post("/login", data={**form, "csrf_token": token}))


def test_the_contacts_api_refuses_unstorable_names(session: Session) -> None:
    client = api_client(session, roles=["ops"])

    nul = client.post("/api/v1/contacts", json={"external_id": line_id(), "display_name": "王\x00"})
    # a lone surrogate can only arrive as a JSON escape
    surrogate = client.post("/api/v1/contacts", content=f'{{"external_id": "{line_id()}", "display_name": "\\ud800"}}',
                            headers={"content-type": "application/json"})

    assert refused(nul)
    assert surrogate.status_code == 422
    assert client.get("/api/v1/contacts").json()["count"] == 0


def test_the_consent_api_refuses_unstorable_purposes_and_evidence(session: Session) -> None:
    person = make_contact(session)
    client = api_client(session, roles=["privacy_officer"])
    path = f"/api/v1/contacts/{person.id}/consents/grant"

    assert refused(client.post(path, json={"purpose": "marketing.line_push\x00"}))
    assert refused(client.post(path, json={"purpose": "marketing.line_push", "evidence": {"said": "ok\x00"}}))
    assert refused(client.post(path, json={"purpose": "marketing.line_push", "evidence": {"k\x00": 1}}))


def test_staff_forms_refuse_unstorable_text(session: Session) -> None:
    admin = logged_in_client(session, ["admin"])
    person = make_contact(session)

    def post(path: str, form: dict, from_page: str):
        return admin.post(path, data={**form, "csrf_token": page_csrf(admin, from_page)})

    assert refused(post("/admin/users", {"email": "new@test.example", "password": "long enough pw",
                                         "display_name": "N\x00", "roles": ["agent"]}, "/admin/users"))
    assert refused(post("/admin/tokens", {"name": "ci\x00"}, "/admin/tokens"))
    assert refused(post(f"/admin/contacts/{person.id}/consent",
                        {"purpose": "marketing.line_push", "action": "grant", "note": "n\x00"},
                        f"/admin/contacts/{person.id}"))
    assert refused(post("/admin/line/simulator/events", {"kind": "text", "user_id": line_id(), "text": "hi\x00"},
                        "/admin/line/simulator"))


def test_a_database_error_never_carries_the_statements_values(session: Session, caplog) -> None:
    secret = "customer-text-that-must-not-be-logged"
    with caplog.at_level(logging.DEBUG), pytest.raises(DBAPIError) as failure:
        with session.begin_nested():
            session.execute(text("SELECT CAST(:v AS INTEGER) / 0 FROM no_such_table"), {"v": secret})

    assert secret not in str(failure.value)
    assert secret not in caplog.text
