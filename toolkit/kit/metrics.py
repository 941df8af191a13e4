"""Prometheus metrics shared across domains."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from toolkit.kit.heartbeat import WorkerBeat

HTTP_REQUESTS = Counter(
    "toolkit_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "toolkit_http_request_seconds", "HTTP request latency", ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
JOB_RUNS = Counter("toolkit_job_runs_total", "Worker job runs", ["job", "outcome"])

# Read from the heartbeat table at every scrape, so every replica shows every worker.
WORKER_HEARTBEAT_AGE = Gauge(
    "toolkit_worker_heartbeat_age_seconds", "Seconds since each worker's last heartbeat", ["worker", "kind"]
)
WORKERS = Gauge("toolkit_workers", "Workers by heartbeat state (stale: stopped beating)", ["state"])
WORKER_RESTARTS = Counter(
    "toolkit_worker_restarts_total", "Worker child processes restarted by `toolkit serve --with-worker`"
)


def observe_workers(beats: list[WorkerBeat]) -> None:
    WORKER_HEARTBEAT_AGE.clear()  # a forgotten worker leaves the scrape, not a frozen age
    for beat in beats:
        WORKER_HEARTBEAT_AGE.labels(beat.worker_id, beat.kind).set(round(beat.age_s, 3))
    WORKERS.labels("alive").set(sum(not b.stale for b in beats))
    WORKERS.labels("stale").set(sum(b.stale for b in beats))
