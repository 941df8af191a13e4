"""`toolkit db`: migrations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from alembic.util import CommandError

from toolkit import migrate
from toolkit.consent import service as consent
from toolkit.db import get_engine, session_scope
from toolkit.kit.errors import InvalidInput
from toolkit.settings import get_settings

app = typer.Typer(help="Create and migrate the database (TOOLKIT_DATABASE_URL).", no_args_is_help=True)


@contextmanager
def _alembic() -> Iterator[None]:
    """Alembic's own errors (an unknown revision) are the user's input, not a crash."""
    try:
        yield
    except CommandError as exc:
        raise InvalidInput(str(exc)) from exc


@app.command()
def upgrade(revision: str = typer.Argument("head", help="Target revision")) -> None:
    """Migrate to REVISION (default: the newest) and sync purposes.yaml."""
    with _alembic():
        migrate.upgrade(get_engine(), revision)
    with session_scope() as session:
        purposes = consent.sync_from_config(session, get_settings().config_dir)
    typer.echo(f"database at {migrate.current_revision(get_engine())}; {len(purposes)} purposes synced", err=True)


# ignore_unknown_options: `downgrade -1` is a relative revision, not an option.
@app.command(context_settings={"ignore_unknown_options": True})
def downgrade(revision: str = typer.Argument(..., help="Target revision, e.g. base or -1")) -> None:
    """Undo migrations down to REVISION."""
    with _alembic():
        migrate.downgrade(get_engine(), revision)
    typer.echo(f"database at {migrate.current_revision(get_engine()) or 'base'}", err=True)


@app.command()
def current() -> None:
    """Print the database's migration revision."""
    typer.echo(migrate.current_revision(get_engine()) or "base")
