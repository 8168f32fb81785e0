"""arq worker settings for the janitor (the only janitor module that imports arq)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from datetime import UTC, datetime
from typing import Any, cast

from arq import cron, run_worker
from arq.cron import CronJob, next_cron

from services.janitor import fleet, metrics, tasks
from services.janitor.metrics import SCHEDULE_PERIOD
from services.janitor.runner import TASK_NAMES, schedule_of
from services.janitor.sampler import run_sampler
from services.janitor.schedule import Schedule
from shared.logging import get_logger
from shared.queue import worker_settings
from shared.runtime import WorkerContext, start_worker, stop_worker
from shared.settings import Settings, get_settings

log = get_logger(__name__)
# The sampler task of this process (one worker per process).
_background: set[asyncio.Task[None]] = set()


async def on_startup(ctx: WorkerContext) -> None:
    """Build the typed context, publish the schedules, start sampling the fleet's gauges."""
    settings = get_settings()
    await start_worker(ctx, "janitor", settings.janitor_metrics_port)
    metrics.initialise(TASK_NAMES)
    redis = ctx["resources"].redis
    await fleet.first_seen(redis, settings)
    for name in TASK_NAMES:
        schedule = schedule_of(settings, name)
        if schedule.enabled:
            SCHEDULE_PERIOD.labels(name).set(schedule_period(schedule))
        log.info("janitor.schedule", task=name, schedule=schedule.expression)
    _background.add(asyncio.create_task(run_sampler(redis, settings, TASK_NAMES)))


async def on_shutdown(ctx: WorkerContext) -> None:
    """Stop sampling and close the context."""
    for task in list(_background):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        _background.discard(task)
    await stop_worker(ctx)


def schedule_period(schedule: Schedule, *, fires: int = 14) -> float:
    """The longest gap between consecutive runs over the next `fires` runs, in seconds."""
    times = [datetime.now(UTC)]
    for _ in range(fires):
        times.append(next_cron(times[-1], **schedule.fields))
    # The first gap starts at "now", not at a run: leave it out.
    gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(times[1:])]
    return max(gaps)


def cron_jobs(settings: Settings) -> list[CronJob]:
    """One unique arq cron per enabled task (plus the Redis lock inside run_task)."""
    jobs = []
    for name, function in tasks.TASK_FUNCTIONS.items():
        schedule = schedule_of(settings, name)
        if schedule.enabled:
            jobs.append(
                cron(
                    cast(Any, function),  # arq types ctx as a plain dict
                    name=name,
                    unique=True,
                    max_tries=1,
                    timeout=settings.janitor_task_timeout_seconds,
                    **schedule.fields,
                )
            )
    return jobs


def settings() -> dict[str, Any]:
    """The worker's arq settings: ping plus the tasks as cron jobs, evaluated in UTC."""
    current = get_settings()
    return {
        **worker_settings(
            current,
            "janitor",
            functions=[tasks.ping],
            on_startup=on_startup,
            on_shutdown=on_shutdown,
            cron_jobs=cron_jobs(current),
        ),
        "timezone": UTC,
    }


def main() -> None:
    """Run the worker until SIGINT/SIGTERM."""
    run_worker(settings())
