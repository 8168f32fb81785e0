"""SQL for message_batches (one row per submitted Message Batch) and batch-mode item claims."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from shared.models.generation import MessageBatch, MessageBatchStatus

COLUMNS = ", ".join(MessageBatch.model_fields)


async def insert(
    conn: asyncpg.Connection, *, owner_id: UUID, job_id: UUID, lease_id: UUID, indexes: list[int]
) -> MessageBatch:
    """A new round, written before the create call (status `submitting`)."""
    row = await conn.fetchrow(
        f"""INSERT INTO message_batches (owner_id, job_id, round, item_indexes, lease_id)
            VALUES ($1, $2, (SELECT coalesce(max(round), 0) + 1 FROM message_batches
                              WHERE job_id = $2), $3, $4)
            RETURNING {COLUMNS}""",
        owner_id,
        job_id,
        indexes,
        lease_id,
    )
    assert row is not None
    return MessageBatch.model_validate(dict(row))


async def for_job(conn: asyncpg.Connection, job_id: UUID) -> list[MessageBatch]:
    """Every round of a job, oldest first."""
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM message_batches WHERE job_id = $1 ORDER BY round", job_id
    )
    return [MessageBatch.model_validate(dict(row)) for row in rows]


async def update(conn: asyncpg.Connection, row_id: UUID, **fields: Any) -> None:
    """Set columns of one row (names come from this module's callers, never from input)."""
    allowed = {"provider_batch_id", "status", "request_counts", "landed", "polls", "error"}
    assert set(fields) <= allowed, set(fields) - allowed
    sets = [f"{name} = ${i}" for i, name in enumerate(fields, start=2)]
    status = fields.get("status")
    if status == MessageBatchStatus.IN_PROGRESS:
        sets.append("submitted_at = coalesce(submitted_at, now())")
    if status in (MessageBatchStatus.ENDED, MessageBatchStatus.FAILED):
        sets.append("ended_at = now()")
    values = [v.value if isinstance(v, MessageBatchStatus) else v for v in fields.values()]
    await conn.execute(
        f"UPDATE message_batches SET {', '.join(sets)} WHERE id = $1", row_id, *values
    )


async def take_items(
    conn: asyncpg.Connection,
    job_id: UUID,
    *,
    lease_id: UUID,
    limit: int,
    lease_seconds: float,
) -> list[int]:
    """Queued items (lowest index first) now running under the round's lease (batch locked)."""
    rows = await conn.fetch(
        """WITH batch AS (
               UPDATE batch_jobs
                  SET status = CASE WHEN status = 'queued' THEN 'running' ELSE status END,
                      started_at = coalesce(started_at, now()), heartbeat_at = now()
                WHERE id = $1)
           UPDATE generation_items SET status = 'running', lease_id = $2,
                  lease_until = now() + make_interval(secs => $4), parked = false,
                  started_at = coalesce(started_at, now())
            WHERE batch_id = $1 AND item_index IN (
                  SELECT item_index FROM generation_items
                   WHERE batch_id = $1 AND status = 'queued'
                   ORDER BY item_index LIMIT $3 FOR UPDATE)
            RETURNING item_index""",
        job_id,
        lease_id,
        limit,
        lease_seconds,
    )
    return sorted(row["item_index"] for row in rows)


async def queued_count(conn: asyncpg.Connection, job_id: UUID) -> int:
    """Items waiting for a round."""
    count: int = await conn.fetchval(
        "SELECT count(*) FROM generation_items WHERE batch_id = $1 AND status = 'queued'", job_id
    )
    return count


async def release_round(conn: asyncpg.Connection, job_id: UUID, lease_id: UUID) -> int:
    """Items still running under a round's lease go back to the queue; returns how many."""
    status: str = await conn.execute(
        """UPDATE generation_items SET status = 'queued', lease_id = NULL, lease_until = NULL,
                  reserved_cost_usd = 0
            WHERE batch_id = $1 AND lease_id = $2 AND status = 'running'""",
        job_id,
        lease_id,
    )
    return int(status.split()[-1])


async def heartbeat(conn: asyncpg.Connection, job_id: UUID) -> None:
    """The job is alive (the janitor leaves it alone)."""
    await conn.execute("UPDATE batch_jobs SET heartbeat_at = now() WHERE id = $1", job_id)


async def progress(conn: asyncpg.Connection, job_id: UUID) -> dict[str, int]:
    """Items ever sent in a batch, items waiting in an open one, open batches and rounds."""
    row = await conn.fetchrow(
        """SELECT (SELECT count(DISTINCT i) FROM message_batches, unnest(item_indexes) AS i
                    WHERE job_id = $1 AND provider_batch_id IS NOT NULL) AS submitted,
                  (SELECT count(*) FROM generation_items
                    WHERE batch_id = $1 AND status = 'running') AS in_batch,
                  (SELECT count(*) FROM message_batches
                    WHERE job_id = $1
                      AND status IN ('submitting', 'in_progress', 'canceling')) AS open_batches,
                  (SELECT count(*) FROM message_batches WHERE job_id = $1) AS rounds""",
        job_id,
    )
    assert row is not None
    return {name: int(row[name]) for name in ("submitted", "in_batch", "open_batches", "rounds")}
