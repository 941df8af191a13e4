"""The worker: jobs registered by name, scheduled in our database, one leader on PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text
from sqlalchemy.orm import sessionmaker

from toolkit import db, migrate, worker
from toolkit.kit.metrics import JOB_RUNS


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


def test_run_forever_stops_when_asked(tmp_path, monkeypatch):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'loop.db'}")
    migrate.upgrade(engine)
    monkeypatch.setattr(db, "get_engine", lambda: engine)
    monkeypatch.setattr(db, "get_sessionmaker", lambda: sessionmaker(bind=engine))
    stop = threading.Event()
    thread = threading.Thread(target=worker.run_forever, args=(stop,), kwargs={"poll_s": 0.05})

    thread.start()
    stop.set()
    thread.join(timeout=10)

    assert not thread.is_alive()
    engine.dispose()
