"""`toolkit`: the command line. Sub-command groups by what they act on."""

from __future__ import annotations

import logging
import sys

import typer
from sqlalchemy.exc import OperationalError, ProgrammingError

from toolkit.cli import audit, consent, contacts, db, run, users
from toolkit.kit.errors import ToolkitError

app = typer.Typer(
    name="toolkit",
    help="Social-ops toolkit: consent registry, contacts, LINE chatbot and campaigns.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(db.app, name="db")
app.add_typer(contacts.app, name="contacts")
app.add_typer(consent.app, name="consent")
app.add_typer(users.app, name="users")
app.add_typer(audit.app, name="audit")
run.register(app)


def fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise SystemExit(2)


def main() -> None:
    """Console entry point: every known failure becomes one line on stderr and exit 2."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except ToolkitError as exc:
        fail(exc.message)
    except (OperationalError, ProgrammingError) as exc:
        text = str(exc.orig).splitlines()[0] if exc.orig else str(exc)
        if "no such table" in text or "does not exist" in text:
            fail(f"the database is not migrated ({text}); run `toolkit db upgrade`")
        fail(f"database error: {text}")
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
