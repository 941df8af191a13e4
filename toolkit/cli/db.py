"""`toolkit db`: migrations."""

from __future__ import annotations

import typer

from toolkit import migrate
from toolkit.consent import service as consent
from toolkit.db import get_engine, session_scope
from toolkit.settings import get_settings

app = typer.Typer(help="Create and migrate the database (TOOLKIT_DATABASE_URL).", no_args_is_help=True)


@app.command()
def upgrade(revision: str = typer.Argument("head", help="Target revision")) -> None:
    """Migrate to REVISION (default: the newest) and sync config/purposes.yaml."""
    migrate.upgrade(get_engine(), revision)
    with session_scope() as session:
        purposes = consent.sync_from_config(session, get_settings().config_dir)
    typer.echo(f"database at {migrate.current_revision(get_engine())}; {len(purposes)} purposes synced", err=True)


@app.command()
def downgrade(revision: str = typer.Argument(..., help="Target revision, e.g. base or -1")) -> None:
    """Undo migrations down to REVISION."""
    migrate.downgrade(get_engine(), revision)
    typer.echo(f"database at {migrate.current_revision(get_engine()) or 'base'}", err=True)


@app.command()
def current() -> None:
    """Print the database's migration revision."""
    typer.echo(migrate.current_revision(get_engine()) or "base")
