"""`toolkit llm`: the configured OpenAI-compatible endpoint, and a loopback fake of one."""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn

from toolkit.llm.client import LlmClient, LlmUnavailable
from toolkit.llm.fake import FakeState, create_fake_app
from toolkit.settings import get_settings

app = typer.Typer(help="The LLM endpoint (OpenAI-compatible): check it, or run a loopback fake of one.",
                  no_args_is_help=True)


@app.command()
def fake(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port")] = 8090,
) -> None:
    """Run a deterministic OpenAI-compatible fake (embeddings, chat completions, fault injection).

    Point TOOLKIT_LLM_BASE_URL at http://HOST:PORT/v1 (any model name and key work);
    GET /_requests shows what it received, POST /_faults injects 429, 500, timeouts and junk.
    """
    typer.echo(f"fake LLM at http://{host}:{port}/v1 (GET /_requests shows what it received)", err=True)
    uvicorn.run(create_fake_app(FakeState()), host=host, port=port, log_level="info", access_log=False)


@app.command()
def check() -> None:
    """Ask the configured endpoint for one embedding and one chat completion."""
    settings = get_settings()
    if not settings.llm_configured:
        typer.echo("error: no LLM is configured: set TOOLKIT_LLM_BASE_URL and TOOLKIT_LLM_MODEL", err=True)
        raise typer.Exit(2)
    failed = False
    with LlmClient.from_settings(settings) as client:
        for name, call in (("embeddings", lambda: f"{len(client.embed(['ping'])[0])} dimensions"),
                           ("chat", lambda: repr(client.chat([{"role": "user", "content": "Say OK."}])[:60]))):
            try:
                typer.echo(f"  ok   {name}: {call()}")
            except LlmUnavailable as exc:
                failed = True
                typer.echo(f"  FAIL {name}: {exc.message}")
    sending = "masked customer text is sent" if settings.llm_send_customer_text else "customer text is not sent"
    typer.echo(f"{settings.llm_base_url} (chat {settings.llm_model}, embeddings {settings.llm_embedding_model}); "
               f"{sending}")
    if failed:
        raise typer.Exit(1)
