"""Admin pages for contacts and the consent changes made from them."""

from __future__ import annotations

import re

from sqlalchemy import select

from tests.contacts.factories import line_id, make_contact
from tests.web.helpers import logged_in_client, page_csrf
from toolkit.consent import service as consent
from toolkit.consent.models import ConsentEvent

PUSH = "marketing.line_push"


def _rows(html: str, table: str) -> list[str]:
    body = html.split(f'<table class="{table}">', 1)[1].split("</table>", 1)[0]
    return re.findall(r"<tr[ >].*?</tr>", body, flags=re.S)[1:]  # skip the header row


def _cells(row: str) -> list[str]:
    return [" ".join(re.sub(r"<[^>]+>", " ", cell).split()) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]


def _change(client, contact_id: int, action: str, purpose: str = PUSH, note: str = ""):
    token = page_csrf(client, f"/admin/contacts/{contact_id}")
    return client.post(f"/admin/contacts/{contact_id}/consent",
                       data={"csrf_token": token, "purpose": purpose, "action": action, "note": note})


def test_list_shows_contacts_with_line_id_locale_and_total(session):
    person = make_contact(session, display_name="林雅婷", external_id="Ulisttest0001")
    person.locale = "zh-TW"
    client = logged_in_client(session, ["agent"])

    page = client.get("/admin/contacts", params={"search": "林雅婷"}).text

    [row] = _rows(page, "contacts")
    assert f'href="/admin/contacts/{person.id}"' in row
    assert "林雅婷" in row and "<code>Ulisttest0001</code>" in row and "zh-TW" in row
    assert "1–1 of 1" in page


def test_search_matches_name_or_line_id_prefix(session):
    amy = make_contact(session, display_name="Amy Searchable", external_id="Usearch-amy-1")
    ben = make_contact(session, display_name="Ben Searchable", external_id="Usearch-ben-1")
    client = logged_in_client(session, ["ops"])

    by_name = client.get("/admin/contacts", params={"search": "amy search"}).text
    by_prefix = client.get("/admin/contacts", params={"search": "Usearch-ben"}).text
    by_middle = client.get("/admin/contacts", params={"search": "search-ben"}).text

    assert f"/admin/contacts/{amy.id}" in by_name and f"/admin/contacts/{ben.id}" not in by_name
    assert f"/admin/contacts/{ben.id}" in by_prefix and f"/admin/contacts/{amy.id}" not in by_prefix
    assert "No matching contacts" in by_middle
    assert 'value="Usearch-ben"' in by_prefix  # the box keeps the search


def test_paging_links_keep_the_search(session):
    for n in range(5):
        make_contact(session, display_name=f"Paged {n}")
    client = logged_in_client(session, ["ops"])

    first = client.get("/admin/contacts", params={"search": "Paged", "limit": 2}).text
    last = client.get("/admin/contacts", params={"search": "Paged", "limit": 2, "offset": 4}).text

    assert len(_rows(first, "contacts")) == 2 and "1–2 of 5" in first
    assert 'rel="next" href="/admin/contacts?search=Paged&amp;limit=2&amp;offset=2"' in first
    assert 'rel="prev"' not in first
    assert len(_rows(last, "contacts")) == 1 and "5–5 of 5" in last
    assert 'rel="prev" href="/admin/contacts?search=Paged&amp;limit=2&amp;offset=2"' in last
    assert 'rel="next"' not in last


def test_contact_page_shows_identities_state_basis_and_history(session):
    person = make_contact(session, display_name="陳志明", consent_to={PUSH: "grant", "marketing.profiling": "object"},
                          blocked=True)
    client = logged_in_client(session, ["agent"])

    page = client.get(f"/admin/contacts/{person.id}").text

    [identity] = _rows(page, "identities")
    channel, external_id, following, blocked_at = _cells(identity)
    assert (channel, external_id, following) == ("line", person.identities[0].external_id, "No")
    assert blocked_at != "—"
    # purpose -> state, lawful basis, notice version
    states = {_cells(row)[0]: _cells(row)[1:4] for row in _rows(page, "consent")}
    assert states[PUSH] == ["Granted", "Consent", "2026-01"]
    assert states["marketing.profiling"] == ["Objected", "Consent", "2026-01"]
    assert states["service.chat"] == ["Not decided", "Contract", "2026-01"]
    assert states["analytics.aggregate"] == ["Not decided", "Legitimate interest", "2026-01"]
    assert len(_rows(page, "history")) == 2


def test_unknown_contact_is_a_404_page(session):
    client = logged_in_client(session, ["ops"])

    response = client.get("/admin/contacts/987654321")

    assert response.status_code == 404
    assert "text/html" in response.headers["content-type"] and "no contact with id 987654321" in response.text


def test_withdrawing_from_the_page_stops_marketing(session):
    person = make_contact(session, consent_to={PUSH: "grant"})
    client = logged_in_client(session, ["ops"], email="ops-withdraw@test.example")
    assert consent.allowed(session, [person.id], purpose=PUSH, channel="line") == {person.id}

    response = _change(client, person.id, "withdraw", note="客人來電要求停止推播")

    assert response.status_code == 303
    assert response.headers["location"] == f"/admin/contacts/{person.id}?done=withdraw#consent"
    page = client.get(response.headers["location"]).text
    assert "Withdrawal recorded" in page
    push_row = next(r for r in _rows(page, "consent") if f'data-purpose="{PUSH}"' in r)
    assert "Withdrawn" in push_row
    newest = _rows(page, "history")[0]
    assert "Withdraw" in newest and 'data-source="admin"' in newest
    assert "<dt>note</dt><dd>客人來電要求停止推播</dd>" in newest and "<dt>via</dt><dd>admin-ui</dd>" in newest
    assert "user:ops-withdraw@test.example" in newest
    assert consent.allowed(session, [person.id], purpose=PUSH, channel="line") == set()


def test_the_event_keeps_the_request_id_as_evidence(session):
    person = make_contact(session)
    client = logged_in_client(session, ["privacy_officer"])

    response = _change(client, person.id, "object", purpose="analytics.aggregate")

    event = session.scalars(select(ConsentEvent).where(ConsentEvent.contact_id == person.id)).one()
    assert (event.action, event.source) == ("object", "admin")
    assert event.evidence["request_id"] == response.headers["x-request-id"]
    assert event.evidence["via"] == "admin-ui" and "note" not in event.evidence
    assert consent.allowed(session, [person.id], purpose="analytics.aggregate", channel=None) == set()


def test_a_staff_grant_after_a_withdrawal_brings_marketing_back(session):
    person = make_contact(session, consent_to={PUSH: "withdraw"})
    client = logged_in_client(session, ["agent"])

    response = _change(client, person.id, "grant", note="signed paper form")

    assert response.status_code == 303
    assert consent.allowed(session, [person.id], purpose=PUSH, channel="line") == {person.id}


def test_notes_are_escaped(session):
    person = make_contact(session)
    client = logged_in_client(session, ["ops"])

    _change(client, person.id, "withdraw", note="<script>alert(1)</script>")

    page = client.get(f"/admin/contacts/{person.id}").text
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_unknown_purpose_is_refused_and_records_nothing(session):
    person = make_contact(session)
    client = logged_in_client(session, ["ops"])

    response = _change(client, person.id, "withdraw", purpose="marketing.sms")

    assert response.status_code == 422 and "unknown purpose" in response.text
    assert session.scalars(select(ConsentEvent).where(ConsentEvent.contact_id == person.id)).all() == []


def test_changing_consent_of_an_unknown_contact_is_a_404(session):
    client = logged_in_client(session, ["ops"])
    token = page_csrf(client, "/admin/contacts")

    response = client.post("/admin/contacts/987654321/consent",
                           data={"csrf_token": token, "purpose": PUSH, "action": "withdraw"})

    assert response.status_code == 404


def test_editor_reads_contacts_but_not_their_consent(session):
    person = make_contact(session, display_name="Editor Visible", consent_to={PUSH: "grant"})
    client = logged_in_client(session, ["editor"])

    listing = client.get("/admin/contacts")
    page = client.get(f"/admin/contacts/{person.id}")

    assert listing.status_code == 200 and "Editor Visible" in listing.text
    assert page.status_code == 200 and person.identities[0].external_id in page.text
    assert "Your role may not view consent" in page.text
    assert "/consent" not in page.text and "Consent history" not in page.text


def test_editor_gets_403_on_the_consent_change_post(session):
    person = make_contact(session, consent_to={PUSH: "grant"})
    client = logged_in_client(session, ["editor"])

    response = _change(client, person.id, "withdraw")

    assert response.status_code == 403
    assert consent.allowed(session, [person.id], purpose=PUSH, channel="line") == {person.id}
    assert len(session.scalars(select(ConsentEvent).where(ConsentEvent.contact_id == person.id)).all()) == 1


def test_a_contact_whose_channel_is_blocked_shows_it_in_the_list(session):
    make_contact(session, display_name="Blocked Person", external_id=line_id(), blocked=True)
    client = logged_in_client(session, ["ops"])

    [row] = _rows(client.get("/admin/contacts", params={"search": "Blocked Person"}).text, "contacts")

    assert "(blocked)" in row


def test_contact_page_in_traditional_chinese(session):
    person = make_contact(session, consent_to={PUSH: "grant"})
    client = logged_in_client(session, ["ops"], lang="zh-TW")

    _change(client, person.id, "withdraw")
    page = client.get(f"/admin/contacts/{person.id}").text

    assert '<html lang="zh-TW">' in page
    assert "目前同意狀態" in page and "已撤回" in page and "後台" in page and "時間以 Asia/Taipei 顯示" in page
