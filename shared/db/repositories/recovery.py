"""SQL for the work reconciler: what PostgreSQL says should be running (one tenant at a time)."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import asyncpg


@dataclass(frozen=True)
class OpenWork:
    """A generation item or an export that is not finished; `lapsed`: its run stopped beating."""

    id: UUID
    item_index: int | None
    lapsed: bool
    job_type: str = "generation"


async def open_items(conn: asyncpg.Connection) -> list[OpenWork]:
    """Items of unfinished live jobs (generation and quality_check) that are queued, or running
    under a lease that lapsed.

    Items of a batch-mode job are the batch runner's (`open_batch_runs`): a live call for one
    would pay the full price for what a Message Batch is about to answer at half.
    """
    rows = await conn.fetch(
        """SELECT i.batch_id, i.item_index, i.status = 'running' AS lapsed, b.job_type
             FROM batch_jobs b JOIN generation_items i ON i.batch_id = b.id
            WHERE b.job_type IN ('generation', 'quality_check')
              AND b.status IN ('queued', 'running')
              AND coalesce(b.config ->> 'mode', 'live') = 'live'
              AND (i.status = 'queued' OR (i.status = 'running' AND i.lease_until < now()))
            ORDER BY i.batch_id, i.item_index"""
    )
    return [
        OpenWork(row["batch_id"], row["item_index"], row["lapsed"], row["job_type"]) for row in rows
    ]


async def open_batch_runs(conn: asyncpg.Connection) -> list[OpenWork]:
    """Unfinished batch-mode jobs: each needs its `run_message_batches` job queued or deferred."""
    rows = await conn.fetch(
        """SELECT id FROM batch_jobs
            WHERE job_type IN ('generation', 'quality_check') AND config ->> 'mode' = 'batch'
              AND status IN ('queued', 'running')
            ORDER BY id"""
    )
    return [OpenWork(row["id"], None, False) for row in rows]


async def open_exports(conn: asyncpg.Connection, *, stale_seconds: float) -> list[OpenWork]:
    """Queued exports, and processing ones with no heartbeat for `stale_seconds`."""
    rows = await conn.fetch(
        """SELECT id, status = 'processing' AS lapsed FROM export_logs
            WHERE status = 'queued'
               OR (status = 'processing' AND coalesce(heartbeat_at, started_at, created_at)
                                             < now() - make_interval(secs => $1))
            ORDER BY created_at""",
        stale_seconds,
    )
    return [OpenWork(row["id"], None, row["lapsed"]) for row in rows]
