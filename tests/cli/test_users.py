"""`toolkit users`: create (prompted or --password-stdin), list and token."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from tests.auth.factories import make_user
from tests.cli.helpers import PASSWORD, run_cli
from toolkit.auth import service as auth


def test_create_with_password_from_stdin(session: Session) -> None:
    result = run_cli("users", "create", "--email", "Ops@Example.com", "--role", "ops", "--role", "agent",
                     "--password-stdin", input=PASSWORD + "\n")

    assert result.exit_code == 0, result
    user = auth.authenticate(session, email="ops@example.com", password=PASSWORD)
    assert user.roles == ["agent", "ops"]


def test_create_with_prompted_password(session: Session) -> None:
    result = run_cli("users", "create", "--email", "prompted@example.com", "--role", "admin",
                     input=f"{PASSWORD}\n{PASSWORD}\n")

    assert result.exit_code == 0, result
    assert auth.authenticate(session, email="prompted@example.com", password=PASSWORD).roles == ["admin"]


@pytest.mark.parametrize(
    ("args", "password", "fragment"),
    [
        (("--email", "weak@example.com", "--role", "ops"), "short", "at least"),
        (("--email", "role@example.com", "--role", "wizard"), PASSWORD, "unknown role wizard"),
        (("--email", "taken@example.com", "--role", "ops"), PASSWORD, "already exists"),
        (("--email", "notanemail", "--role", "ops"), PASSWORD, "is not an e-mail address"),
        (("--email", "two words@example.com", "--role", "ops"), PASSWORD, "is not an e-mail address"),
    ],
    ids=["weak", "role", "taken", "not-an-email", "space-in-email"],
)
def test_create_refusals_are_one_line(session: Session, args: tuple[str, ...], password: str, fragment: str) -> None:
    make_user(session, roles=["ops"], email="taken@example.com")

    result = run_cli("users", "create", *args, "--password-stdin", input=password + "\n")

    assert result.exit_code == 2
    assert len(result.stderr_lines) == 1 and fragment in result.stderr
    assert "Traceback" not in result.stderr


def test_list_users(session: Session) -> None:
    make_user(session, roles=["editor"], email="listed@example.com")

    result = run_cli("users", "list")

    assert result.exit_code == 0
    assert any(line.startswith("listed@example.com") and "editor" in line for line in result.stdout.splitlines())


def test_token_prints_only_the_token(session: Session) -> None:
    user = make_user(session, roles=["ops"], email="tokens@example.com")

    result = run_cli("users", "token", "--email", "TOKENS@example.com", "--name", "ci", "--days", "7")

    assert result.exit_code == 0, result
    token = result.stdout.strip()
    assert result.stdout == token + "\n" and token.startswith(auth.TOKEN_PREFIX)
    assert auth.authenticate_token(session, token).id == user.id


def test_token_for_unknown_or_deactivated_user_is_one_line(session: Session) -> None:
    user = make_user(session, roles=["ops"], email="gone@example.com")
    auth.set_active(session, user_id=user.id, active=False, actor="test")

    unknown = run_cli("users", "token", "--email", "nobody@example.com")
    deactivated = run_cli("users", "token", "--email", "gone@example.com")

    assert (unknown.exit_code, deactivated.exit_code) == (2, 2)
    assert unknown.stderr_lines == ["error: no user with e-mail nobody@example.com"]
    assert deactivated.stderr_lines == ["error: gone@example.com is deactivated"]
    assert unknown.stdout == deactivated.stdout == ""
