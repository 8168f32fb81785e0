"""Batch-mode jobs seen from the API: start or nudge their runner, report their progress.

The API never calls Claude: it enqueues the generator's `run_message_batches` job (one per
generation job), which submits, polls, cancels and lands the Message Batches.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg

from services.api.generation.schemas import BatchProgress
from services.api.metrics import JOBS_ENQUEUED
from shared.db.repositories import message_batches as batches_repo
from shared.models.generation import BatchJob, JobMode
from shared.queue import RUN_MESSAGE_BATCHES, ArqRedis, enqueue, forget_job, job_id, wake
from shared.settings import Settings


def mode_of(batch: BatchJob) -> JobMode:
    """How the job runs (jobs from before batch mode ran live)."""
    return JobMode(batch.config.get("mode", JobMode.LIVE.value))


def runner_id(batch_id: UUID) -> str:
    """The batch runner's deterministic job id."""
    return job_id("genbatch", batch_id)


async def start(
    queue: ArqRedis, settings: Settings, batch_id: UUID, *, again: bool = False
) -> None:
    """Enqueue the job's batch runner (`again`: after it finished, e.g. retry-failed)."""
    if again:
        await forget_job(queue, runner_id(batch_id))
    await enqueue(
        queue, settings, "generator", RUN_MESSAGE_BATCHES, str(batch_id),
        job_id=runner_id(batch_id),
    )  # fmt: skip
    JOBS_ENQUEUED.labels("generator", RUN_MESSAGE_BATCHES).inc()


async def nudge(queue: ArqRedis, settings: Settings, batch_id: UUID) -> None:
    """Run the waiting runner now (a cancel should reach the open batches without a poll's wait)."""
    await wake(queue, settings, "generator", runner_id(batch_id))


async def progress(conn: asyncpg.Connection, batch: BatchJob) -> BatchProgress | None:
    """`submitted`, `in_batch`, `landed` of a batch-mode job (None for a live one)."""
    if mode_of(batch) != JobMode.BATCH:
        return None
    counts = await batches_repo.progress(conn, batch.id)
    return BatchProgress(landed=batch.completed_items, **counts)
