"""Janitor tasks over export_logs: expire-exports, prune-audit-logs, export-failure-ratio."""

from __future__ import annotations

import gzip
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import orjson

from services.janitor import fleet
from services.janitor import repository as repo
from services.janitor.context import Counts, JanitorDeps, for_each_owner
from services.janitor.metrics import EXPORT_FAILURE_RATIO, EXPORTS_FINISHED
from shared.db.pool import tenant_transaction
from shared.logging import get_logger

log = get_logger(__name__)
ARCHIVE_PREFIX = "archive/export_logs"


# --- expire-exports ---------------------------------------------------------------------------


async def expire_exports(deps: JanitorDeps, counts: Counts) -> None:
    """Completed exports past expires_at: delete the file, then mark the row expired."""
    counts.add("expired", 0)
    counts.add("failed", 0)

    async def owner_work(owner: UUID) -> None:
        cursor: tuple[datetime, UUID] | None = None
        while True:
            async with tenant_transaction(deps.pool, owner) as conn:
                batch = await repo.exports_past_expiry(
                    conn, after=cursor, limit=deps.settings.janitor_batch_size
                )
            if not batch:
                return
            for export in batch:
                await _expire_one(deps, counts, owner, export)
            cursor = (batch[-1].expires_at, batch[-1].id)

    await for_each_owner(deps, counts, owner_work)


async def _expire_one(
    deps: JanitorDeps, counts: Counts, owner: UUID, export: repo.ExportFile
) -> None:
    # File first: a crash after the delete leaves a completed row the next run finishes;
    # the other order could leave an expired row whose file nobody deletes.
    try:
        if export.object_key:
            await deps.storage.delete(export.object_key)
        async with tenant_transaction(deps.pool, owner) as conn:
            changed = await repo.mark_export_expired(conn, export.id)
    except Exception as exc:
        counts.add("failed")
        log.warning("janitor.expire_exports.failed", export_id=str(export.id), error=str(exc))
        return
    counts.add("expired" if changed else "already_changed")


# --- prune-audit-logs -------------------------------------------------------------------------


async def prune_audit_logs(deps: JanitorDeps, counts: Counts) -> None:
    """Finished export logs older than the retention: archive as gzip JSONL, then delete."""
    counts.add("archived", 0)
    counts.add("deleted", 0)
    days = deps.settings.janitor_audit_log_retention_days
    before = datetime.now(UTC) - timedelta(days=days)

    async def owner_work(owner: UUID) -> None:
        while True:
            async with tenant_transaction(deps.pool, owner) as conn:
                rows = await repo.prunable_export_logs(
                    conn, before=before, limit=deps.settings.janitor_batch_size
                )
            if not rows:
                return
            key = archive_key(owner, rows)
            await deps.storage.put(key, encode_archive(rows), content_type="application/gzip")
            counts.add("archived", len(rows))
            async with tenant_transaction(deps.pool, owner) as conn:
                counts.add("deleted", await repo.delete_export_logs(conn, [r["id"] for r in rows]))
            log.info("janitor.prune_audit_logs.archived", rows=len(rows), archive_key=key)

    await for_each_owner(deps, counts, owner_work)


def archive_key(owner: UUID, rows: list[dict[str, Any]]) -> str:
    """Deterministic per batch, so a re-run after a crash rewrites the same object."""
    digest = hashlib.sha256(b"".join(row["id"].bytes for row in rows)).hexdigest()[:16]
    first: datetime = rows[0]["created_at"]
    return f"{ARCHIVE_PREFIX}/{owner}/{first:%Y/%m}/{first:%Y%m%dT%H%M%SZ}-{digest}.jsonl.gz"


def encode_archive(rows: list[dict[str, Any]]) -> bytes:
    """One JSON object per line (every column), gzip-compressed."""
    lines = b"".join(orjson.dumps(row, default=str) + b"\n" for row in rows)
    return gzip.compress(lines, mtime=0)


# --- export-failure-ratio ---------------------------------------------------------------------


async def export_failure_ratio(deps: JanitorDeps, counts: Counts) -> None:
    """Failed / finished exports over the window: a gauge for the alert, a warning when high."""
    settings = deps.settings
    since = datetime.now(UTC) - timedelta(seconds=settings.janitor_export_failure_window_seconds)
    totals = {"succeeded": 0, "failed": 0}

    async def owner_work(owner: UUID) -> None:
        async with tenant_transaction(deps.pool, owner, readonly=True) as conn:
            succeeded, failed = await repo.finished_export_counts(conn, since=since)
        totals["succeeded"] += succeeded
        totals["failed"] += failed

    await for_each_owner(deps, counts, owner_work)
    finished = totals["succeeded"] + totals["failed"]
    ratio = totals["failed"] / finished if finished else 0.0
    EXPORT_FAILURE_RATIO.set(ratio)
    EXPORTS_FINISHED.labels("completed").set(totals["succeeded"])
    EXPORTS_FINISHED.labels("failed").set(totals["failed"])
    await fleet.store_failure_ratio(
        deps.redis, settings, ratio, totals["succeeded"], totals["failed"]
    )
    counts.add("measured")
    fields = {"ratio": round(ratio, 4), "failed": totals["failed"], "finished": finished}
    if ratio > settings.janitor_export_failure_threshold:
        log.warning(
            "janitor.export_failure_ratio.high",
            threshold=settings.janitor_export_failure_threshold,
            **fields,
        )
    else:
        log.info("janitor.export_failure_ratio.ok", **fields)
