"""Janitor and queue metrics (DESIGN.md §9); the alert rules in deploy/prometheus read these."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram

RUNS = Counter(
    "convoforge_janitor_runs_total",
    "Janitor task runs by task and outcome (ok, error, skipped: another replica held the lock).",
    ["task", "outcome"],
)
ITEMS = Counter(
    "convoforge_janitor_items_total",
    "What janitor tasks did, by task and action (expired, deleted, flagged, requeued, failed…).",
    ["task", "action"],
)
RUN_DURATION = Histogram(
    "convoforge_janitor_run_duration_seconds",
    "Time a janitor task ran, by task.",
    ["task"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)
LAST_SUCCESS = Gauge(
    "convoforge_janitor_last_success_timestamp_seconds",
    "Unix time a task last finished anywhere in the fleet (the fleet's first start if never).",
    ["task"],
)
SCHEDULE_PERIOD = Gauge(
    "convoforge_janitor_schedule_period_seconds",
    "Longest gap between two scheduled runs of a task (absent when the schedule is off).",
    ["task"],
)
EXPORT_FAILURE_RATIO = Gauge(
    "convoforge_janitor_export_failure_ratio",
    "Failed / finished exports over the last JANITOR_EXPORT_FAILURE_WINDOW_SECONDS.",
)
EXPORTS_FINISHED = Gauge(
    "convoforge_janitor_exports_finished",
    "Exports that finished over the failure-ratio window, by status (completed, failed).",
    ["status"],
)
QUEUE_DEPTH = Gauge(
    "convoforge_queue_depth",
    "Jobs waiting in a service's queue (sampled by every janitor replica).",
    ["queue"],
)
QUEUE_OLDEST_AGE = Gauge(
    "convoforge_queue_oldest_job_age_seconds",
    "How long the oldest due job of a queue has waited (0 when none is due).",
    ["queue"],
)


def initialise(tasks: Iterable[str]) -> None:
    """Create every known label set at 0, so rates and alerts work from the first scrape."""
    for task in tasks:
        for outcome in ("ok", "error", "skipped"):
            RUNS.labels(task, outcome)
        RUN_DURATION.labels(task)
