"""Admin pages for users and roles (admins only) and API tokens (everyone's own)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.auth.factories import PASSWORD, make_token, make_user
from tests.web.helpers import anonymous_client, log_in, logged_in_client, page_csrf
from toolkit.audit.models import AuditLog
from toolkit.auth import service as auth
from toolkit.auth.models import ApiToken

NEW_PASSWORD = "a long new password"


def _post(client, path: str, form: dict, *, from_page: str = "/admin/users"):
    return client.post(path, data={**form, "csrf_token": page_csrf(client, from_page)})


def _create(client, **form):
    defaults = {"email": "new.person@test.example", "password": NEW_PASSWORD, "roles": ["ops"]}
    return _post(client, "/admin/users", {**defaults, **form})


# --- users --------------------------------------------------------------------------

def test_admin_sees_users_with_roles_and_active_flag(session):
    make_user(session, roles=["ops", "agent"], email="listed@test.example")
    client = logged_in_client(session, ["admin"])

    page = client.get("/admin/users").text

    row = page.split('data-user="listed@test.example"', 1)[1].split("</tr>", 1)[0]
    assert 'value="ops" checked' in row and 'value="agent" checked' in row and 'value="admin" >' in row
    assert "Active" in row and "Deactivate" in row


def test_admin_creates_a_user_who_can_then_log_in(session):
    client = logged_in_client(session, ["admin"], email="boss@test.example")

    response = _create(client, email="New.Person@Test.example", roles=["ops", "agent"], display_name="小新")

    assert response.status_code == 303 and response.headers["location"] == "/admin/users?done=created"
    assert "User created" in client.get(response.headers["location"]).text
    user = auth.get_user_by_email(session, "new.person@test.example")
    assert user.roles == ["agent", "ops"] and user.display_name == "小新"
    entry = session.scalars(select(AuditLog).where(AuditLog.action == "user.create")).all()[-1]
    assert entry.actor == "user:boss@test.example"
    newcomer = anonymous_client()
    log_in(newcomer, "new.person@test.example", NEW_PASSWORD)
    assert newcomer.get("/admin/contacts").status_code == 200


@pytest.mark.parametrize(
    ("form", "status", "message"),
    [
        ({"email": "taken@test.example"}, 409, "A user with this e-mail already exists"),
        ({"password": "short"}, 422, "The password needs at least 8 characters"),
        ({"roles": []}, 422, "Choose at least one valid role"),
        ({"roles": ["ops", "overlord"]}, 422, "Choose at least one valid role"),
    ],
    ids=["exists", "weak-password", "no-role", "unknown-role"],
)
def test_a_refused_user_re_renders_the_form_with_what_was_typed(session, form, status, message):
    make_user(session, roles=["ops"], email="taken@test.example")
    client = logged_in_client(session, ["admin"])
    typed = {"email": "keep.me@test.example", "display_name": "Keep Me", "password": "secret-never-echoed",
             "roles": ["ops", "agent"], **form}

    response = _create(client, **typed)

    assert response.status_code == status
    assert message in response.text
    new_user = response.text.split('id="new-user"', 1)[1]
    assert f'name="email" value="{typed["email"]}"' in new_user and 'value="Keep Me"' in new_user
    assert typed["password"] not in response.text
    for role in typed["roles"]:
        if role != "overlord":
            assert f'value="{role}" checked' in new_user
    assert len(auth.list_users(session)) == 2


def test_refusals_are_translated(session):
    client = logged_in_client(session, ["admin"], lang="zh-TW")

    response = _create(client, password="short")

    assert response.status_code == 422 and "密碼至少需要 8 個字元" in response.text


def test_admin_changes_roles(session):
    agent = make_user(session, roles=["agent"])
    client = logged_in_client(session, ["admin"])

    response = _post(client, f"/admin/users/{agent.id}/roles", {"roles": ["ops", "privacy_officer"]})

    assert response.status_code == 303
    session.refresh(agent)
    assert agent.roles == ["ops", "privacy_officer"]


def test_removing_every_role_is_refused_on_the_page(session):
    agent = make_user(session, roles=["agent"])
    client = logged_in_client(session, ["admin"])

    response = _post(client, f"/admin/users/{agent.id}/roles", {})

    assert response.status_code == 422 and "Choose at least one valid role" in response.text
    session.refresh(agent)
    assert agent.roles == ["agent"]


def test_deactivating_ends_the_users_session_and_reactivating_restores_login(session):
    admin = logged_in_client(session, ["admin"])
    worker = make_user(session, roles=["ops"])
    their_client = anonymous_client()
    log_in(their_client, worker.email)

    response = _post(admin, f"/admin/users/{worker.id}/active", {"active": "false"})

    assert response.status_code == 303
    session.refresh(worker)
    assert worker.active is False
    assert their_client.get("/admin/contacts").status_code == 303
    assert "Deactivated" in admin.get("/admin/users").text

    assert _post(admin, f"/admin/users/{worker.id}/active", {"active": "true"}).status_code == 303
    log_in(their_client, worker.email)
    assert their_client.get("/admin/contacts").status_code == 200


def test_changing_an_unknown_user_is_a_404(session):
    client = logged_in_client(session, ["admin"])

    assert _post(client, "/admin/users/987654321/active", {"active": "false"}).status_code == 404


@pytest.mark.parametrize("role", ["agent", "ops", "privacy_officer", "editor"])
def test_only_admins_manage_users(session, role):
    client = logged_in_client(session, [role], email=f"{role}-x@test.example")
    me = auth.get_user_by_email(session, f"{role}-x@test.example")
    token = page_csrf(client, "/admin/tokens")

    page = client.get("/admin/users")
    create = client.post("/admin/users", data={"csrf_token": token, "email": "sneak@test.example",
                                               "password": NEW_PASSWORD, "roles": "admin"})
    escalate = client.post(f"/admin/users/{me.id}/roles", data={"csrf_token": token, "roles": "admin"})

    assert page.status_code == create.status_code == escalate.status_code == 403
    assert auth.get_user_by_email(session, "sneak@test.example") is None
    session.refresh(me)
    assert me.roles == [role]
    assert 'href="/admin/users"' not in client.get("/admin/tokens").text


# --- tokens -------------------------------------------------------------------------

def test_a_new_token_is_shown_once_and_works(session):
    client = logged_in_client(session, ["editor"], email="tokens@test.example")

    response = _post(client, "/admin/tokens", {"name": "CI export", "days": "30"}, from_page="/admin/tokens")

    assert response.status_code == 201 and response.headers["cache-control"] == "no-store"
    plain = response.text.split('id="new-token">', 1)[1].split("<", 1)[0]
    assert plain.startswith("tk_")
    me = client.get("/api/v1/me", headers={"authorization": f"Bearer {plain}", "accept": "application/json"})
    assert me.json()["email"] == "tokens@test.example"
    later = client.get("/admin/tokens").text
    assert plain not in later and f"<code>{plain[:10]}…</code>" in later and "CI export" in later
    [token] = auth.list_tokens(session, user_id=auth.get_user_by_email(session, "tokens@test.example").id)
    assert token.expires_at is not None


def test_a_token_without_days_never_expires(session):
    client = logged_in_client(session, ["agent"])

    response = _post(client, "/admin/tokens", {"name": "forever", "days": ""}, from_page="/admin/tokens")

    assert response.status_code == 201 and "Never" in response.text


def test_a_blank_token_name_re_renders_with_the_reason(session):
    client = logged_in_client(session, ["agent"])

    response = _post(client, "/admin/tokens", {"name": "   "}, from_page="/admin/tokens")

    assert response.status_code == 422 and "The name needs 1 to 100 characters" in response.text
    assert 'id="new-token"' not in response.text


def test_revoking_a_token_stops_it(session):
    client = logged_in_client(session, ["ops"])
    created = _post(client, "/admin/tokens", {"name": "short-lived"}, from_page="/admin/tokens")
    plain = created.text.split('id="new-token">', 1)[1].split("<", 1)[0]
    token = session.scalars(select(ApiToken).where(ApiToken.name == "short-lived")).one()

    response = _post(client, f"/admin/tokens/{token.id}/revoke", {}, from_page="/admin/tokens")

    assert response.status_code == 303
    assert "Token revoked" in client.get(response.headers["location"]).text
    me = client.get("/api/v1/me", headers={"authorization": f"Bearer {plain}", "accept": "application/json"})
    assert me.status_code == 401


def test_users_see_and_revoke_only_their_own_tokens(session):
    make_token(session, roles=["ops"])
    someone_elses = session.scalars(select(ApiToken)).one()
    client = logged_in_client(session, ["ops"])

    page = client.get("/admin/tokens").text
    response = _post(client, f"/admin/tokens/{someone_elses.id}/revoke", {}, from_page="/admin/tokens")

    assert f'data-token="{someone_elses.id}"' not in page and "All users" not in page
    assert response.status_code == 404
    session.refresh(someone_elses)
    assert someone_elses.revoked_at is None


def test_admin_sees_and_revokes_every_users_tokens(session):
    make_token(session, roles=["agent"])
    theirs = session.scalars(select(ApiToken)).one()
    client = logged_in_client(session, ["admin"])

    page = client.get("/admin/tokens").text
    response = _post(client, f"/admin/tokens/{theirs.id}/revoke", {}, from_page="/admin/tokens")

    assert "All users&#39; tokens" in page and f'data-token="{theirs.id}"' in page and theirs.user.email in page
    assert response.status_code == 303
    session.refresh(theirs)
    assert theirs.revoked_at is not None


def test_tokens_page_needs_a_login_and_shows_password_never(session):
    user = make_user(session, roles=["approver"])
    client = anonymous_client()
    assert client.get("/admin/tokens").status_code == 303

    log_in(client, user.email, PASSWORD)

    page = client.get("/admin/tokens").text
    assert "No tokens yet" in page and PASSWORD not in page


def test_admins_are_not_offered_to_deactivate_themselves(session):
    other = make_user(session, roles=["ops"])
    client = logged_in_client(session, ["admin"], email="self@test.example")

    page = client.get("/admin/users").text

    mine = page.split('data-user="self@test.example"', 1)[1].split("</tr>", 1)[0]
    theirs = page.split(f'data-user="{other.email}"', 1)[1].split("</tr>", 1)[0]
    assert "/active" not in mine and f"/admin/users/{other.id}/active" in theirs
