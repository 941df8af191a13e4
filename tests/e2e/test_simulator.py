"""An ops user chats with the bot through the simulator, in a real browser against a real
server: every action is a signed event to our own webhook, answered by the in-process
worker through the mounted LINE sandbox."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import LiveServer

pytestmark = pytest.mark.e2e

SCREENSHOT = "/tmp/simulator.png"
REPLY_TIMEOUT_MS = 15_000  # the worker answers within a second or two; this is a ceiling, not a wait


def log_in(page: Page, live_server: LiveServer, role: str) -> None:
    email, password = live_server.logins[role]
    page.goto("/login")
    page.get_by_label("電子郵件").fill(email)
    page.get_by_label("密碼").fill(password)
    page.get_by_role("button", name="登入").click()
    expect(page.get_by_role("heading", name="聯絡人")).to_be_visible()


def test_follow_then_opt_out_in_the_simulator_is_recorded_on_the_contact(page: Page, live_server: LiveServer) -> None:
    log_in(page, live_server, "ops")
    page.get_by_role("link", name="LINE 模擬器").click()
    expect(page.get_by_role("heading", name="LINE 聊天模擬器")).to_be_visible()
    user_id = page.locator("#simulator").get_attribute("data-user")
    assert user_id and re.fullmatch(r"U[0-9a-f]{32}", user_id)
    expect(page.locator(".chat")).to_contain_text("尚無對話")

    page.locator('button[data-kind="follow"]').click()
    expect(page.locator(".msg.system").first).to_contain_text("加入好友")
    bot = page.locator(".msg.bot")
    expect(bot.first).to_contain_text("取消訂閱", timeout=REPLY_TIMEOUT_MS)  # the welcome says how to opt out
    expect(bot.first).to_contain_text("歡迎加入")

    page.get_by_placeholder("輸入訊息").fill("取消訂閱")
    page.get_by_role("button", name="傳送").click()
    said = page.locator(".msg.user").last
    expect(said).to_contain_text("取消訂閱")
    expect(bot).to_have_count(2, timeout=REPLY_TIMEOUT_MS)
    expect(bot.nth(1)).to_contain_text("輸入「訂閱」")  # the confirmation says how to subscribe again
    expect(said).to_contain_text("已完成")  # the event's status in the inbox
    event_id = said.get_attribute("data-event-id")
    assert event_id and len(event_id) == 26
    expect(page.locator("[data-role=error]")).to_be_empty()
    page.screenshot(path=SCREENSHOT, full_page=True)

    page.goto(f"/admin/contacts?search={user_id}")
    results = page.locator("table.contacts tbody tr")
    expect(results).to_have_count(1)
    expect(results).to_contain_text(user_id)
    results.locator("a").first.click()
    expect(page.locator("table.identities")).to_contain_text(user_id)
    expect(page.locator('table.consent tr[data-purpose="marketing.line_push"]')).to_contain_text("已撤回")
    withdrawal = (page.locator("table.history tbody tr")
                  .filter(has=page.locator('td[data-source="keyword"]'))
                  .filter(has_text="marketing.line_push"))
    expect(withdrawal).to_have_count(1)
    expect(withdrawal).to_contain_text("撤回")
    expect(withdrawal.locator('td[data-source="keyword"]')).to_have_text("關鍵字")
    expect(withdrawal).to_contain_text("取消訂閱")
    expect(withdrawal).to_contain_text(event_id)

    page.get_by_role("link", name="LINE 事件").click()
    row = page.locator(f'tr[data-webhook-event-id="{event_id}"]')
    expect(row).to_contain_text("已完成")
    expect(row).to_contain_text("已回覆")


def test_the_quota_page_reads_the_sandbox(page: Page, live_server: LiveServer) -> None:
    log_in(page, live_server, "agent")
    page.get_by_role("link", name="訊息額度").click()

    expect(page.get_by_role("heading", name="LINE 訊息額度")).to_be_visible()
    expect(page.locator('[data-quota="limit"]')).to_have_text("5,000 則")
    expect(page.locator("[data-problem]")).to_have_count(0)


def test_editors_see_no_line_pages(page: Page, live_server: LiveServer) -> None:
    log_in(page, live_server, "editor")

    expect(page.get_by_role("link", name="LINE 模擬器")).to_have_count(0)
    response = page.goto("/admin/line/simulator")
    assert response is not None and response.status == 403
