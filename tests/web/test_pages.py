"""What every admin page shares: login redirects, CSRF, languages and times."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.auth.factories import make_user
from tests.contacts.factories import make_contact
from tests.web.helpers import anonymous_client, csrf_from, log_in, logged_in_client, page_csrf
from toolkit.auth import service as auth
from toolkit.auth.schemas import ROLES
from toolkit.consent import service as consent
from toolkit.consent.models import ConsentEvent
from toolkit.web import i18n

TEMPLATES = Path(i18n.__file__).parent / "templates"
ADMIN_PAGES = ["/admin/contacts", "/admin/contacts/1", "/admin/users", "/admin/tokens", "/admin/audit"]


def test_home_sends_a_stranger_to_the_bilingual_login(session):
    client = anonymous_client(lang="zh-TW")

    home = client.get("/")
    login = client.get(home.headers["location"])

    assert home.status_code == 303 and home.headers["location"] == "/login"
    assert "登入 / Log in" in login.text


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_admin_pages_redirect_to_login_when_logged_out(session, path):
    response = anonymous_client().get(path)

    assert response.status_code == 303
    assert response.headers["location"] == f"/login?next={path}"


def test_a_logged_out_post_redirects_to_login_and_changes_nothing(session):
    person = make_contact(session, consent_to={"marketing.line_push": "grant"})
    client = anonymous_client()
    token = page_csrf(client, "/login")  # a valid token, but no user behind the session

    response = client.post(f"/admin/contacts/{person.id}/consent",
                           data={"csrf_token": token, "purpose": "marketing.line_push", "action": "withdraw"})

    assert response.status_code == 303 and response.headers["location"].startswith("/login?next=")
    assert consent.allowed(session, [person.id], purpose="marketing.line_push", channel="line") == {person.id}


def test_login_returns_to_the_page_asked_for(session):
    user = make_user(session, roles=["privacy_officer"])
    client = anonymous_client()
    token = page_csrf(client, "/login?next=/admin/audit")

    response = client.post("/login", data={"email": user.email, "password": "correct horse battery",
                                           "csrf_token": token, "next": "/admin/audit"})

    assert response.status_code == 303 and response.headers["location"] == "/admin/audit"
    assert client.get("/admin/audit").status_code == 200


def test_logout_ends_the_session(session):
    client = logged_in_client(session, ["ops"])
    token = page_csrf(client, "/admin/contacts")

    response = client.post("/logout", data={"csrf_token": token})

    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert client.get("/admin/contacts").status_code == 303


def _csrf_targets(session):
    """(path, form) for every admin form post; each would change something with a valid token."""
    person = make_contact(session, consent_to={"marketing.line_push": "grant"})
    victim = make_user(session, roles=["agent"])
    token, _plain = auth.create_token(session, user_id=victim.id, name="victim", actor="test")
    return person, victim, token, [
        (f"/admin/contacts/{person.id}/consent", {"purpose": "marketing.line_push", "action": "withdraw"}),
        ("/admin/users", {"email": "new@test.example", "password": "long enough password", "roles": "ops"}),
        (f"/admin/users/{victim.id}/roles", {"roles": "admin"}),
        (f"/admin/users/{victim.id}/active", {"active": "false"}),
        ("/admin/tokens", {"name": "sneaky"}),
        (f"/admin/tokens/{token.id}/revoke", {}),
        ("/admin/audit/verify", {}),
    ]


@pytest.mark.parametrize("bad_token", [None, "wrong-token"], ids=["missing", "wrong"])
def test_every_form_post_needs_the_sessions_csrf_token(session, bad_token):
    client = logged_in_client(session, ["admin"])
    person, victim, token, targets = _csrf_targets(session)
    extra = {} if bad_token is None else {"csrf_token": bad_token}

    for path, form in targets:
        response = client.post(path, data={**form, **extra})
        assert response.status_code == 403, path
        assert "CSRF" in response.text, path

    session.expire_all()
    assert session.scalars(select(ConsentEvent).where(ConsentEvent.contact_id == person.id)).all()[-1].action == "grant"
    assert auth.get_user_by_email(session, "new@test.example") is None
    assert victim.roles == ["agent"] and victim.active
    assert token.revoked_at is None
    assert [tok.name for tok in auth.list_tokens(session)] == ["victim"]


def test_a_token_from_another_session_is_refused(session):
    attacker = logged_in_client(session, ["ops"])
    victim = logged_in_client(session, ["ops"])
    person = make_contact(session, consent_to={"marketing.line_push": "grant"})
    stolen = page_csrf(attacker, f"/admin/contacts/{person.id}")

    response = victim.post(f"/admin/contacts/{person.id}/consent",
                           data={"csrf_token": stolen, "purpose": "marketing.line_push", "action": "withdraw"})

    assert response.status_code == 403
    assert consent.allowed(session, [person.id], purpose="marketing.line_push", channel="line") == {person.id}


def test_pages_follow_the_chosen_language(session):
    client = logged_in_client(session, ["ops"], lang="zh-TW")
    assert "<h1>聯絡人</h1>" in client.get("/admin/contacts").text

    switched = client.get("/lang/en", headers={"referer": "http://testserver/admin/contacts?search=x"})
    assert switched.status_code == 303 and switched.headers["location"] == "/admin/contacts?search=x"
    page = client.get(switched.headers["location"]).text

    assert '<html lang="en">' in page and "<h1>Contacts</h1>" in page


def test_accept_language_picks_english_without_a_cookie(session):
    client = logged_in_client(session, ["ops"])
    client.cookies.delete("lang")

    assert "<h1>Contacts</h1>" in client.get("/admin/contacts", headers={"accept-language": "en-GB,en"}).text
    assert "<h1>聯絡人</h1>" in client.get("/admin/contacts", headers={"accept-language": "zh-TW"}).text


def test_times_are_shown_in_taipei_with_the_utc_instant_kept():
    shown = i18n.local_time(datetime(2026, 1, 31, 16, 30, 5, tzinfo=timezone.utc))

    assert ">2026-02-01 00:30</time>" in shown
    assert 'datetime="2026-01-31T16:30:05+00:00"' in shown
    assert ">2026-02-01 00:30:05<" in i18n.local_time(datetime(2026, 1, 31, 16, 30, 5, tzinfo=timezone.utc), True)
    assert "—" in i18n.local_time(None)


def test_every_message_has_both_languages():
    for key, entry in i18n.MESSAGES.items():
        assert set(entry) == set(i18n.LOCALES), key
        assert all(text.strip() for text in entry.values()), key


def test_every_key_the_templates_use_exists():
    used = set()  # literal keys; keys built with ~ are listed below
    for template in TEMPLATES.rglob("*.html"):
        used |= set(re.findall(r"""\bt\(\s*["']([a-z_.]*[a-z_])["']\s*[,)]""", template.read_text(encoding="utf-8")))
    assert {"contacts.title", "consent.history", "tokens.created_once", "audit.verify"} <= used  # the scan works
    # Keys built from values: every value the pages can meet needs its message.
    used |= {f"consent.state.{s}" for s in ("granted", "withdrawn", "objected", "none")}
    used |= {f"consent.action.{a}" for a in consent.STATE_AFTER} | {f"consent.done.{a}" for a in consent.STATE_AFTER}
    used |= {f"consent.source.{s}" for s in consent.SOURCES}
    used |= {f"consent.basis.{b}" for b in ("consent", "contract", "legitimate_interest", "legal_obligation")}
    used |= {f"role.{r}" for r in ROLES}
    used |= {f"tokens.status.{s}" for s in ("active", "revoked", "expired")}

    assert sorted(used - set(i18n.MESSAGES)) == []


def test_login_page_token_is_the_sessions_token(session):
    client = anonymous_client()
    first = csrf_from(client.get("/login").text)

    assert csrf_from(client.get("/login").text) == first
    user = make_user(session, roles=["agent"])
    log_in(client, user.email)
    # Logging in starts a fresh session, so a token seen before login is worthless after.
    assert page_csrf(client, "/admin/tokens") != first
