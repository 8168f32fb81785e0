"""Every janitor replica refreshes the fleet-wide gauges once a minute (queue depth and age,
last successes, export failure ratio), so a scrape of any replica tells the same story."""

from __future__ import annotations

import asyncio
import time

from services.janitor import fleet
from services.janitor.metrics import (
    EXPORT_FAILURE_RATIO,
    EXPORTS_FINISHED,
    LAST_SUCCESS,
    QUEUE_DEPTH,
    QUEUE_OLDEST_AGE,
)
from shared.logging import get_logger
from shared.queue import SERVICES, ArqRedis, queue_depth, queue_name
from shared.settings import Settings

log = get_logger(__name__)


async def sample(redis: ArqRedis, settings: Settings, tasks: tuple[str, ...]) -> None:
    """Read Redis once and set the gauges."""
    now = time.time()
    for service in SERVICES:
        QUEUE_DEPTH.labels(service).set(await queue_depth(redis, settings, service))
        oldest = await redis.zrange(queue_name(settings, service), 0, 0, withscores=True)
        # arq scores a job with the time it is due (ms); a deferred job is not waiting yet.
        age = max(0.0, now - oldest[0][1] / 1000) if oldest else 0.0
        QUEUE_OLDEST_AGE.labels(service).set(age)
    started = await fleet.first_seen(redis, settings)
    successes = await fleet.last_successes(redis, settings)
    for task in tasks:
        LAST_SUCCESS.labels(task).set(successes.get(task, started))
    measured = await fleet.failure_ratio(redis, settings)
    if measured is not None:
        EXPORT_FAILURE_RATIO.set(measured["ratio"])
        EXPORTS_FINISHED.labels("completed").set(measured["succeeded"])
        EXPORTS_FINISHED.labels("failed").set(measured["failed"])


async def run_sampler(redis: ArqRedis, settings: Settings, tasks: tuple[str, ...]) -> None:
    """Sample forever; a failed sample is logged and retried next interval."""
    while True:
        try:
            await sample(redis, settings, tasks)
        except Exception as exc:
            log.warning("janitor.sample_failed", error=str(exc))
        await asyncio.sleep(settings.janitor_sample_interval_seconds)
