"""Running `toolkit` in tests: in-process with main()'s real exit codes, or as a real process.

CliRunner.invoke(app) would let ToolkitError escape as an exception; the product's
contract (one line on stderr, exit 2) lives in toolkit.cli.main, so run_cli calls that.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from tests.conftest import POSTGRES_URL
from tests.processes import TOOLKIT, run_toolkit, toolkit_env
from toolkit import cli
from toolkit.settings import REPO_ROOT

PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def stderr_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


def run_cli(*args: str, input: str | None = None) -> CliResult:
    """`toolkit ARGS` through toolkit.cli.main, in this process (so inside the test's
    transaction when the `session` fixture is active). Click 8.2+ keeps stderr apart."""
    # main() sets a default PGCONNECT_TIMEOUT; isolation(env=...) puts the old value back.
    keep_env = {"PGCONNECT_TIMEOUT": os.environ.get("PGCONNECT_TIMEOUT")}
    with CliRunner().isolation(input=input, env=keep_env) as (out, err, _mixed), \
            mock.patch.object(sys, "argv", ["toolkit", *args]):
        try:
            cli.main()
        except SystemExit as exc:
            code = _exit_code(exc.code)
        else:
            code = 0
        return CliResult(code, out.getvalue().decode(), err.getvalue().decode())


def start_process(*args: str, database_url: str) -> subprocess.Popen[str]:
    """`toolkit ARGS` as a real process against DATABASE_URL; see finish_process."""
    return subprocess.Popen([*TOOLKIT, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=toolkit_env(database_url), cwd=REPO_ROOT)


def finish_process(process: subprocess.Popen[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    stdout, stderr = process.communicate(timeout=timeout)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def run_process(*args: str, database_url: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return run_toolkit(list(args), toolkit_env(database_url), input=input)


def run_processes(*commands: tuple[str, ...], database_url: str) -> list[subprocess.CompletedProcess[str]]:
    """Several read-only `toolkit` commands side by side (a process start costs about a second)."""
    started = [start_process(*args, database_url=database_url) for args in commands]
    return [finish_process(process) for process in started]


def drop_postgres_database(url: str) -> None:
    name = make_url(url).database
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def write(path: Path, content: str) -> Path:
    path.write_text(content, encoding="utf-8")
    return path
