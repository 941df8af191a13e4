"""The worker: jobs registered by name, scheduled in our database, one leader on PostgreSQL."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from tests.processes import TOOLKIT, fresh_database, run_toolkit, toolkit_env
from toolkit import db, migrate, worker
from toolkit.kit import heartbeat
from toolkit.kit.clock import utcnow
from toolkit.kit.metrics import JOB_RUNS
from toolkit.settings import REPO_ROOT


def test_jobs_register_under_stable_names_with_their_schedule():
    jobs = worker.load_jobs()

    assert jobs["audit.verify_chain"].cron == "30 3 * * *"


def test_scheduler_persists_its_jobs_in_the_database(tmp_path, monkeypatch):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'worker.db'}")
    migrate.upgrade(engine)
    monkeypatch.setattr(db, "get_engine", lambda: engine)

    scheduler = worker.build_scheduler()
    scheduler.start(paused=True)
    try:
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT id FROM apscheduler_jobs")).scalars().all()
    finally:
        scheduler.shutdown(wait=False)
        engine.dispose()

    assert "audit.verify_chain" in stored


def test_running_a_job_counts_its_outcome(session):
    before = JOB_RUNS.labels("audit.verify_chain", "ok")._value.get()

    worker.run_job("audit.verify_chain")

    assert JOB_RUNS.labels("audit.verify_chain", "ok")._value.get() == before + 1


def test_only_one_worker_leads_on_postgresql(backend_engines):
    if "postgresql" not in backend_engines:
        pytest.skip("PostgreSQL is not available")
    engine = backend_engines["postgresql"]
    with engine.connect() as first, engine.connect() as second:
        assert worker._try_leadership(first) is True
        assert worker._try_leadership(second) is False
        first.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": worker.LEADER_LOCK_KEY})
        assert worker._try_leadership(second) is True
        second.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": worker.LEADER_LOCK_KEY})


@pytest.fixture
def worker_engine(tmp_path, monkeypatch):
    """A migrated SQLite database of its own, the one every session of the code under test uses."""
    engine = db.make_engine(f"sqlite:///{tmp_path / 'loop.db'}")
    migrate.upgrade(engine)
    monkeypatch.setattr(db, "get_engine", lambda: engine)
    monkeypatch.setattr(db, "get_sessionmaker", lambda: sessionmaker(bind=engine))
    yield engine
    engine.dispose()


def worker_thread(stop: threading.Event) -> threading.Thread:
    return threading.Thread(target=worker.run_forever, args=(stop,), kwargs={"poll_s": 0.05})


def test_run_forever_stops_when_asked(worker_engine):
    stop = threading.Event()
    thread = worker_thread(stop)

    thread.start()
    stop.set()
    thread.join(timeout=10)

    assert not thread.is_alive()


def heartbeat_rows(engine) -> list[tuple[str, int, str]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text("SELECT worker_id, pid, kind FROM worker_heartbeat"))]


def test_a_running_worker_beats_and_a_stopped_one_is_gone(worker_engine):
    engine = worker_engine
    stop = threading.Event()
    thread = worker_thread(stop)

    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not heartbeat_rows(engine) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert heartbeat_rows(engine) == [(heartbeat.worker_id(socket.gethostname(), os.getpid()), os.getpid(),
                                           "process")]
    finally:
        stop.set()
        thread.join(timeout=10)

    assert not thread.is_alive() and heartbeat_rows(engine) == []


@pytest.mark.slow
def test_a_killed_standalone_worker_is_visible_as_stale(tmp_path):
    url = fresh_database("sqlite", tmp_path, "standalone")
    env = toolkit_env(url)
    assert run_toolkit(["db", "upgrade"], env).returncode == 0
    engine = db.make_engine(url)
    process = subprocess.Popen([*TOOLKIT, "worker"], env=env, cwd=REPO_ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not heartbeat_rows(engine) and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.1)
        assert [pid for _id, pid, _kind in heartbeat_rows(engine)] == [process.pid]
    finally:
        process.kill()
        process.wait()

    with Session(engine) as session:  # killed: nobody deleted its row, so it turns stale
        (beat,) = heartbeat.workers(session)
        later = heartbeat.workers(session, now=utcnow() + heartbeat.STALE_AFTER + timedelta(seconds=1))
    assert beat.worker_id.endswith(f":{process.pid}")
    assert heartbeat.health(later)["status"] == "degraded" and beat.worker_id in heartbeat.health(later)["reason"]
    engine.dispose()
