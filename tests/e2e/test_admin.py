"""An admin's walk through the UI in a real browser against a real server."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import LiveServer
from toolkit.demo import line_user_id

pytestmark = pytest.mark.e2e

SCREENSHOT = "/tmp/admin-contact.png"
NOTE = "客人來電要求停止推播 (e2e)"


def test_admin_withdraws_marketing_for_a_contact(page: Page, live_server: LiveServer) -> None:
    email, password = live_server.logins["admin"]
    line_id = line_user_id(7)

    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_role("heading", name="登入 / Log in")).to_be_visible()

    page.get_by_label("電子郵件").fill(email)
    page.get_by_label("密碼").fill(password)
    page.get_by_role("button", name="登入").click()
    expect(page.get_by_role("heading", name="聯絡人")).to_be_visible()
    expect(page.locator(".pager")).to_contain_text("共 300 筆")

    page.get_by_role("searchbox").fill(line_id[:12])
    page.get_by_role("button", name="搜尋").click()
    expect(page).to_have_url(re.compile(rf"search={line_id[:12]}"))
    results = page.locator("table.contacts tbody tr")
    expect(results).to_have_count(1)
    expect(results).to_contain_text(line_id)
    results.locator("a").first.click()
    expect(page.locator("table.identities")).to_contain_text(line_id)

    push = page.locator('form[data-purpose="marketing.line_push"]')
    push.locator('input[name="note"]').fill(NOTE)
    push.get_by_role("button", name="撤回").click()

    expect(page.get_by_role("status")).to_have_text("已記錄撤回")
    expect(page.locator('table.consent tr[data-purpose="marketing.line_push"]')).to_contain_text("已撤回")
    newest = page.locator("table.history tbody tr").first
    expect(newest).to_contain_text("撤回")
    expect(newest.locator('td[data-source="admin"]')).to_have_text("後台")
    expect(newest).to_contain_text(NOTE)
    expect(newest).to_contain_text("admin-ui")
    expect(newest).to_contain_text(f"user:{email}")
    page.screenshot(path=SCREENSHOT, full_page=True)

    page.get_by_role("link", name="English").click()
    expect(page.get_by_role("heading", name="Current consent")).to_be_visible()
    expect(page.get_by_role("heading", name="Consent history")).to_be_visible()
    expect(page.locator('table.consent tr[data-purpose="marketing.line_push"]')).to_contain_text("Withdrawn")
    expect(page.locator("table.history tbody tr").first).to_contain_text("Admin")

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto("/admin/contacts")
    expect(page).to_have_url(re.compile(r"/login\?next=/admin/contacts$"))
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
