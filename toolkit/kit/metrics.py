"""Prometheus metrics shared across domains."""

from prometheus_client import Counter, Histogram

HTTP_REQUESTS = Counter(
    "toolkit_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "toolkit_http_request_seconds", "HTTP request latency", ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
JOB_RUNS = Counter("toolkit_job_runs_total", "Worker job runs", ["job", "outcome"])
