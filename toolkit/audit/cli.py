"""`toolkit audit`: check the audit log's hash chain."""

from __future__ import annotations

import typer

from toolkit.audit import service
from toolkit.db import session_scope

app = typer.Typer(help="Tamper-evident audit log.", no_args_is_help=True)


@app.command()
def verify() -> None:
    """Recompute the hash chain; exit 1 and name the first bad row if anything was altered or removed."""
    with session_scope() as session:
        report = service.verify(session)
    if report.ok:
        typer.echo(f"audit chain intact: {report.rows_checked} rows verified")
        return
    where = f" at row {report.first_bad_id}" if report.first_bad_id is not None else ""
    typer.echo(f"audit chain BROKEN{where}: {report.problem} ({report.rows_checked} rows before it verified)",
               err=True)
    raise typer.Exit(1)
