"""SQL for export_logs: the audit row of every export, its run ownership and its outcome."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from shared.models.export import ExportConfig, ExportLog, ExportStatus

# Every column but exported_ids (up to 16 bytes per exported conversation: never listed).
EXPORT_COLUMNS = (
    "id, owner_id, format, scope, config, filters, selected_ids, status, "
    "progress_percent::float8 AS progress_percent, conversation_count, turn_count, "
    "render_failure_count, render_failures, partial, warnings, split_counts, object_key, "
    "file_name, byte_size, sha256, compressed, "
    "error, quality_stats, tier_distribution, attempts, run_id, heartbeat_at, started_at, "
    "completed_at, expires_at, counts_applied_at, download_count, last_downloaded_at, created_by, "
    "created_at, updated_at"
)
_ACTIVE = [ExportStatus.QUEUED.value, ExportStatus.PROCESSING.value]


def _export(row: asyncpg.Record) -> ExportLog:
    return ExportLog.model_validate(dict(row))


async def owner_of(conn: asyncpg.Connection, export_id: UUID) -> UUID | None:
    """The tenant an export belongs to (export_owners is not a tenant table; ids only)."""
    owner: UUID | None = await conn.fetchval(
        "SELECT owner_id FROM export_owners WHERE export_id = $1", export_id
    )
    return owner


async def insert(
    conn: asyncpg.Connection,
    *,
    owner_id: UUID,
    created_by: UUID,
    config: ExportConfig,
    filters: dict[str, Any],
    selected_ids: list[UUID],
    error: str | None = None,
) -> ExportLog:
    """The audit row, queued, or already failed when `error` says why it cannot run."""
    status = ExportStatus.QUEUED if error is None else ExportStatus.FAILED
    row = await conn.fetchrow(
        f"""INSERT INTO export_logs (owner_id, created_by, format, scope, config, filters,
                   selected_ids, compressed, status, error, completed_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,
                    CASE WHEN $9 = 'failed' THEN now() END)
         RETURNING {EXPORT_COLUMNS}""",
        owner_id,
        created_by,
        config.format.value,
        config.scope.value,
        config.model_dump(mode="json", exclude={"scope"}),
        filters,
        selected_ids,
        config.compress,
        status.value,
        error,
    )
    assert row is not None
    return _export(row)


async def get(conn: asyncpg.Connection, export_id: UUID) -> ExportLog | None:
    """One export visible to the current tenant."""
    row = await conn.fetchrow(f"SELECT {EXPORT_COLUMNS} FROM export_logs WHERE id = $1", export_id)
    return _export(row) if row else None


@dataclass(frozen=True)
class HistoryFilters:
    """Filters of the export history (all optional, combined with AND)."""

    formats: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    created_from: datetime | None = None
    created_to: datetime | None = None


def _history_where(filters: HistoryFilters) -> tuple[list[str], list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []

    def add(template: str, value: Any) -> None:
        args.append(value)
        clauses.append(template.format(f"${len(args)}"))

    if filters.formats:
        add("format = ANY({}::text[])", filters.formats)
    if filters.statuses:
        add("status = ANY({}::text[])", filters.statuses)
    if filters.created_from is not None:
        add("created_at >= {}", filters.created_from)
    if filters.created_to is not None:
        add("created_at <= {}", filters.created_to)
    return clauses or ["true"], args


async def history_page(
    conn: asyncpg.Connection,
    filters: HistoryFilters,
    *,
    before: tuple[datetime, UUID] | None,
    limit: int,
) -> list[ExportLog]:
    """Newest first, up to `limit` rows strictly after the keyset `before`."""
    clauses, args = _history_where(filters)
    if before is not None:
        args += [before[0], before[1]]
        clauses.append(f"(created_at, id) < (${len(args) - 1}::timestamptz, ${len(args)}::uuid)")
    args.append(limit)
    rows = await conn.fetch(
        f"SELECT {EXPORT_COLUMNS} FROM export_logs WHERE {' AND '.join(clauses)} "
        f"ORDER BY created_at DESC, id DESC LIMIT ${len(args)}",
        *args,
    )
    return [_export(row) for row in rows]


async def history_count(conn: asyncpg.Connection, filters: HistoryFilters) -> int:
    """How many exports match the history filters."""
    clauses, args = _history_where(filters)
    total: int = await conn.fetchval(
        f"SELECT count(*) FROM export_logs WHERE {' AND '.join(clauses)}", *args
    )
    return total


async def cancel(conn: asyncpg.Connection, export_id: UUID) -> ExportLog | None:
    """queued/processing → cancelled; None when the export is not active (or not visible)."""
    row = await conn.fetchrow(
        f"""UPDATE export_logs
               SET status = 'cancelled', completed_at = now(), error = 'cancelled on request'
             WHERE id = $1 AND status = ANY($2::text[])
         RETURNING {EXPORT_COLUMNS}""",
        export_id,
        _ACTIVE,
    )
    return _export(row) if row else None


async def fail_queued(conn: asyncpg.Connection, export_id: UUID, error: str) -> None:
    """queued → failed before any worker saw it (e.g. it could not be enqueued)."""
    await conn.execute(
        """UPDATE export_logs SET status = 'failed', error = $2, completed_at = now()
            WHERE id = $1 AND status = 'queued'""",
        export_id,
        error[:2000],
    )


async def record_download(conn: asyncpg.Connection, export_id: UUID) -> None:
    """Count a download."""
    await conn.execute(
        "UPDATE export_logs SET download_count = download_count + 1, last_downloaded_at = now() "
        "WHERE id = $1",
        export_id,
    )


# --- the worker's side: one run owns the row at a time ----------------------------------------


async def claim(
    conn: asyncpg.Connection, export_id: UUID, run_id: UUID, object_key: str
) -> ExportLog | None:
    """Take the export over for this run (a re-run supersedes a dead one); None if finished."""
    row = await conn.fetchrow(
        f"""UPDATE export_logs
               SET status = 'processing', run_id = $2, object_key = $3, attempts = attempts + 1,
                   started_at = now(), heartbeat_at = now(), progress_percent = 0, error = NULL
             WHERE id = $1 AND status = ANY($4::text[])
         RETURNING {EXPORT_COLUMNS}""",
        export_id,
        run_id,
        object_key,
        _ACTIVE,
    )
    return _export(row) if row else None


async def heartbeat(
    conn: asyncpg.Connection, export_id: UUID, run_id: UUID, progress_percent: float
) -> bool:
    """Record progress; False when this run no longer owns the export (cancelled, superseded)."""
    done = await conn.fetchval(
        """UPDATE export_logs SET heartbeat_at = now(), progress_percent = $3
            WHERE id = $1 AND run_id = $2 AND status = 'processing' RETURNING true""",
        export_id,
        run_id,
        round(min(max(progress_percent, 0.0), 99.99), 2),
    )
    return bool(done)


@dataclass(frozen=True)
class Outcome:
    """What a finished run writes on its row."""

    file_name: str
    byte_size: int
    sha256: str
    conversation_count: int
    turn_count: int
    quality_stats: dict[str, Any]
    tier_distribution: dict[str, int]
    render_failures: list[dict[str, Any]]
    render_failure_count: int
    exported_ids: bytes  # 16 bytes per conversation, in file order
    warnings: list[str] = field(default_factory=list)
    split_counts: dict[str, int] | None = None


async def complete(
    conn: asyncpg.Connection,
    export_id: UUID,
    run_id: UUID,
    outcome: Outcome,
    retention_hours: float,
) -> bool:
    """processing → completed for the run that owns the row; False when it lost the row."""
    done = await conn.fetchval(
        """UPDATE export_logs
              SET status = 'completed', progress_percent = 100, completed_at = now(),
                  heartbeat_at = now(), expires_at = now() + make_interval(secs => $3),
                  file_name = $4, byte_size = $5, sha256 = $6, conversation_count = $7,
                  turn_count = $8, quality_stats = $9, tier_distribution = $10,
                  render_failures = $11, render_failure_count = $12,
                  partial = $12 > 0, warnings = $14, split_counts = $15,
                  exported_ids = ARRAY(
                      SELECT encode(substring($13::bytea FROM i * 16 + 1 FOR 16), 'hex')::uuid
                        FROM generate_series(0, length($13::bytea) / 16 - 1) AS i ORDER BY i)
            WHERE id = $1 AND run_id = $2 AND status = 'processing' RETURNING true""",
        export_id,
        run_id,
        retention_hours * 3600,
        outcome.file_name,
        outcome.byte_size,
        outcome.sha256,
        outcome.conversation_count,
        outcome.turn_count,
        outcome.quality_stats,
        outcome.tier_distribution,
        outcome.render_failures,
        outcome.render_failure_count,
        outcome.exported_ids,
        outcome.warnings,
        outcome.split_counts,
    )
    return bool(done)


async def fail(conn: asyncpg.Connection, export_id: UUID, run_id: UUID, error: str) -> bool:
    """processing → failed with the reason, for the run that owns the row."""
    done = await conn.fetchval(
        """UPDATE export_logs SET status = 'failed', error = $3, completed_at = now()
            WHERE id = $1 AND run_id = $2 AND status = 'processing' RETURNING true""",
        export_id,
        run_id,
        error[:2000],
    )
    return bool(done)


async def apply_counts(conn: asyncpg.Connection, export_id: UUID) -> int | None:
    """Bump export_count/last_exported_at of the exported conversations, once per export.

    Returns how many conversations were bumped, or None when there is nothing (left) to do.
    The row lock makes a concurrent second run wait, then find counts_applied_at set.
    """
    completed_at: datetime | None = await conn.fetchval(
        """SELECT completed_at FROM export_logs
            WHERE id = $1 AND counts_applied_at IS NULL AND status IN ('completed', 'expired')
              FOR UPDATE""",
        export_id,
    )
    if completed_at is None:
        return None
    result: str = await conn.execute(
        """UPDATE conversations AS c
              SET export_count = c.export_count + 1, last_exported_at = $2
             FROM (SELECT unnest(exported_ids) AS id FROM export_logs WHERE id = $1) AS e
            WHERE c.id = e.id""",
        export_id,
        completed_at,
    )
    await conn.execute(
        "UPDATE export_logs SET counts_applied_at = clock_timestamp() WHERE id = $1", export_id
    )
    return int(result.rsplit(" ", 1)[-1])
