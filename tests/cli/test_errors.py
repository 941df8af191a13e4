"""What every command does when it cannot work: one line on stderr, exit 2, no traceback."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

from tests.cli.helpers import PASSWORD, run_cli, write
from toolkit import cli

DB_COMMANDS = [
    ("consent", "status", "Uabc", "--json"),
    ("consent", "grant", "--contact", "Uabc", "--purpose", "service.chat", "--source", "cli"),
    ("consent", "object", "--contact", "Uabc", "--purpose", "all", "--source", "cli"),
    ("contacts", "list"),
    ("users", "list"),
    ("users", "token", "--email", "a@example.com"),
    ("audit", "verify"),
]


def _command_paths(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    # Typer >= 0.26 carries its own copy of Click, so walk by duck type.
    yield path
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            yield from _command_paths(sub, (*path, name))


ALL_COMMANDS = list(_command_paths(typer.main.get_command(cli.app)))


def assert_one_line_error(result, *fragments: str) -> None:  # noqa: ANN001 - a CliResult
    assert result.exit_code == 2, result
    assert len(result.stderr_lines) == 1, result.stderr
    assert result.stderr_lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    for fragment in fragments:
        assert fragment in result.stderr


def test_every_group_and_command_are_listed() -> None:
    groups = {path[0] for path in ALL_COMMANDS if path}
    assert {"db", "contacts", "consent", "users", "audit", "serve", "worker", "demo"} <= groups


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=lambda p: " ".join(p) or "toolkit")
def test_help_works_without_a_database(path: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOLKIT_DATABASE_URL", f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}")

    result = run_cli(*path, "--help")

    assert result.exit_code == 0, result
    assert "Usage" in result.stdout
    assert not (tmp_path / "missing-dir").exists()


@pytest.mark.parametrize("args", DB_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_unmigrated_sqlite_database_says_run_db_upgrade(args: tuple[str, ...], sqlite_url: str) -> None:
    assert_one_line_error(run_cli(*args), "toolkit db upgrade")


def test_unmigrated_database_for_import_and_user_creation(sqlite_url: str, tmp_path: Path) -> None:
    people = write(tmp_path / "people.csv", "external_id,display_name\nUabc,A\n")

    assert_one_line_error(run_cli("contacts", "import", str(people)), "toolkit db upgrade")
    assert_one_line_error(
        run_cli("users", "create", "--email", "a@example.com", "--role", "admin", "--password-stdin",
                input=PASSWORD + "\n"),
        "toolkit db upgrade",
    )


def test_unmigrated_postgres_database_says_run_db_upgrade(postgres_url: str) -> None:
    assert_one_line_error(run_cli("audit", "verify"), "toolkit db upgrade")
    assert_one_line_error(run_cli("consent", "status", "Uabc", "--json"), "toolkit db upgrade")


def test_missing_postgres_database_is_not_called_unmigrated(monkeypatch: pytest.MonkeyPatch, postgres_url: str) -> None:
    monkeypatch.setenv("TOOLKIT_DATABASE_URL", postgres_url + "_does_not_exist")

    result = run_cli("audit", "verify")

    assert_one_line_error(result, "does not exist")
    assert "db upgrade" not in result.stderr


def test_refused_connection_is_one_line(monkeypatch: pytest.MonkeyPatch, database_env: None) -> None:
    monkeypatch.setenv("TOOLKIT_DATABASE_URL", "postgresql://postgres@127.0.0.1:1/toolkit")

    assert_one_line_error(run_cli("audit", "verify"), "database error")


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never answers (as a hung server would)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


@pytest.mark.slow
def test_unreachable_server_gives_up_within_seconds(
    monkeypatch: pytest.MonkeyPatch, silent_server: int, database_env: None
) -> None:
    monkeypatch.delenv("PGCONNECT_TIMEOUT", raising=False)
    monkeypatch.setenv("TOOLKIT_DATABASE_URL", f"postgresql://postgres@127.0.0.1:{silent_server}/toolkit")

    started = time.monotonic()
    result = run_cli("consent", "status", "Uabc", "--json")

    assert time.monotonic() - started < 10
    assert_one_line_error(result, "database error")


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"TOOLKIT_DATABASE_URL": "not a url"}, "TOOLKIT_DATABASE_URL: use a sqlite:/// or postgresql:// URL"),
        ({"TOOLKIT_DATABASE_URL": "nosuchdb://x/y"}, "TOOLKIT_DATABASE_URL: use a sqlite:/// or postgresql:// URL"),
        ({"TOOLKIT_ENV": "staging"}, "invalid settings: TOOLKIT_ENV"),
        ({"TOOLKIT_ENV": "production", "TOOLKIT_SECRET_KEY": "changeme"}, "TOOLKIT_SECRET_KEY is a known default"),
    ],
)
def test_bad_settings_are_one_line(
    env: dict[str, str], fragment: str, monkeypatch: pytest.MonkeyPatch, database_env: None
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    assert_one_line_error(run_cli("audit", "verify"), fragment)


def test_unknown_revision_is_one_line(sqlite_url: str) -> None:
    assert_one_line_error(run_cli("db", "upgrade", "nosuchrevision"), "nosuchrevision")


@pytest.mark.parametrize(("args", "fragment", "help_of"), [
    (("faq", "match"), "Missing option '--queries'", "toolkit faq match"),
    (("contacts", "list", "--bogus"), "No such option: --bogus", "toolkit contacts list"),
    (("line", "sandbox", "--port", "0"), "Invalid value for '--port'", "toolkit line sandbox"),
    (("nosuch",), "No such command 'nosuch'", "toolkit"),
])
def test_a_usage_error_is_one_line_naming_the_help(args: tuple[str, ...], fragment: str, help_of: str) -> None:
    result = run_cli(*args)

    assert_one_line_error(result, fragment, f"(see '{help_of} --help')")


def test_a_group_alone_still_shows_its_help() -> None:
    result = run_cli("contacts")

    assert result.exit_code == 2
    assert "Usage" in result.stdout + result.stderr and "import" in result.stdout + result.stderr
