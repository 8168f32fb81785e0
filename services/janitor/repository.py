"""The janitor's SQL. Every function runs inside the owner's tenant transaction (RLS applies)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from pydantic import BaseModel

# Export statuses after which a row is history only (prune-audit-logs may archive and drop it).
FINISHED_EXPORT_STATUSES = ("expired", "failed", "cancelled")


class ExportFile(BaseModel):
    """A completed export past its expiry, keyset-ordered by (expires_at, id)."""

    id: UUID
    object_key: str | None
    expires_at: datetime


class StoredObject(BaseModel):
    """A row and the object key it points at."""

    id: UUID
    object_key: str


class StuckExport(BaseModel):
    """An export queued or processing whose heartbeat went quiet."""

    id: UUID
    status: str
    recovery_count: int
    last_seen: datetime


class StuckBatch(BaseModel):
    """A generation batch queued or running whose heartbeat went quiet."""

    id: UUID
    status: str
    recovery_count: int
    last_seen: datetime
    mode: str = "live"


class PendingItem(BaseModel):
    """A generation item that has not reached a final state."""

    item_index: int
    status: str


# --- expire-exports ---------------------------------------------------------------------------


async def exports_past_expiry(
    conn: asyncpg.Connection, *, after: tuple[datetime, UUID] | None, limit: int
) -> list[ExportFile]:
    """Completed exports whose file should be gone, after a keyset cursor."""
    rows = await conn.fetch(
        """SELECT id, object_key, expires_at FROM export_logs
            WHERE status = 'completed' AND expires_at <= now()
              AND ($1::timestamptz IS NULL OR (expires_at, id) > ($1, $2::uuid))
            ORDER BY expires_at, id LIMIT $3""",
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    return [ExportFile.model_validate(dict(row)) for row in rows]


async def mark_export_expired(conn: asyncpg.Connection, export_id: UUID) -> bool:
    """completed → expired; False when another run (or a user) changed it first."""
    done = await conn.fetchval(
        "UPDATE export_logs SET status = 'expired' WHERE id = $1 AND status = 'completed' "
        "RETURNING id",
        export_id,
    )
    return done is not None


# --- prune-audit-logs -------------------------------------------------------------------------


async def prunable_export_logs(
    conn: asyncpg.Connection, *, before: datetime, limit: int
) -> list[dict[str, Any]]:
    """Finished export log rows created before `before`, oldest first, as plain dicts."""
    rows = await conn.fetch(
        """SELECT * FROM export_logs
            WHERE created_at < $1 AND status = ANY($2::text[])
            ORDER BY created_at, id LIMIT $3""",
        before,
        list(FINISHED_EXPORT_STATUSES),
        limit,
    )
    return [dict(row) for row in rows]


async def delete_export_logs(conn: asyncpg.Connection, ids: list[UUID]) -> int:
    """Delete archived rows (still finished: a row that changed since is kept)."""
    deleted = await conn.fetch(
        "DELETE FROM export_logs WHERE id = ANY($1::uuid[]) AND status = ANY($2::text[]) "
        "RETURNING id",
        ids,
        list(FINISHED_EXPORT_STATUSES),
    )
    return len(deleted)


# --- conversation-retention -------------------------------------------------------------------


async def retention_candidates(
    conn: asyncpg.Connection,
    *,
    rejected_before: datetime,
    archive_mode: bool,
    after: UUID | None,
    limit: int,
) -> list[UUID]:
    """Conversations past expires_at, and rejected ones reviewed before `rejected_before`."""
    rows = await conn.fetch(
        """SELECT id FROM conversations
            WHERE (expires_at <= now()
                   OR (status = 'rejected' AND coalesce(reviewed_at, updated_at) < $1))
              AND NOT ($2 AND (status = 'archived' OR deleted_at IS NOT NULL))
              AND ($3::uuid IS NULL OR id > $3)
            ORDER BY id LIMIT $4""",
        rejected_before,
        archive_mode,
        after,
        limit,
    )
    return [row["id"] for row in rows]


async def archive_conversation(conn: asyncpg.Connection, conversation_id: UUID) -> str | None:
    """Set status archived and clear expires_at; returns the previous status (None if gone)."""
    previous: str | None = await conn.fetchval(
        """WITH old AS (SELECT id, status FROM conversations WHERE id = $1 FOR UPDATE)
           UPDATE conversations c SET status = 'archived', expires_at = NULL
             FROM old WHERE c.id = old.id RETURNING old.status""",
        conversation_id,
    )
    return previous


# --- reconcile --------------------------------------------------------------------------------


async def existing_conversation_ids(conn: asyncpg.Connection, ids: list[UUID]) -> set[UUID]:
    """Which of `ids` have a row (soft-deleted rows count: their object is still theirs)."""
    rows = await conn.fetch("SELECT id FROM conversations WHERE id = ANY($1::uuid[])", ids)
    return {row["id"] for row in rows}


async def conversation_objects(
    conn: asyncpg.Connection, *, created_before: datetime, after: UUID | None, limit: int
) -> list[StoredObject]:
    """Rows not yet flagged as missing their object, keyset by id."""
    rows = await conn.fetch(
        """SELECT id, object_key FROM conversations
            WHERE created_at < $1 AND ($2::uuid IS NULL OR id > $2)
              AND coalesce(flag_reason, '') NOT LIKE '%object_missing%'
            ORDER BY id LIMIT $3""",
        created_before,
        after,
        limit,
    )
    return [StoredObject.model_validate(dict(row)) for row in rows]


async def flag_missing_objects(conn: asyncpg.Connection, ids: list[UUID]) -> int:
    """Flag rows whose object is gone, keeping any earlier flag reason."""
    rows = await conn.fetch(
        """UPDATE conversations
              SET is_flagged = true,
                  flag_reason = coalesce(flag_reason || '; ', '')
                                || 'object_missing: the stored document is gone'
            WHERE id = ANY($1::uuid[])
              AND coalesce(flag_reason, '') NOT LIKE '%object_missing%'
        RETURNING id""",
        ids,
    )
    return len(rows)


async def existing_export_keys(conn: asyncpg.Connection, keys: list[str]) -> set[str]:
    """Which of `keys` belong to an export that is running or completed (still wants its file)."""
    rows = await conn.fetch(
        "SELECT object_key FROM export_logs WHERE object_key = ANY($1::text[]) "
        "AND status IN ('queued', 'processing', 'completed')",
        keys,
    )
    return {row["object_key"] for row in rows}


async def completed_export_objects(
    conn: asyncpg.Connection, *, completed_before: datetime
) -> list[StoredObject]:
    """Exports completed before `completed_before` that still promise a file, with its key."""
    rows = await conn.fetch(
        """SELECT id, object_key FROM export_logs
            WHERE status = 'completed' AND object_key IS NOT NULL
              AND coalesce(completed_at, updated_at) < $1
              AND (expires_at IS NULL OR expires_at > now())""",
        completed_before,
    )
    return [StoredObject.model_validate(dict(row)) for row in rows]


async def fail_exports_missing_file(conn: asyncpg.Connection, ids: list[UUID]) -> int:
    """A completed export whose file vanished can never be downloaded: fail it with a reason."""
    rows = await conn.fetch(
        """UPDATE export_logs
              SET status = 'failed',
                  error = 'object_missing: the export file is gone from storage (reconcile)'
            WHERE id = ANY($1::uuid[]) AND status = 'completed' RETURNING id""",
        ids,
    )
    return len(rows)


# --- recover-stuck-jobs -----------------------------------------------------------------------


async def stuck_exports(conn: asyncpg.Connection, *, quiet_since: datetime) -> list[StuckExport]:
    """Exports queued/processing with no sign of life since `quiet_since`, locked for update."""
    rows = await conn.fetch(
        """SELECT id, status, recovery_count,
                  coalesce(heartbeat_at, started_at, created_at) AS last_seen
             FROM export_logs
            WHERE status IN ('queued', 'processing')
              AND coalesce(heartbeat_at, started_at, created_at) < $1
            ORDER BY id FOR UPDATE SKIP LOCKED""",
        quiet_since,
    )
    return [StuckExport.model_validate(dict(row)) for row in rows]


async def note_export_recovery(conn: asyncpg.Connection, export_id: UUID) -> None:
    """Count a recovery and restart the heartbeat clock."""
    await conn.execute(
        "UPDATE export_logs SET recovery_count = recovery_count + 1, heartbeat_at = now() "
        "WHERE id = $1",
        export_id,
    )


async def fail_export(conn: asyncpg.Connection, export_id: UUID, reason: str) -> None:
    """Give up on a stuck export."""
    await conn.execute(
        """UPDATE export_logs SET status = 'failed', error = $2, completed_at = now()
            WHERE id = $1 AND status IN ('queued', 'processing')""",
        export_id,
        reason,
    )


async def stuck_batches(conn: asyncpg.Connection, *, quiet_since: datetime) -> list[StuckBatch]:
    """Generation batches queued/running with no sign of life since `quiet_since`, locked."""
    rows = await conn.fetch(
        """SELECT id, status, recovery_count, coalesce(config ->> 'mode', 'live') AS mode,
                  coalesce(heartbeat_at, started_at, created_at) AS last_seen
             FROM batch_jobs
            WHERE job_type = 'generation' AND status IN ('queued', 'running')
              AND coalesce(heartbeat_at, started_at, created_at) < $1
            ORDER BY id FOR UPDATE SKIP LOCKED""",
        quiet_since,
    )
    return [StuckBatch.model_validate(dict(row)) for row in rows]


async def pending_items(conn: asyncpg.Connection, batch_id: UUID) -> list[PendingItem]:
    """A batch's items still queued or running."""
    rows = await conn.fetch(
        """SELECT item_index, status FROM generation_items
            WHERE batch_id = $1 AND status IN ('queued', 'running') ORDER BY item_index""",
        batch_id,
    )
    return [PendingItem.model_validate(dict(row)) for row in rows]


async def note_batch_recovery(conn: asyncpg.Connection, batch_id: UUID) -> None:
    """Count a recovery and restart the heartbeat clock."""
    await conn.execute(
        "UPDATE batch_jobs SET recovery_count = recovery_count + 1, heartbeat_at = now() "
        "WHERE id = $1",
        batch_id,
    )


async def fail_batch(conn: asyncpg.Connection, batch_id: UUID, reason: str) -> int:
    """Give up on a stuck batch: its unfinished items and the batch fail with `reason`."""
    failed = await conn.fetch(
        """UPDATE generation_items
              SET status = 'failed', error_code = 'stuck', error = $2, finished_at = now()
            WHERE batch_id = $1 AND status IN ('queued', 'running') RETURNING id""",
        batch_id,
        reason,
    )
    await conn.execute(
        """UPDATE batch_jobs
              SET status = 'failed', error = $2, stop_reason = 'stuck', completed_at = now(),
                  failed_items = failed_items + $3
            WHERE id = $1""",
        batch_id,
        reason,
        len(failed),
    )
    return len(failed)


async def finish_batch(conn: asyncpg.Connection, batch_id: UUID, reason: str) -> str:
    """Close a quiet batch with nothing pending: completed if any item landed, else failed."""
    status: str = await conn.fetchval(
        """UPDATE batch_jobs b
              SET status = CASE WHEN EXISTS (SELECT 1 FROM generation_items i
                                              WHERE i.batch_id = b.id AND i.status = 'completed')
                                THEN 'completed' ELSE 'failed' END,
                  error = coalesce(error, $2), completed_at = now(), progress_percent = 100
            WHERE id = $1 RETURNING status""",
        batch_id,
        reason,
    )
    return status


# --- export-failure-ratio ---------------------------------------------------------------------


async def finished_export_counts(conn: asyncpg.Connection, *, since: datetime) -> tuple[int, int]:
    """(succeeded, failed) exports that finished since `since`."""
    row = await conn.fetchrow(
        """SELECT count(*) FILTER (WHERE status IN ('completed', 'expired')) AS succeeded,
                  count(*) FILTER (WHERE status = 'failed') AS failed
             FROM export_logs
            WHERE status IN ('completed', 'failed', 'expired')
              AND coalesce(completed_at, updated_at) >= $1""",
        since,
    )
    assert row is not None
    return int(row["succeeded"]), int(row["failed"])


async def database_now(conn: asyncpg.Connection) -> datetime:
    """The database's clock: row timestamps are compared against it, not the janitor's."""
    now: datetime = await conn.fetchval("SELECT now()")
    return now
