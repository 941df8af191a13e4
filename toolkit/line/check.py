"""`toolkit line check`: is a real channel set up the way the toolkit needs it?"""

from __future__ import annotations

from dataclasses import dataclass

from toolkit.line.client import LineClient

WEBHOOK_PATH = "/line/webhook"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str | None = None


def run_checks(client: LineClient, *, expected_webhook_url: str, have_secret: bool) -> list[Check]:
    checks = [
        Check("channel secret", have_secret, "set" if have_secret else "not set",
              None if have_secret else "set TOOLKIT_LINE_CHANNEL_SECRET (Basic settings tab of the channel)"),
    ]
    info = client.bot_info()
    if info.status != 200:
        reason = info.error or f"HTTP {info.status}"
        checks.append(Check("access token", False, f"LINE refused the bot info call: {reason}",
                            "issue a channel access token (Messaging API tab) and set TOOLKIT_LINE_CHANNEL_ACCESS_TOKEN"))
        return checks
    name = info.body.get("displayName") or info.body.get("display_name") or "?"
    checks.append(Check("access token", True, f"valid for bot {name!r}"))

    endpoint = client.webhook_endpoint()
    url = endpoint.body.get("endpoint") if endpoint.status == 200 else None
    active = bool(endpoint.body.get("active")) if endpoint.status == 200 else False
    if not url:
        checks.append(Check("webhook URL", False, "no webhook URL is set",
                            f"set the webhook URL to {expected_webhook_url} in the LINE Developers Console"))
    else:
        right = url.rstrip("/") == expected_webhook_url.rstrip("/")
        checks.append(Check("webhook URL", right and url.startswith("https://"), url,
                            None if right and url.startswith("https://") else
                            f"use {expected_webhook_url} (HTTPS with a valid certificate)"))
        checks.append(Check("use webhook", active, "on" if active else "off",
                            None if active else "turn on 'Use webhook' in the LINE Developers Console"))
    test = client.test_webhook()
    delivered = test.status == 200 and bool(test.body.get("success"))
    detail = f"LINE reached the webhook ({test.body.get('statusCode')})" if delivered else (
        test.body.get("reason") or test.body.get("detail") or test.error or f"HTTP {test.status}")
    checks.append(Check("test delivery", delivered, str(detail),
                        None if delivered else "make the webhook URL reachable from the internet over HTTPS"))
    return checks
