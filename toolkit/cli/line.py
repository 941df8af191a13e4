"""`toolkit line`: the LINE channel and its local sandbox."""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn

from toolkit.line.check import WEBHOOK_PATH, run_checks
from toolkit.line.client import LineClient
from toolkit.line.sandbox import MemoryStore, create_sandbox_app
from toolkit.line.sandbox.service import DEFAULT_QUOTA, REPLY_TOKEN_TTL_S, parse_quota
from toolkit.settings import get_settings

app = typer.Typer(help="LINE Messaging API: check a real channel, or run the local sandbox that stands in for LINE.", no_args_is_help=True)


@app.command()
def sandbox(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port")] = 8081,
    quota: Annotated[str, typer.Option(
        "--quota", help=f"Messages a month the channel may push, or none (default {DEFAULT_QUOTA:,}, a free plan)",
    )] = str(DEFAULT_QUOTA),
    reply_token_ttl_s: Annotated[float, typer.Option(
        "--reply-token-ttl-s", min=0.1, help="How long a reply token stays valid, in seconds (LINE: about a minute)",
    )] = REPLY_TOKEN_TTL_S,
) -> None:
    """Run the LINE sandbox alone, in memory: no database, secret or token needed.

    Point a LINE client at http://HOST:PORT (TOOLKIT_LINE_API_BASE); any bearer token works.
    """
    try:
        monthly_quota = parse_quota(quota)
    except ValueError as exc:
        typer.echo(f"error: --quota: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"LINE sandbox at http://{host}:{port} (in memory; GET /_messages shows what it received)", err=True)
    app_ = create_sandbox_app(MemoryStore(), quota=monthly_quota, reply_token_ttl_s=reply_token_ttl_s)
    uvicorn.run(app_, host=host, port=port, log_level="info", access_log=False)


@app.command()
def check() -> None:
    """Verify the channel: access token, webhook URL and whether it is on, a test delivery."""
    settings = get_settings()
    token = settings.line_channel_access_token
    if token is None and not settings.line_sandbox and not settings.line_api_base:
        typer.echo("error: TOOLKIT_LINE_CHANNEL_ACCESS_TOKEN is not set; see docs/line-go-live.md", err=True)
        raise typer.Exit(2)
    client = LineClient(api_base=settings.effective_line_api_base,
                        access_token=token.get_secret_value() if token else "sandbox")
    try:
        checks = run_checks(client, expected_webhook_url=settings.base_url.rstrip("/") + WEBHOOK_PATH,
                            have_secret=settings.line_channel_secret is not None or settings.line_sandbox)
    finally:
        client.close()
    typer.echo(f"LINE API: {settings.effective_line_api_base}")
    for item in checks:
        mark = "ok  " if item.ok else "FAIL"
        typer.echo(f"  {mark} {item.name}: {item.detail}")
        if item.fix:
            typer.echo(f"       fix: {item.fix}")
    if not all(item.ok for item in checks):
        raise typer.Exit(1)
