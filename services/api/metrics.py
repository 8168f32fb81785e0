"""API metrics (DESIGN.md §9)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "convoforge_api_requests_total",
    "HTTP requests answered, by route template and status.",
    ["method", "route", "status"],
)
REQUEST_DURATION = Histogram(
    "convoforge_api_request_duration_seconds",
    "HTTP request latency by route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
JOBS_ENQUEUED = Counter(
    "convoforge_api_jobs_enqueued_total",
    "Jobs the API put on a queue, by service and job function.",
    ["service", "function"],
)
PROCESSES = Gauge(
    "convoforge_api_processes",
    "API worker processes serving right now (summed over live uvicorn workers).",
    multiprocess_mode="livesum",
)
