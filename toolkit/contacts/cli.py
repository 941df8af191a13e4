"""`toolkit contacts`: import and list contacts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from toolkit.consent import service as consent
from toolkit.contacts import importer, service
from toolkit.db import session_scope
from toolkit.kit import tabular
from toolkit.kit.importing import import_batches, summary
from toolkit.kit.secrets import identity_hasher

app = typer.Typer(help="Contacts and their LINE identities.", no_args_is_help=True)


@app.command("import")
def import_contacts(
    file: Annotated[Path, typer.Argument(help="CSV or JSONL with external_id, display_name, locale and purpose columns")],
    actor: Annotated[str, typer.Option("--actor", help="Who imports (for the audit log)")] = "cli",
) -> None:
    """Import contacts. Exit 0: all imported or skipped; 1: some rows rejected; 2: unusable file."""
    with session_scope() as session:
        purposes = {p.code for p in consent.list_purposes(session)}
        hash_of = identity_hasher(session, service.DEFAULT_CHANNEL)
    source = importer.inspect_file(file, purposes)
    run = importer.ImportRun(purposes=purposes, actor=actor, file=file.name)
    import_batches(tabular.read_rows(source), lines=source.lines, add_batch=run.add_prepared,
                   prepare=lambda batch: run.prepare(batch, hash_of), batch_rows=importer.BATCH_ROWS)
    report = run.report
    with session_scope() as session:
        importer.record_summary(session, report=report, file=file.name, actor=actor)
    for line, reason in report.rejected:
        typer.echo(f"{file.name}:{line}: rejected: {reason}", err=True)
    typer.echo(summary(report.as_dict()), err=True)
    if report.rejected:
        raise typer.Exit(1)


@app.command("list")
def list_contacts(
    search: Annotated[str | None, typer.Option("--search", help="Name or external id prefix")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10000)] = 20,
) -> None:
    """List contacts, newest first."""
    with session_scope() as session:
        rows, total = service.list_contacts(session, search=search, limit=limit)
        for contact in rows:
            ids = ",".join(i.external_id for i in contact.identities)
            typer.echo(f"{contact.id:>8}  {ids:36}  {contact.display_name or ''}")
    typer.echo(f"{len(rows)} of {total}", err=True)
