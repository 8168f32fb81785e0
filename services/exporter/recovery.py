"""The exporter's part of the work reconciler: exports with a missing job or a dead run."""

from __future__ import annotations

import asyncpg

from shared.db.repositories import recovery as repo
from shared.db.repositories.recovery import OpenWork
from shared.queue import RUN_EXPORT, job_id
from shared.recovery import Kind
from shared.runtime import WorkerResources


async def _open_exports(conn: asyncpg.Connection, resources: WorkerResources) -> list[OpenWork]:
    stale = resources.settings.recovery_export_stale_seconds
    return await repo.open_exports(conn, stale_seconds=stale)


EXPORTS = Kind(
    service="exporter",
    function=RUN_EXPORT,
    job_id=lambda work: job_id("export", work.id),
    args=lambda work: (str(work.id),),
    list_open=_open_exports,
    job_timeout=lambda settings: settings.export_job_timeout_seconds,
)
