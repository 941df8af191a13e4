"""The LINE client the product talks through, built from settings: the sender sends with
it, the inbox reads profiles and the quota page reads the quota with it."""

from __future__ import annotations

from toolkit.line.client import DEFAULT_TIMEOUT_S, LineClient
from toolkit.settings import get_settings


class NoChannel(Exception):
    """No access token and nothing else (sandbox, explicit API base) to talk to."""


def line_client(*, timeout_s: float = DEFAULT_TIMEOUT_S, pool_size: int | None = None) -> LineClient:
    settings = get_settings()
    token = settings.line_channel_access_token
    if token is None and not settings.line_sandbox and not settings.line_api_base:
        raise NoChannel("TOOLKIT_LINE_CHANNEL_ACCESS_TOKEN is not set")
    # The sandbox accepts any bearer token.
    return LineClient(api_base=settings.effective_line_api_base,
                      access_token=token.get_secret_value() if token else "sandbox", timeout_s=timeout_s,
                      pool_size=pool_size)
