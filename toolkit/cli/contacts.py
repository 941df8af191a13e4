"""`toolkit contacts`: import and list contacts."""

from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from toolkit.consent import service as consent
from toolkit.contacts import importer, service
from toolkit.db import session_scope

app = typer.Typer(help="Contacts and their LINE identities.", no_args_is_help=True)
stderr = Console(stderr=True)

# Rows per transaction: a crash loses at most one batch, and re-running resumes (imports are idempotent).
BATCH_ROWS = 500


@app.command("import")
def import_contacts(
    file: Annotated[Path, typer.Argument(help="CSV or JSONL with external_id, display_name, locale and purpose columns")],
    actor: Annotated[str, typer.Option("--actor", help="Who imports (for the audit log)")] = "cli",
) -> None:
    """Import contacts. Exit 0: all imported or skipped; 1: some rows rejected; 2: unusable file."""
    with session_scope() as session:
        purposes = {p.code for p in consent.list_purposes(session)}
    source = importer.inspect_file(file, purposes)
    report = importer.ImportReport()
    rows = importer.read_rows(source)
    seen: set[str] = set()
    columns = [TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=stderr, transient=True) as progress:
        task = progress.add_task("import", total=source.lines)
        while batch := list(islice(rows, BATCH_ROWS)):
            with session_scope() as session:
                for line, row in batch:
                    _import_one(session, report, line, row, seen, purposes=purposes, actor=actor, file=file.name)
                progress.update(task, completed=batch[-1][0])
    with session_scope() as session:
        importer.record_summary(session, report=report, file=file.name, actor=actor)
    for line, reason in report.rejected:
        typer.echo(f"{file.name}:{line}: rejected: {reason}", err=True)
    counts = report.as_dict()
    typer.echo(", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items()), err=True)
    if report.rejected:
        raise typer.Exit(1)


def _import_one(session, report, line, row, seen, *, purposes, actor, file) -> None:  # noqa: ANN001
    if isinstance(row, str):
        report.rejected.append((line, row))
        return
    external_id = row.get("external_id")
    if isinstance(external_id, str) and external_id.strip() in seen:
        report.skipped_duplicate.append(line)
        return
    try:
        importer.import_row(session, report, line, row, purposes=purposes, actor=actor, file=file)
    except importer.RowRejected as exc:
        report.rejected.append((line, exc.message))
        return
    seen.add(external_id.strip())


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
