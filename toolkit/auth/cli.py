"""`toolkit users`: staff accounts and API tokens."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from toolkit.auth import service
from toolkit.auth.schemas import ROLES
from toolkit.db import session_scope
from toolkit.kit.errors import InvalidInput, NotFound

app = typer.Typer(help="Staff users, roles and API tokens.", no_args_is_help=True)


@app.command()
def create(
    email: Annotated[str, typer.Option("--email", help="Login e-mail")],
    role: Annotated[list[str], typer.Option("--role", help=f"Role (repeatable): {', '.join(ROLES)}")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin")] = False,
    name: Annotated[str | None, typer.Option("--name", help="Display name")] = None,
) -> None:
    """Create a staff user. The password is prompted for, or read from stdin."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    with session_scope() as session:
        user = service.create_user(session, email=email, password=password, roles=role, actor="cli",
                                   display_name=name)
        typer.echo(f"created user {user.email} ({', '.join(user.roles)})", err=True)


@app.command("list")
def list_users() -> None:
    """List staff users and their roles."""
    with session_scope() as session:
        for user in service.list_users(session):
            state = "" if user.active else " (deactivated)"
            typer.echo(f"{user.email:40} {','.join(user.roles)}{state}")


@app.command()
def token(
    email: Annotated[str, typer.Option("--email", help="The user the token acts as")],
    name: Annotated[str, typer.Option("--name", help="What the token is for")] = "cli",
    days: Annotated[int | None, typer.Option("--days", min=1, max=3650, help="Expire after DAYS")] = None,
) -> None:
    """Create an API token and print it once on stdout."""
    with session_scope() as session:
        user = service.get_user_by_email(session, email)
        if user is None:
            raise NotFound(f"no user with e-mail {email}")
        if not user.active:
            raise InvalidInput(f"{email} is deactivated")
        _token, plain = service.create_token(session, user_id=user.id, name=name, actor="cli", expires_in_days=days)
    typer.echo(plain)
