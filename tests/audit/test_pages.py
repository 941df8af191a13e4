"""Admin pages for the audit log: browsing and verifying the hash chain."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from tests.contacts.factories import make_contact
from tests.web.helpers import logged_in_client, page_csrf
from toolkit.audit import service as audit
from toolkit.audit.models import AuditLog


def _verify(client):
    return client.post("/admin/audit/verify", data={"csrf_token": page_csrf(client, "/admin/audit")})


def test_privacy_officer_browses_the_log_newest_first(session):
    person = make_contact(session)
    audit.record(session, actor="user:dpo@test.example", action="contact.export", target_type="contact",
                 target_id=person.id, details={"format": "json", "reason": "DSR 2026-001"})
    client = logged_in_client(session, ["privacy_officer"], email="dpo@test.example")

    page = client.get("/admin/audit").text

    rows = page.split('<table class="audit">', 1)[1].split("</table>", 1)[0].split('<tr data-entry="')[1:]
    assert "user.login" in rows[0]  # this very login is the newest entry
    [export] = [row for row in rows if "contact.export" in row]
    assert f'href="/admin/contacts/{person.id}"' in export
    assert "<dt>reason</dt><dd>DSR 2026-001</dd>" in export and "<dt>format</dt><dd>json</dd>" in export
    _entries, total = audit.list_entries(session)
    assert f"1–{total} of {total}" in page


def test_the_log_pages(session):
    for n in range(4):
        audit.record(session, actor="test", action=f"test.step{n}")
    client = logged_in_client(session, ["privacy_officer"])
    _entries, total = audit.list_entries(session)

    first = client.get("/admin/audit", params={"limit": 2}).text
    second = client.get("/admin/audit", params={"limit": 2, "offset": 2}).text

    assert f"1–2 of {total}" in first and 'rel="next" href="/admin/audit?limit=2&amp;offset=2"' in first
    assert f"3–4 of {total}" in second and 'rel="prev" href="/admin/audit?limit=2&amp;offset=0"' in second
    assert first.count('<tr data-entry="') == second.count('<tr data-entry="') == 2


def test_verify_reports_an_intact_chain(session):
    client = logged_in_client(session, ["privacy_officer"])
    make_contact(session, consent_to={"marketing.line_push": "grant"})

    response = _verify(client)

    _entries, total = audit.list_entries(session)
    assert response.status_code == 200
    assert f"Chain intact: {total} rows checked" in response.text


def test_verify_finds_an_altered_row(session):
    client = logged_in_client(session, ["admin"])
    make_contact(session, consent_to={"marketing.line_push": "grant"})
    entries, _total = audit.list_entries(session)
    victim = entries[-1].id
    session.execute(update(AuditLog).where(AuditLog.id == victim).values(actor="mallory"))

    response = _verify(client)

    assert response.status_code == 200
    assert f"Chain broken at row {victim}" in response.text and f"row {victim} was altered" in response.text


def test_verify_result_in_traditional_chinese(session):
    client = logged_in_client(session, ["privacy_officer"], lang="zh-TW")

    assert "雜湊鏈完整" in _verify(client).text


@pytest.mark.parametrize("role", ["ops", "agent", "editor", "approver"])
def test_audit_log_is_for_privacy_officers_and_admins(session, role):
    client = logged_in_client(session, [role])
    token = page_csrf(client, "/admin/tokens")

    assert client.get("/admin/audit").status_code == 403
    assert client.post("/admin/audit/verify", data={"csrf_token": token}).status_code == 403
    assert 'href="/admin/audit"' not in client.get("/admin/tokens").text
