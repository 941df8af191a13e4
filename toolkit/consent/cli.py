"""`toolkit consent`: record and read consent decisions."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from toolkit.consent import service
from toolkit.contacts import service as contacts
from toolkit.db import session_scope

app = typer.Typer(help="Grant, withdraw, object and check consent per purpose.", no_args_is_help=True)

ContactOpt = Annotated[str, typer.Option("--contact", help="The contact's EXTERNAL_ID (LINE userId)")]
PurposeOpt = Annotated[str, typer.Option("--purpose", help="Purpose code, e.g. marketing.line_push")]
SourceOpt = Annotated[str, typer.Option("--source", help=f"Where the decision came from: {', '.join(service.SOURCES)}")]
ActorOpt = Annotated[str, typer.Option("--actor", help="Who records it (for the audit log)")]


def _record(action: str, contact: str, purpose: str, source: str, actor: str) -> None:
    with session_scope() as session:
        person = contacts.require_by_external_id(session, contact)
        if action == "object" and purpose == service.ALL_PURPOSES:
            service.object_to_all_contact(
                session,
                contact_id=person.id,
                identities=[(i.channel, i.external_id) for i in person.identities],
                source=source,
                actor=actor,
                evidence={"via": "cli"},
            )
            typer.echo(f"{contact}: objected to all contact; identity suppressed", err=True)
            return
        change = service.record(
            session, contact_id=person.id, purpose=purpose, action=action, source=source, actor=actor,
            evidence={"via": "cli"},
        )
    note = "" if change.applied else " (not applied: an earlier refusal stands)"
    typer.echo(f"{contact}: {purpose} is {change.state}{note}", err=True)


@app.command()
def grant(contact: ContactOpt, purpose: PurposeOpt, source: SourceOpt = "cli", actor: ActorOpt = "cli") -> None:
    """Record that the contact granted PURPOSE."""
    _record("grant", contact, purpose, source, actor)


@app.command()
def withdraw(contact: ContactOpt, purpose: PurposeOpt, source: SourceOpt = "cli", actor: ActorOpt = "cli") -> None:
    """Record that the contact withdrew consent to PURPOSE."""
    _record("withdraw", contact, purpose, source, actor)


@app.command("object")
def object_(contact: ContactOpt, purpose: PurposeOpt, source: SourceOpt = "cli", actor: ActorOpt = "cli") -> None:
    """Record the contact's objection to PURPOSE ('all': to all contact, which also suppresses them)."""
    _record("object", contact, purpose, source, actor)


def _jsonable(status: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        code: {**item, "changed_at": item["changed_at"].isoformat() if item["changed_at"] else None}
        for code, item in status.items()
    }


@app.command()
def status(
    external_id: Annotated[str, typer.Argument(help="The contact's EXTERNAL_ID")],
    as_json: Annotated[bool, typer.Option("--json", help="Print only JSON on stdout")] = False,
) -> None:
    """Show the contact's current state for every configured purpose."""
    with session_scope() as session:
        person = contacts.require_by_external_id(session, external_id)
        current = _jsonable(service.status(session, contact_id=person.id))
    if as_json:
        typer.echo(json.dumps(current, ensure_ascii=False))
        return
    for code, item in current.items():
        typer.echo(f"{code:24} {item['state']:10} {item['lawful_basis']:20} {item['changed_at'] or '-'}")
