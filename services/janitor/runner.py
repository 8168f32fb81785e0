"""The janitor's tasks by name, and the one way to run one: locked, counted, logged."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from services.janitor import fleet
from services.janitor.context import Counts, JanitorDeps, redis_key
from services.janitor.exports import expire_exports, export_failure_ratio, prune_audit_logs
from services.janitor.lock import RedisLock
from services.janitor.metrics import ITEMS, LAST_SUCCESS, RUN_DURATION, RUNS
from services.janitor.reconcile import reconcile
from services.janitor.recovery import recover_stuck_jobs
from services.janitor.retention import conversation_retention
from services.janitor.schedule import Schedule, parse_schedule
from services.janitor.stats import roll_up_stats
from services.janitor.uploads import abort_stale_uploads
from shared.logging import bound_context, get_logger
from shared.settings import Settings

log = get_logger(__name__)
TaskFunction = Callable[[JanitorDeps, Counts], Awaitable[None]]
Outcome = Literal["ok", "error", "skipped"]


@dataclass(frozen=True)
class Task:
    """A janitor task: what it runs and which setting holds its schedule."""

    name: str
    run: TaskFunction
    schedule_setting: str
    summary: str


TASKS: dict[str, Task] = {
    task.name: task
    for task in (
        Task("expire-exports", expire_exports, "janitor_expire_exports_schedule",
             "completed exports past expires_at: delete the file, mark expired"),
        Task("prune-audit-logs", prune_audit_logs, "janitor_prune_audit_logs_schedule",
             "old finished export logs: archive as gzip JSONL to storage, then delete"),
        Task("conversation-retention", conversation_retention,
             "janitor_conversation_retention_schedule",
             "expired and long-rejected conversations: delete (or archive)"),
        Task("reconcile", reconcile, "janitor_reconcile_schedule",
             "orphan objects past the grace period: delete; rows missing their object: flag"),
        Task("recover-stuck-jobs", recover_stuck_jobs, "janitor_recover_stuck_jobs_schedule",
             "quiet exports and generation batches: re-enqueue, or fail with a reason"),
        Task("export-failure-ratio", export_failure_ratio,
             "janitor_export_failure_ratio_schedule",
             "failed / finished exports over the window: gauge, warning when high"),
        Task("abort-stale-uploads", abort_stale_uploads,
             "janitor_abort_stale_uploads_schedule",
             "unfinished uploads of dead exporters (S3 multipart, local partial files): abort"),
        Task("roll-up-stats", roll_up_stats, "janitor_roll_up_stats_schedule",
             "pending conversation-stat deltas: fold into each tenant's summary"),
    )
}  # fmt: skip
TASK_NAMES: tuple[str, ...] = tuple(TASKS)


def schedule_of(settings: Settings, name: str) -> Schedule:
    """A task's schedule from its setting."""
    return parse_schedule(str(getattr(settings, TASKS[name].schedule_setting)))


@dataclass(frozen=True)
class Report:
    """What one run did."""

    task: str
    outcome: Outcome
    counts: dict[str, int]
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (the arq job result and the CLI's output)."""
        return {
            "task": self.task,
            "outcome": self.outcome,
            "counts": self.counts,
            "seconds": round(self.seconds, 3),
        }


async def run_task(deps: JanitorDeps, name: str) -> Report:
    """Run a task unless another replica is running it (then report "skipped")."""
    task = TASKS[name]
    settings = deps.settings
    key = redis_key(settings, "lock", name)
    lock = RedisLock(deps.redis, key, settings.janitor_lock_ttl_seconds)
    with bound_context(task=name):
        async with lock.held() as acquired:
            if not acquired:
                RUNS.labels(name, "skipped").inc()
                log.info("janitor.task.skipped", reason="another run holds the lock")
                return Report(name, "skipped", {}, 0.0)
            return await _run_locked(deps, task)


async def _run_locked(deps: JanitorDeps, task: Task) -> Report:
    counts = Counts()
    start = time.perf_counter()
    try:
        await task.run(deps, counts)
    except Exception:
        RUNS.labels(task.name, "error").inc()
        log.exception("janitor.task.failed", counts=counts.as_dict())
        raise
    finally:
        RUN_DURATION.labels(task.name).observe(time.perf_counter() - start)
    seconds = time.perf_counter() - start
    for action, amount in counts.as_dict().items():
        ITEMS.labels(task.name, action).inc(amount)
    RUNS.labels(task.name, "ok").inc()
    finished_at = await fleet.record_success(deps.redis, deps.settings, task.name)
    LAST_SUCCESS.labels(task.name).set(finished_at)
    log.info("janitor.task.finished", counts=counts.as_dict(), seconds=round(seconds, 3))
    return Report(task.name, "ok", counts.as_dict(), seconds)
