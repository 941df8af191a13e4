"""The worker: APScheduler (job store in our database) running every registered job.

Embedded (SQLite default): a background scheduler inside `toolkit serve`.
Standalone (`toolkit worker`, production): any number may run; exactly one schedules,
the one holding a PostgreSQL advisory lock.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from types import FrameType

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Connection, text

from toolkit import db, domains
from toolkit.consent import service as consent
from toolkit.kit.domains import Product
from toolkit.kit.background import JobSpec, WorkLoop
from toolkit.kit.metrics import JOB_RUNS
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


class EmbeddedWorker:
    """The worker as threads of `toolkit serve` (embedded SQLite mode)."""

    def __init__(self) -> None:
        self.scheduler: BackgroundScheduler | None = None
        self.loops = LoopThreads()

    def start(self) -> None:
        self.scheduler = build_scheduler()
        self.scheduler.start()
        self.loops.start()
        log.info("embedded worker started: %d jobs, %d loops", len(self.scheduler.get_jobs()),
                 len(self.loops.loops))

    def stop(self) -> None:
        self.loops.stop()
        if self.scheduler and self.scheduler.running:
            self.scheduler.shutdown(wait=False)


class ChildWorker:
    """The worker as a child process of `toolkit serve` (PostgreSQL with --with-worker), at
    the lowest CPU priority so that it never starves the web process's acknowledgements:
    under a webhook burst the acknowledgements take the CPU and the backlog waits in the
    inbox; the worker drains it when the burst is over."""

    STOP_TIMEOUT_S = 4
    # nice 19: about 1.5% of a core against a busy nice-0 web process (CFS weights 15 vs
    # 1024), where nice 10 (weight 110) would still take about 10%.
    NICENESS = 19

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def _prepare_child() -> None:
        os.nice(ChildWorker.NICENESS)
        # Linux: if `serve` dies without cleaning up (SIGKILL), the worker gets SIGTERM too.
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "toolkit.cli", "worker"],
            preexec_fn=self._prepare_child if sys.platform == "linux" else None,  # noqa: PLW1509
        )
        log.info("worker process %d started", self.process.pid)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=self.STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


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
            loops.stop()
            if scheduler is not None:
                scheduler.shutdown(wait=True)
    log.info("worker stopped")
