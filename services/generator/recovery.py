"""The generator's part of the work reconciler: items whose arq job is missing or whose run died."""

from __future__ import annotations

import asyncpg

from shared.db.repositories import recovery as repo
from shared.db.repositories.recovery import OpenWork
from shared.queue import GENERATE_ITEM, job_id
from shared.recovery import Kind
from shared.runtime import WorkerResources


async def _open_items(conn: asyncpg.Connection, resources: WorkerResources) -> list[OpenWork]:
    return await repo.open_items(conn)


ITEMS = Kind(
    service="generator",
    function=GENERATE_ITEM,
    job_id=lambda work: job_id("gen", work.id, work.item_index),
    args=lambda work: (str(work.id), work.item_index),
    list_open=_open_items,
    job_timeout=lambda settings: settings.generator_job_timeout_seconds,
)
