"""The generator's part of the work reconciler: items (generation and quality_check) and batch
runners whose arq job is missing or whose run died."""

from __future__ import annotations

import asyncpg

from shared.db.repositories import recovery as repo
from shared.db.repositories.recovery import OpenWork
from shared.queue import GENERATE_ITEM, QUALITY_CHECK, RUN_MESSAGE_BATCHES, job_id
from shared.recovery import Kind
from shared.runtime import WorkerResources


async def _open_items(conn: asyncpg.Connection, resources: WorkerResources) -> list[OpenWork]:
    return await repo.open_items(conn)


def _judged(work: OpenWork) -> bool:
    return work.job_type == "quality_check"


ITEMS = Kind(
    service="generator",
    function=lambda work: QUALITY_CHECK if _judged(work) else GENERATE_ITEM,
    job_id=lambda work: job_id("judge" if _judged(work) else "gen", work.id, work.item_index),
    args=lambda work: (str(work.id), work.item_index),
    list_open=_open_items,
    job_timeout=lambda settings: settings.generator_job_timeout_seconds,
)


async def _open_batch_runs(conn: asyncpg.Connection, resources: WorkerResources) -> list[OpenWork]:
    return await repo.open_batch_runs(conn)


# The API's job id for a batch-mode job's runner (services/api/generation/batch_jobs.py).
BATCH_RUNS = Kind(
    service="generator",
    function=RUN_MESSAGE_BATCHES,
    job_id=lambda work: job_id("genbatch", work.id),
    args=lambda work: (str(work.id),),
    list_open=_open_batch_runs,
    job_timeout=lambda settings: settings.generator_job_timeout_seconds,
    stale_mark_is_dead=False,
)
