"""The LINE admin pages: webhook events (with dead-letter retry), the message quota, and the
chat simulator that posts signed events to our real webhook."""

from __future__ import annotations

import re
from dataclasses import replace

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.inbox.factories import event, line_user_id, store
from tests.processes import free_port
from tests.web.helpers import logged_in_client, page_csrf
from toolkit.audit.models import AuditLog
from toolkit.inbox import jobs, quota, simulator
from toolkit.inbox.models import WebhookEvent
from toolkit.line.client import LineClient, SendResult, text_message
from toolkit.line.sandbox import service as sandbox_service
from toolkit.settings import get_settings

PAGES = ["/admin/line/events", "/admin/line/quota", "/admin/line/simulator"]
JSON = {"accept": "application/json"}


pytestmark = pytest.mark.usefixtures("fresh_settings")  # tests/inbox/conftest.py


@pytest.fixture
def no_line(monkeypatch):
    for name in ("TOOLKIT_LINE_SANDBOX", "TOOLKIT_LINE_API_BASE", "TOOLKIT_LINE_CHANNEL_ACCESS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()


@pytest.fixture
def sandbox_on(monkeypatch):
    """TOOLKIT_LINE_SANDBOX=1, as `toolkit demo` runs; the app will mount a sandbox."""
    monkeypatch.setenv("TOOLKIT_LINE_SANDBOX", "1")
    # create_sandbox_app makes its sandbox the process's default; put the old one back after.
    monkeypatch.setattr(sandbox_service, "_serving", sandbox_service._serving)
    get_settings.cache_clear()


def make_dead(session, **fields) -> WebhookEvent:
    (row,) = store(session, event("message", line_user_id(), text="壞掉的事件"))
    row.status, row.attempts, row.last_error = "dead", 8, "RuntimeError: LINE was down\nfor good"
    for name, value in fields.items():
        setattr(row, name, value)
    session.flush()
    return row


# --- who may see what -------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["editor", "approver", "privacy_officer"])
def test_roles_without_line_work_get_403_on_every_page_and_post(session, no_line, role):
    dead = make_dead(session)
    client = logged_in_client(session, [role])
    token = page_csrf(client, "/admin/tokens")  # a valid token: what stops them is the role

    for path in [*PAGES, f"/admin/line/simulator/conversation?user_id={line_user_id()}"]:
        assert client.get(path).status_code == 403, path
    retry = client.post(f"/admin/line/events/{dead.id}/retry", data={"csrf_token": token})
    simulate = client.post("/admin/line/simulator/events",
                           data={"csrf_token": token, "kind": "follow", "user_id": line_user_id()}, headers=JSON)

    assert retry.status_code == simulate.status_code == 403
    session.refresh(dead)
    assert dead.status == "dead"


@pytest.mark.parametrize("role", ["ops", "agent", "admin"])
def test_ops_agents_and_admins_see_the_pages_and_the_nav(session, no_line, role):
    client = logged_in_client(session, [role])

    for path in PAGES:
        assert client.get(path).status_code == 200, path
    nav = client.get("/admin/contacts").text
    assert all(f'href="{path}"' in nav for path in PAGES)


def test_the_nav_hides_line_pages_from_others(session, no_line):
    nav = logged_in_client(session, ["editor"]).get("/admin/contacts").text

    assert "/admin/line/" not in nav


# --- events -----------------------------------------------------------------------------------

def test_the_events_page_lists_a_stored_event(session, no_line):
    user = line_user_id()
    (row,) = store(session, event("message", user, text="請問營業時間"))
    client = logged_in_client(session, ["agent"])

    page = client.get("/admin/line/events").text

    listed = re.search(rf'<tr data-event="{row.id}".*?</tr>', page, re.S)
    assert listed, page
    assert row.webhook_event_id in listed.group(0) and "請問營業時間" in listed.group(0)
    assert "Pending" in listed.group(0) and user[:11] in listed.group(0)
    assert "<time datetime=" in listed.group(0)  # the local_time filter
    assert "Times in Asia/Taipei" in page


def test_the_status_filter_counts_and_pages(session, no_line):
    dead = make_dead(session)
    done = store(session, event("follow", line_user_id()))[0]
    done.status = "done"
    session.flush()
    client = logged_in_client(session, ["ops"], lang="zh-TW")

    only_dead = client.get("/admin/line/events?status=dead").text
    one_per_page = client.get("/admin/line/events?limit=1").text

    assert f'data-event="{dead.id}"' in only_dead and f'data-event="{done.id}"' not in only_dead
    assert re.search(r'data-status="dead"[^>]*>無法處理\s*<span class="count">\d+</span>', only_dead)
    assert "已用完所有自動重試" in only_dead
    assert one_per_page.count("<tr data-event=") == 1 and 'rel="next"' in one_per_page
    assert client.get("/admin/line/events?status=lost").status_code == 422


def test_retrying_a_dead_letter_sets_it_pending_and_is_audited(session, no_line):
    dead = make_dead(session)
    client = logged_in_client(session, ["agent"], email="agent-retry@test.example")
    page = client.get("/admin/line/events?status=dead").text
    assert f'action="/admin/line/events/{dead.id}/retry"' in page

    response = client.post(f"/admin/line/events/{dead.id}/retry",
                           data={"csrf_token": page_csrf(client, "/admin/line/events"), "status": "dead"})

    assert response.status_code == 303
    assert response.headers["location"] == "/admin/line/events?status=dead&done=retried"
    session.refresh(dead)
    assert (dead.status, dead.attempts) == ("pending", 0)
    entry = session.scalars(select(AuditLog).where(AuditLog.action == "inbox.retry")).all()[-1]
    assert entry.actor == "user:agent-retry@test.example" and entry.target_id == str(dead.id)
    assert "Queued for another try" in client.get(response.headers["location"]).text


def test_retry_needs_the_csrf_token_and_a_dead_event(session, no_line):
    dead = make_dead(session)
    (pending,) = store(session, event("follow", line_user_id()))
    client = logged_in_client(session, ["ops"])
    token = page_csrf(client, "/admin/line/events")

    missing = client.post(f"/admin/line/events/{dead.id}/retry", data={})
    wrong = client.post(f"/admin/line/events/{dead.id}/retry", data={"csrf_token": "forged"})
    not_dead = client.post(f"/admin/line/events/{pending.id}/retry", data={"csrf_token": token})
    unknown = client.post("/admin/line/events/999999999/retry", data={"csrf_token": token})

    assert missing.status_code == wrong.status_code == 403
    assert not_dead.status_code == 409 and unknown.status_code == 404
    session.refresh(dead)
    assert dead.status == "dead"


# --- quota ------------------------------------------------------------------------------------

def push(sandbox_url: str, count: int) -> None:
    client = LineClient(api_base=sandbox_url, access_token="test-token")
    try:
        for n in range(count):
            key = f"{n:08d}-0000-4000-8000-000000000000"
            assert client.push(line_user_id(), [text_message(f"offer {n}")], retry_key=key).delivered
    finally:
        client.close()


def test_the_quota_page_shows_the_numbers(session, line_sandbox, sandbox_server):
    push(sandbox_server[0], 3)
    client = logged_in_client(session, ["ops"])

    page = client.get("/admin/line/quota").text

    assert 'data-quota="limit">5,000 messages' in page and 'data-quota="used">3 messages' in page
    assert 'data-quota="remaining">4,997 messages' in page
    assert 'role="alert"' not in page


def test_the_quota_page_warns_from_80_percent(session, line_sandbox, sandbox_server, monkeypatch):
    monkeypatch.setattr(line_sandbox, "config", replace(line_sandbox.config, quota=10))
    push(sandbox_server[0], 8)
    client = logged_in_client(session, ["agent"], lang="zh-TW")

    page = client.get("/admin/line/quota").text

    assert 'data-quota="used">8 則' in page
    assert re.search(r'class="warning" role="alert">本月已用掉 80% 的訊息額度', page)


def test_an_unlimited_quota_is_said_and_never_warned_about(session, line_sandbox, sandbox_server, monkeypatch):
    monkeypatch.setattr(line_sandbox, "config", replace(line_sandbox.config, quota=None))
    push(sandbox_server[0], 2)

    page = logged_in_client(session, ["ops"]).get("/admin/line/quota").text

    assert 'data-quota="limit">No limit' in page and 'data-quota="used">2 messages' in page
    assert 'role="alert"' not in page and 'data-quota="remaining"' not in page


def test_the_quota_page_says_so_when_line_refuses(session, no_line, monkeypatch):
    class Refusing:
        def quota(self):
            return SendResult("quota", 401, body={"message": "Authentication failed"}, error="Authentication failed")

        def close(self):
            pass

    monkeypatch.setattr(quota, "line_client", Refusing)

    page = logged_in_client(session, ["ops"]).get("/admin/line/quota").text

    assert 'data-problem="refused">LINE refused the quota request' in page and "401 Authentication failed" in page


def test_the_quota_page_says_so_when_line_is_unreachable(session, monkeypatch):
    monkeypatch.setenv("TOOLKIT_LINE_API_BASE", f"http://127.0.0.1:{free_port()}")  # nothing listens
    monkeypatch.setenv("TOOLKIT_LINE_CHANNEL_ACCESS_TOKEN", "test-token")
    get_settings.cache_clear()
    client = logged_in_client(session, ["ops"])

    response = client.get("/admin/line/quota")

    assert response.status_code == 200
    assert 'data-problem="unreachable">LINE cannot be reached right now' in response.text
    assert "data-quota" not in response.text


def test_the_quota_page_says_so_when_no_token_is_configured(session, no_line):
    page = logged_in_client(session, ["ops"]).get("/admin/line/quota").text

    assert 'data-problem="not_configured"' in page and "TOOLKIT_LINE_CHANNEL_ACCESS_TOKEN" in page


# --- simulator --------------------------------------------------------------------------------

def test_without_the_sandbox_the_simulator_says_so(session, no_line):
    client = logged_in_client(session, ["ops"])
    page = client.get("/admin/line/simulator").text

    response = client.post("/admin/line/simulator/events", headers=JSON, data={
        "csrf_token": page_csrf(client, "/admin/tokens"), "kind": "follow", "user_id": line_user_id()})

    assert "works only with the LINE sandbox on" in page and 'id="simulator"' not in page
    assert response.status_code == 404 and response.json()["code"] == "line_simulator_disabled"


@pytest.fixture
def simulator_client(session, sandbox_on, line_sandbox, monkeypatch):
    """An ops user's client of an app with the sandbox on; the LINE client and the simulator
    use the loopback memory sandbox, and the simulator's POST to {base_url}/line/webhook
    reaches this same app (in-process, so it joins the test's transaction)."""
    client = logged_in_client(session, ["ops"], lang="zh-TW")
    # The mounted sandbox is not the one answering here; its token table is not needed.
    client.app.state.reply_token_sink = None
    webhook = TestClient(client.app)._transport
    base = get_settings().base_url.rstrip("/")
    monkeypatch.setattr(simulator, "http_client", lambda: httpx.Client(timeout=10, mounts={base: webhook}))
    return client


def simulator_page(client: TestClient, user: str | None = None) -> tuple[str, str]:
    page = client.get("/admin/line/simulator" + (f"?user={user}" if user else "")).text
    return re.search(r'data-user="([^"]+)"', page).group(1), re.search(r'data-csrf="([^"]+)"', page).group(1)


def run_worker(session) -> None:
    while jobs.process_events():
        pass
    session.expire_all()


def test_the_simulator_page_offers_a_fresh_user_or_the_one_asked_for(session, simulator_client):
    first, _ = simulator_page(simulator_client)
    second, _ = simulator_page(simulator_client)
    asked = line_user_id()

    assert simulator.is_user_id(first) and first != second
    assert simulator_page(simulator_client, asked)[0] == asked
    assert simulator_page(simulator_client, "not-an-id")[0] != "not-an-id"
    page = simulator_client.get("/admin/line/simulator").text
    assert "加入好友" in page and "傳送" in page and 'class="phone"' in page


def test_follow_and_opt_out_through_the_real_webhook_and_the_replies_show(session, simulator_client, line_sandbox):
    user, csrf = simulator_page(simulator_client)

    follow = simulator_client.post("/admin/line/simulator/events", headers=JSON,
                                   data={"csrf_token": csrf, "kind": "follow", "user_id": user})
    assert follow.status_code == 200, follow.text
    run_worker(session)
    opt_out = simulator_client.post("/admin/line/simulator/events", headers=JSON,
                                    data={"csrf_token": csrf, "kind": "message", "user_id": user, "text": "取消訂閱"})
    run_worker(session)
    talk = simulator_client.get(f"/admin/line/simulator/conversation?user_id={user}", headers=JSON).json()

    stored = session.scalars(select(WebhookEvent).where(WebhookEvent.user_id == user).order_by(WebhookEvent.id)).all()
    sent_ids = [follow.json()["webhook_event_id"], opt_out.json()["webhook_event_id"]]
    assert [e.webhook_event_id for e in stored] == sent_ids
    assert [(e.event_type, e.status, e.delivery) for e in stored] == [("follow", "done", "reply_sent"),
                                                                     ("message", "done", "reply_sent")]
    sides = [(b["side"], b.get("event_id")) for b in talk["bubbles"]]
    assert sides == [("system", sent_ids[0]), ("bot", None), ("user", sent_ids[1]), ("bot", None)]
    welcome, confirmation = (b["text"] for b in talk["bubbles"] if b["side"] == "bot")
    assert "取消訂閱" in welcome and "訂閱" in confirmation and talk["sandbox_error"] is None
    assert talk["bubbles"][2]["text"] == "取消訂閱"


def test_the_simulators_posts_need_csrf_and_valid_input(session, simulator_client):
    user, csrf = simulator_page(simulator_client)

    no_token = simulator_client.post("/admin/line/simulator/events", headers=JSON,
                                     data={"kind": "follow", "user_id": user})
    bad_user = simulator_client.post("/admin/line/simulator/events", headers=JSON,
                                     data={"csrf_token": csrf, "kind": "follow", "user_id": "U123"})
    no_text = simulator_client.post("/admin/line/simulator/events", headers=JSON,
                                    data={"csrf_token": csrf, "kind": "message", "user_id": user})
    bad_kind = simulator_client.post("/admin/line/simulator/events", headers=JSON,
                                     data={"csrf_token": csrf, "kind": "postback", "user_id": user})
    bad_query = simulator_client.get("/admin/line/simulator/conversation?user_id=U123", headers=JSON)

    assert no_token.status_code == 403 and no_token.json()["code"] == "csrf_failed"
    assert bad_user.status_code == no_text.status_code == bad_kind.status_code == bad_query.status_code == 422
    assert session.scalars(select(WebhookEvent).where(WebhookEvent.user_id == user)).all() == []
