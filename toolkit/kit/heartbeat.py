"""Worker heartbeats: every running worker rewrites its row every few seconds, so that any
web process (any replica) sees in the database whether workers are alive. A worker that
stops beating (killed, hung, its host gone) turns stale; /healthz says "degraded" and
/metrics shows how long ago each worker beat."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, String, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from toolkit.db import Base, UtcDateTime
# Machine time, not the product's clock: liveness is judged across processes, and a clock
# moved for a demo in one of them must not make the others look dead.
from toolkit.kit.clock import real_utcnow

# A worker writes its row this often, on a thread of its own.
BEAT_S = 5.0
# Missing six beats in a row is not a slow database: the worker is gone or stuck.
STALE_AFTER = timedelta(seconds=30)
# A stale row is deleted by the live workers after this (a worker that stops cleanly deletes
# its own at once), so that a crashed worker that was replaced stops degrading the health.
FORGET_AFTER = timedelta(minutes=10)


class WorkerHeartbeat(Base):
    __tablename__ = "worker_heartbeat"

    # "<host>:<pid>": one row per worker process.
    worker_id: Mapped[str] = mapped_column(String(255), primary_key=True, info={"personal": None})
    host: Mapped[str] = mapped_column(String(255), info={"personal": None})
    pid: Mapped[int] = mapped_column(Integer)
    # "process" (`toolkit worker`, also as serve's child) or "embedded" (threads of serve).
    kind: Mapped[str] = mapped_column(String(16), info={"personal": None})
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_beat_at: Mapped[datetime] = mapped_column(UtcDateTime)


def worker_id(host: str, pid: int) -> str:
    return f"{host}:{pid}"[:255]


def beat(session: Session, *, host: str, pid: int, kind: str, started_at: datetime,
         now: datetime | None = None) -> None:
    """Write this worker's beat, and forget workers stale for longer than FORGET_AFTER."""
    now = now or real_utcnow()
    values = {"worker_id": worker_id(host, pid), "host": host[:255], "pid": pid, "kind": kind,
              "started_at": started_at, "last_beat_at": now}
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(WorkerHeartbeat).values(values)
    session.execute(statement.on_conflict_do_update(
        index_elements=["worker_id"], set_={"last_beat_at": now, "kind": kind, "started_at": started_at}))
    session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.last_beat_at < now - FORGET_AFTER))


def forget(session: Session, *, host: str, pid: int) -> None:
    """A worker that stopped (cleanly, or reaped by its supervisor) is not stale, it is gone."""
    session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.worker_id == worker_id(host, pid)))


@dataclass(frozen=True)
class WorkerBeat:
    worker_id: str
    kind: str
    age_s: float
    stale: bool


def workers(session: Session, *, now: datetime | None = None) -> list[WorkerBeat]:
    """Every worker that beat within FORGET_AFTER, the most recent first."""
    now = now or real_utcnow()
    rows = session.execute(
        select(WorkerHeartbeat.worker_id, WorkerHeartbeat.kind, WorkerHeartbeat.last_beat_at)
        .where(WorkerHeartbeat.last_beat_at >= now - FORGET_AFTER)
        .order_by(WorkerHeartbeat.last_beat_at.desc(), WorkerHeartbeat.worker_id)
    ).all()
    return [WorkerBeat(r.worker_id, r.kind, max((now - r.last_beat_at).total_seconds(), 0.0),
                       now - r.last_beat_at > STALE_AFTER) for r in rows]


def health(beats: list[WorkerBeat]) -> dict[str, Any]:
    """/healthz's body once the database answered: "ok", or "degraded" with the reason when
    a worker stopped beating. No worker at all is not degraded: a web-only replica, or
    workers not started yet, are normal; ops alert on `workers.alive` for that."""
    stale = [b.worker_id for b in beats if b.stale]
    report: dict[str, Any] = {
        "status": "degraded" if stale else "ok",
        "database": "ok",
        "workers": {
            "alive": sum(not b.stale for b in beats),
            "stale": len(stale),
            "last_beat_age_s": round(beats[0].age_s, 1) if beats else None,
        },
    }
    if stale:
        report["reason"] = (f"{len(stale)} worker(s) stopped beating over {int(STALE_AFTER.total_seconds())} s ago: "
                            + ", ".join(stale))
    return report
