"""`toolkit`: the command line. Sub-command groups by what they act on."""

from __future__ import annotations

import logging
import os
import sys

import typer
from pydantic import ValidationError
from typer import Abort
from typer._click.exceptions import NoArgsIsHelpError, UsageError  # Typer >= 0.26 carries its own Click
from sqlalchemy.exc import ArgumentError, DBAPIError

from toolkit import domains
from toolkit.cli import db, line, llm, run
from toolkit.kit.errors import ToolkitError
from toolkit.settings import ConfigFileError, get_settings

app = typer.Typer(
    name="toolkit",
    help="Social-ops toolkit: consent registry, contacts, LINE chatbot and campaigns.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
# Groups that act on the whole installation; each domain's own groups come from the
# composition root.
app.add_typer(db.app, name="db")
app.add_typer(line.app, name="line")
app.add_typer(llm.app, name="llm")
for name, group in domains.PRODUCT.cli_groups.items():
    app.add_typer(group, name=name)
run.register(app)


# libpq waits for an unreachable server for minutes (psycopg's default: 130 s). A command
# line should give up within seconds; PGCONNECT_TIMEOUT set by the user still wins.
CONNECT_TIMEOUT_S = "3"
# SQLSTATEs (PostgreSQL) and messages (SQLite) that mean the schema is missing or old.
UNMIGRATED_SQLSTATES = frozenset({"42P01", "42703"})  # undefined_table, undefined_column
UNMIGRATED_SQLITE = ("no such table", "no such column")


def fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise SystemExit(2)


def database_problem(exc: DBAPIError) -> str:
    text = next(iter(str(exc.orig if exc.orig is not None else exc).strip().splitlines()), type(exc).__name__)
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate in UNMIGRATED_SQLSTATES or text.startswith(UNMIGRATED_SQLITE):
        return f"the database is not migrated ({text}); run `toolkit db upgrade`"
    return f"database error: {text}"


def settings_problem(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])  # empty for checks across settings
    message = first["msg"].removeprefix("Value error, ")  # pydantic's prefix says nothing to a user
    return f"invalid settings: {f'TOOLKIT_{where.upper()}: ' if where else ''}{message}"


def main() -> None:
    """Console entry point: every known failure becomes one line on stderr and exit 2."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("PGCONNECT_TIMEOUT", CONNECT_TIMEOUT_S)
    domains.assemble()
    try:
        if os.environ.get("TOOLKIT_CLOCK_OFFSET"):  # only then: a bad setting must not break --help
            get_settings().apply_clock()
        # Not standalone: a usage error (a missing or unknown option, a bad value) reaches
        # us and becomes one line like every other error, instead of Click's usage box.
        code = app(prog_name="toolkit", standalone_mode=False)
    except NoArgsIsHelpError as exc:  # `toolkit contacts` alone: the group's help
        exc.show()
        sys.exit(exc.exit_code)
    except UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "toolkit"
        fail(f"{exc.format_message()} (see '{where} --help')")
    except Abort:
        typer.echo("aborted", err=True)
        sys.exit(1)
    except ToolkitError as exc:
        fail(exc.message)
    except DBAPIError as exc:
        fail(database_problem(exc))
    except ArgumentError as exc:  # also NoSuchModuleError: an unknown database URL scheme
        fail(f"invalid TOOLKIT_DATABASE_URL: {exc}")
    except ValidationError as exc:
        fail(settings_problem(exc))
    except ConfigFileError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    if isinstance(code, int) and code:  # typer.Exit(code), returned when not standalone
        sys.exit(code)


if __name__ == "__main__":
    main()
