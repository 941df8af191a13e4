"""The worker: APScheduler (job store in our database) running every registered job.

Embedded (SQLite default): a background scheduler inside `toolkit serve`.
Standalone (`toolkit worker`, production): any number may run; exactly one schedules,
the one holding a PostgreSQL advisory lock. `toolkit serve --with-worker` supervises one
as its child: restarted with backoff when it dies.
Every worker writes a heartbeat row (toolkit.kit.heartbeat) that /healthz and /metrics read.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Connection, text

from toolkit import db, domains
from toolkit.consent import service as consent
from toolkit.kit import heartbeat
from toolkit.kit.background import JobSpec, WorkLoop
from toolkit.kit.clock import real_utcnow
from toolkit.kit.domains import Product
from toolkit.kit.metrics import JOB_RUNS, WORKER_RESTARTS
from toolkit.settings import get_settings

log = logging.getLogger(__name__)

# Arbitrary constant that names the "scheduler leader" advisory lock.
LEADER_LOCK_KEY = 0x7001_5C4E


def load_jobs() -> dict[str, JobSpec]:
    """Every domain's jobs, by name (the composition root's)."""
    return domains.assemble().jobs


def run_job(name: str) -> None:
    """Entry point APScheduler stores (by reference): look the job up and count the outcome."""
    spec = load_jobs()[name]
    try:
        spec.func()
    except Exception:
        JOB_RUNS.labels(name, "error").inc()
        log.exception("job %s failed", name)
        raise
    JOB_RUNS.labels(name, "ok").inc()


def build_scheduler() -> BackgroundScheduler:
    settings = get_settings()
    scheduler = BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=db.get_engine(), tablename="apscheduler_jobs")},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
        timezone=settings.timezone,
    )
    for spec in load_jobs().values():
        if spec.cron:
            trigger = CronTrigger.from_crontab(spec.cron, timezone=settings.timezone)
        elif spec.every_s:
            trigger = IntervalTrigger(seconds=spec.every_s)
        else:
            continue
        scheduler.add_job(
            "toolkit.worker:run_job", trigger=trigger, args=[spec.name], id=spec.name, name=spec.name,
            replace_existing=True,
        )
    return scheduler


def run_loop(loop: WorkLoop, stop: threading.Event) -> None:
    """Call the loop until stopped; rest `idle_s` (or until woken) when it found no work."""
    while not stop.is_set():
        try:
            done = loop.func()
        except Exception:  # noqa: BLE001 - a loop must survive a bad batch
            log.exception("work loop %s failed", loop.name)
            done = 0
        if not done:
            loop.wake.wait(loop.idle_s)
            loop.wake.clear()


class LoopThreads:
    """Every domain's work loops, each in its own daemon thread."""

    def __init__(self, product: Product | None = None) -> None:
        self.product = product
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []
        self.undo: list[Callable[[], None]] = []
        self.loops: list[WorkLoop] = []

    def start(self) -> None:
        product = self.product or domains.assemble()
        for setup in product.worker_setup:  # e.g. the inbox's event handlers, before any event is handled
            undo = setup(product)
            if undo is not None:
                self.undo.append(undo)
        self.loops = list(product.work_loops.values())
        for loop in self.loops:
            thread = threading.Thread(target=run_loop, args=(loop, self.stop_event), name=loop.name, daemon=True)
            thread.start()
            self.threads.append(thread)

    def stop(self, timeout_s: float = 3) -> None:
        self.stop_event.set()
        for loop in self.loops:
            loop.wake.set()
        for thread in self.threads:
            thread.join(timeout=timeout_s)
        while self.undo:
            self.undo.pop()()


class Heartbeat:
    """This worker's heartbeat row, rewritten every heartbeat.BEAT_S on a thread of its own
    while `alive()` holds (the work loops' threads run), deleted when it stops cleanly. A
    failed write is logged and tried at the next beat: the database may be away a while."""

    def __init__(self, kind: str, alive: Callable[[], bool]) -> None:
        self.kind, self.alive = kind, alive
        self.host, self.pid = socket.gethostname(), os.getpid()
        self.started_at = real_utcnow()
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="worker-heartbeat", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        while True:
            if self.alive():
                try:
                    with db.session_scope() as session:
                        heartbeat.beat(session, host=self.host, pid=self.pid, kind=self.kind,
                                       started_at=self.started_at)
                except Exception:  # noqa: BLE001 - the next beat tries again
                    log.warning("worker heartbeat not written", exc_info=True)
            if self.stop_event.wait(heartbeat.BEAT_S):
                return

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(timeout=heartbeat.BEAT_S)
        forget_worker(self.host, self.pid)


def forget_worker(host: str, pid: int) -> None:
    try:
        with db.session_scope() as session:
            heartbeat.forget(session, host=host, pid=pid)
    except Exception:  # noqa: BLE001 - it turns stale and is forgotten later instead
        log.warning("heartbeat of worker %s:%d not deleted", host, pid, exc_info=True)


def _loops_alive(loops: LoopThreads) -> Callable[[], bool]:
    return lambda: all(thread.is_alive() for thread in loops.threads)


class EmbeddedWorker:
    """The worker as threads of `toolkit serve` (embedded SQLite mode)."""

    def __init__(self) -> None:
        self.scheduler: BackgroundScheduler | None = None
        self.loops = LoopThreads()
        self.heartbeat = Heartbeat("embedded", _loops_alive(self.loops))

    def start(self) -> None:
        self.scheduler = build_scheduler()
        self.scheduler.start()
        self.loops.start()
        self.heartbeat.start()
        log.info("embedded worker started: %d jobs, %d loops", len(self.scheduler.get_jobs()),
                 len(self.loops.loops))

    def stop(self) -> None:
        self.heartbeat.stop()
        self.loops.stop()
        if self.scheduler and self.scheduler.running:
            self.scheduler.shutdown(wait=False)


class ChildWorker:
    """The worker as a child process of `toolkit serve` (PostgreSQL with --with-worker), at
    the lowest CPU priority so that it never starves the web process's acknowledgements:
    under a webhook burst the acknowledgements take the CPU and the backlog waits in the
    inbox; the worker drains it when the burst is over.

    A supervisor thread waits on the child: one that dies (killed, crashed) is reaped and
    started again after a backoff, 1 s doubling to RESTART_MAX_S while it keeps dying
    young, and its heartbeat row is deleted (a replaced worker is not a stale one). The
    child stays a `toolkit worker` process in serve's process group."""

    STOP_TIMEOUT_S = 4
    # nice 19: about 1.5% of a core against a busy nice-0 web process (CFS weights 15 vs
    # 1024), where nice 10 (weight 110) would still take about 10%.
    NICENESS = 19
    RESTART_MAX_S = 30.0
    # A child that ran this long died of something new: its restart waits 1 s again.
    HEALTHY_RUN_S = 60.0

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self.started_at = 0.0
        self.stopping = threading.Event()
        self.lock = threading.Lock()  # between a restart and stop()
        self.supervisor: threading.Thread | None = None

    @staticmethod
    def _prepare_child() -> None:
        os.nice(ChildWorker.NICENESS)
        # Linux: if `serve` dies without cleaning up (SIGKILL), the worker gets SIGTERM too.
        # (Strictly: when the thread that started it ends; the supervisor thread, which
        # starts restarted children, ends only when serve stops them itself.)
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)

    def _spawn(self) -> subprocess.Popen[bytes]:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "toolkit.cli", "worker"],
            preexec_fn=self._prepare_child if sys.platform == "linux" else None,  # noqa: PLW1509
        )
        self.started_at = time.monotonic()
        log.info("worker process %d started", self.process.pid)
        return self.process

    def start(self) -> None:
        self._spawn()
        self.supervisor = threading.Thread(target=self._supervise, name="worker-supervisor", daemon=True)
        self.supervisor.start()

    def restart_delay(self, young_deaths: int) -> float:
        return min(2.0 ** max(young_deaths - 1, 0), self.RESTART_MAX_S)

    def _supervise(self) -> None:
        young_deaths = 0
        while True:
            process = self.process
            assert process is not None
            code = process.wait()  # reaps it: no zombie
            if self.stopping.is_set():
                return
            ran_s = time.monotonic() - self.started_at
            young_deaths = 0 if ran_s >= self.HEALTHY_RUN_S else young_deaths + 1
            delay = self.restart_delay(max(young_deaths, 1))
            log.error("worker process %d exited with %s after %.0f s; starting another in %.0f s",
                      process.pid, code, ran_s, delay)
            forget_worker(socket.gethostname(), process.pid)
            if self.stopping.wait(delay):
                return
            with self.lock:
                if self.stopping.is_set():
                    return
                self._spawn()
                self.restarts += 1
                WORKER_RESTARTS.inc()

    def stop(self) -> None:
        with self.lock:
            self.stopping.set()
            process = self.process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=self.STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self.supervisor is not None:
            self.supervisor.join(timeout=self.STOP_TIMEOUT_S)


def _try_leadership(connection: Connection) -> bool:
    if connection.dialect.name != "postgresql":
        return True  # SQLite: one machine, one worker
    return bool(connection.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LEADER_LOCK_KEY}).scalar())


def run_forever(stop: threading.Event | None = None, *, poll_s: float | None = None) -> None:
    """`toolkit worker`: hold or wait for scheduler leadership until SIGTERM/SIGINT."""
    stop = stop or threading.Event()
    poll_s = poll_s or get_settings().worker_poll_s

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("worker got signal %d, stopping", signum)
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGINT, _on_signal)

    get_settings().apply_clock()
    with db.session_scope() as session:
        consent.sync_from_config(session, get_settings().config_dir)

    scheduler: BackgroundScheduler | None = None
    loops = LoopThreads()
    loops.start()  # every worker works; only the leader schedules
    beats = Heartbeat("process", _loops_alive(loops))
    beats.start()
    # The advisory lock lives as long as this connection: keep it open while leading.
    with db.get_engine().connect() as leader_connection:
        try:
            while not stop.is_set():
                if scheduler is None and _try_leadership(leader_connection):
                    leader_connection.commit()
                    scheduler = build_scheduler()
                    scheduler.start()
                    log.info("worker leads the scheduler")
                stop.wait(poll_s)
        finally:
            beats.stop()
            loops.stop()
            if scheduler is not None:
                scheduler.shutdown(wait=True)
    log.info("worker stopped")
