"""Browser tests: Debian's chromium driven by Playwright against a real `toolkit serve`
on its own freshly seeded SQLite database (no test rollback reaches another process)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.conftest import IN_CI
from tests.processes import free_port, wait_healthy

CHROMIUM = Path("/usr/bin/chromium")
TOOLKIT = Path(sys.executable).with_name("toolkit")
START_TIMEOUT_S = 30
# Playwright's expect() waits 5 s by default: on a machine busy with other work a page
# update can take longer than that. A ceiling, not a wait: passing checks return at once.
expect.set_options(timeout=15_000)
STOP_TIMEOUT_S = 10
ADMIN_LINE = re.compile(r"Admin login[^:]*:\s+(\S+@\S+)\s+password[^:]*:\s+(\S+)")
ROLE_LINE = re.compile(r"^\s+([a-z_]+)\s+(\S+@\S+)\s+(\S+)\s*$", re.M)


@dataclass(frozen=True)
class LiveServer:
    url: str
    logins: dict[str, tuple[str, str]]  # role -> (e-mail, password)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing (apt-get install chromium fonts-noto-cjk)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return {
        **browser_type_launch_args,
        "executable_path": str(CHROMIUM),
        "args": ["--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync"],
    }


def _server_env(home: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("TOOLKIT_")}
    return env | {
        "TOOLKIT_ENV": "development",
        "TOOLKIT_DATABASE_URL": f"sqlite:///{home / 'e2e.db'}",
        "TOOLKIT_DATA_DIR": str(home / "data"),
        # No settings file of the developer's may leak into the test server.
        "TOOLKIT_CONFIG_FILE": str(home / "no-config.yaml"),
        # LINE is the mounted sandbox, as under `toolkit demo` (which sets this itself; the
        # test serves with `toolkit serve`, which does not): the chat simulator needs it.
        "TOOLKIT_LINE_SANDBOX": "1",
    }


def _parse_logins(banner: str) -> dict[str, tuple[str, str]]:
    admin = ADMIN_LINE.search(banner)
    assert admin, f"no admin login in the demo banner:\n{banner}"
    logins = {"admin": (admin.group(1), admin.group(2))}
    logins |= {role: (email, password) for role, email, password in ROLE_LINE.findall(banner)}
    return logins


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    home = tmp_path_factory.mktemp("e2e")
    env = _server_env(home)
    seeded = subprocess.run([str(TOOLKIT), "demo", "--seed-only"], env=env, cwd=home,
                            capture_output=True, text=True, timeout=120)
    assert seeded.returncode == 0, seeded.stderr
    port = free_port()
    log = home / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen([str(TOOLKIT), "serve", "--host", "127.0.0.1", "--port", str(port)],
                                   env=env, cwd=home, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process, START_TIMEOUT_S, log)
        yield LiveServer(url=url, logins=_parse_logins(seeded.stdout))
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def base_url(live_server: LiveServer) -> str:
    # pytest-playwright resolves page.goto("/...") against this.
    return live_server.url


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict) -> dict:
    # A Taiwanese staff member's browser: the UI must come up in zh-TW without a cookie.
    return {**browser_context_args, "locale": "zh-TW", "viewport": {"width": 1280, "height": 900}}
