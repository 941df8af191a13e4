"""Starting real `toolkit` processes for tests that need them (serve, worker, CLI)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.conftest import fresh_postgres_database
from toolkit.kit.serving import ServerThread  # noqa: F401 - tests import it from here
from toolkit.settings import REPO_ROOT

TOOLKIT = [sys.executable, "-m", "toolkit.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def toolkit_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOOLKIT_")}
    return {**env, "TOOLKIT_DATABASE_URL": database_url, "TOOLKIT_ENV": "test", **extra}


def run_toolkit(args: list[str], env: dict[str, str], *, input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(TOOLKIT + args, env=env, input=input, capture_output=True, text=True,
                          timeout=timeout, cwd=REPO_ROOT)


def fresh_database(kind: str, tmp_path: Path, name: str) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / (name + '.db')}"
    return fresh_postgres_database(name)


def wait_healthy(base_url: str, process: subprocess.Popen, timeout: float = 30, log: Path | None = None) -> None:
    """Wait for /healthz; on failure say why, with the server's log when there is one."""
    def output() -> str:
        return f":\n{log.read_text(errors='replace')}" if log is not None and log.exists() else ""

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early with {process.returncode}{output()}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{base_url} did not answer /healthz in {timeout} s{output()}")


@contextmanager
def running_server(env: dict[str, str], *extra_args: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """`toolkit serve` on a free loopback port; stopped with SIGTERM afterwards."""
    port = free_port()
    process = subprocess.Popen(TOOLKIT + ["serve", "--port", str(port), *extra_args], env=env, cwd=REPO_ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base_url, process)
        yield base_url, process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def children_of(pid: int) -> list[int]:
    """Child processes of `pid`, whichever of its threads started them (Linux lists them per
    thread: serve's supervisor thread starts a restarted worker)."""
    children = []
    for path in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            children += [int(p) for p in path.read_text().split()]
        except (FileNotFoundError, ProcessLookupError):  # a thread that just ended
            continue
    return sorted(children)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "zombie" in status.read_text())


