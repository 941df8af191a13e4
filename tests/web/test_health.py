"""/healthz and /metrics report the database and the workers as they are: a database that
does not answer is a 503, a worker that stopped beating (a killed `toolkit worker`, any
replica's) makes the health "degraded" and shows in the metrics."""

from __future__ import annotations

import os
import socket
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from tests.helpers import api_client
from toolkit import db
from toolkit.kit import heartbeat
from toolkit.kit.clock import utcnow


@pytest.fixture
def client(session):
    return api_client(session, roles=None)


def beat(session, *, pid: int, ago: timedelta, host: str = "host-a") -> str:
    now = utcnow()
    heartbeat.beat(session, host=host, pid=pid, kind="process", started_at=now - ago - timedelta(hours=1),
                   now=now - ago)
    session.flush()
    return heartbeat.worker_id(host, pid)


def test_healthz_without_any_worker_is_ok_and_says_so(session, client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok",
                               "workers": {"alive": 0, "stale": 0, "last_beat_age_s": None}}


def test_healthz_counts_live_workers_and_the_age_of_the_last_beat(session, client):
    beat(session, pid=101, ago=timedelta(seconds=2))
    beat(session, pid=102, ago=timedelta(seconds=4), host="host-b")

    body = client.get("/healthz").json()

    assert body["status"] == "ok" and body["workers"]["alive"] == 2 and body["workers"]["stale"] == 0
    assert 2 <= body["workers"]["last_beat_age_s"] < 60


def test_a_worker_that_stopped_beating_makes_the_health_degraded_with_the_reason(session, client):
    beat(session, pid=101, ago=timedelta(seconds=1))
    gone = beat(session, pid=202, ago=heartbeat.STALE_AFTER + timedelta(seconds=5))

    response = client.get("/healthz")

    assert response.status_code == 200  # the web process still acknowledges webhooks
    body = response.json()
    assert body["status"] == "degraded" and body["database"] == "ok"
    assert body["workers"] == {"alive": 1, "stale": 1, "last_beat_age_s": pytest.approx(1, abs=30)}
    assert gone in body["reason"] and "stopped beating" in body["reason"]


def test_workers_long_gone_are_forgotten_by_the_next_beat(session, client):
    beat(session, pid=303, ago=heartbeat.FORGET_AFTER + timedelta(minutes=1))
    assert client.get("/healthz").json()["workers"]["stale"] == 0  # already past the window
    beat(session, pid=101, ago=timedelta(0))

    assert [b.worker_id for b in heartbeat.workers(session)] == [heartbeat.worker_id("host-a", 101)]
    rows = session.scalars(select(heartbeat.WorkerHeartbeat.worker_id)).all()
    assert rows == [heartbeat.worker_id("host-a", 101)]  # deleted, not only hidden


def test_a_worker_that_stops_cleanly_is_gone_not_stale(session, client):
    beat(session, pid=os.getpid(), ago=timedelta(0), host=socket.gethostname())

    heartbeat.forget(session, host=socket.gethostname(), pid=os.getpid())

    assert client.get("/healthz").json()["workers"] == {"alive": 0, "stale": 0, "last_beat_age_s": None}


def test_metrics_show_seconds_since_each_workers_last_beat(session, client):
    live = beat(session, pid=101, ago=timedelta(seconds=3))
    gone = beat(session, pid=202, ago=timedelta(minutes=2))

    text = client.get("/metrics").text

    ages = {line.split("worker=\"")[1].split("\"")[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines() if line.startswith("toolkit_worker_heartbeat_age_seconds{")}
    assert set(ages) == {live, gone}
    assert 3 <= ages[live] < 60 and ages[gone] >= 120
    assert 'toolkit_workers{state="stale"} 1.0' in text and 'toolkit_workers{state="alive"} 1.0' in text


def test_healthz_is_a_503_in_json_when_the_database_does_not_answer(session, client, monkeypatch):
    unreachable = db.make_engine("postgresql+psycopg://postgres@127.0.0.1:1/none", connect_args={"connect_timeout": 2})
    monkeypatch.setattr(db, "get_sessionmaker", lambda: sessionmaker(bind=unreachable))

    health = client.get("/healthz")
    metrics = client.get("/metrics")

    assert health.status_code == 503
    assert health.json()["status"] == "unavailable" and health.json()["database"] == "unreachable"
    assert metrics.status_code == 200  # the process's own metrics still scrape
    unreachable.dispose()
