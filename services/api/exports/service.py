"""Export business rules: request (with its audit row), preview, history, cancel, download."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import redis.exceptions
from pydantic import ValidationError

from services.api import pagination
from services.api.export_presets import service as presets
from services.api.exports.schemas import (
    DownloadLink,
    ExportOut,
    ExportPage,
    ExportRequest,
    PreviewOut,
)
from services.api.metrics import JOBS_ENQUEUED
from services.api.resources import ApiResources
from shared.db.pool import tenant_transaction
from shared.db.repositories import export_presets as preset_repo
from shared.db.repositories import export_source
from shared.db.repositories import exports as repo
from shared.errors import Conflict, Gone, NotFound, Unavailable, ValidationFailed
from shared.exports import plan
from shared.exports.stream import render_small
from shared.logging import get_logger
from shared.models.export import ExportFormat, ExportLog, ExportScope, ExportStatus
from shared.queue import RUN_EXPORT, enqueue, job_id
from shared.settings import Settings
from shared.storage import ObjectStore

log = get_logger(__name__)
PREVIEW_SIZE = 3
_REPORTED_UNKNOWN = 100


@dataclass(frozen=True)
class ScopeProblem:
    """Why a requested export cannot produce anything (a 422 and a failed audit row)."""

    code: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)


def _not_found(export_id: UUID) -> NotFound:
    return NotFound("export not found", details={"id": str(export_id)})


def export_job_id(export_id: UUID) -> str:
    """The exporter's job id for an export (the janitor re-enqueues under the same id)."""
    return job_id("export", export_id)


async def resolve(conn: asyncpg.Connection, body: ExportRequest) -> ExportRequest:
    """The request with the config it runs: a preset's, or the user's default format."""
    config = await presets.effective_config(conn, body.config, body.preset_id)
    if body.config is config:
        return body
    try:
        return body.with_config(config)
    except ValidationError as exc:
        problems = [{"path": ".".join(map(str, e["loc"])), "message": e["msg"]}
                    for e in exc.errors()]  # fmt: skip
        raise ValidationFailed(
            "the preset does not fit this request", code="preset_mismatch", details=problems
        ) from exc


async def scope_problem(
    conn: asyncpg.Connection, owner_id: UUID, body: ExportRequest
) -> ScopeProblem | None:
    """Unknown selected ids, or a scope that matches nothing right now."""
    scope = body.spec.scope
    if scope is ExportScope.SELECTED:
        missing = await export_source.missing_ids(conn, body.selected_ids)
        if missing:
            return ScopeProblem(
                "unknown_conversations",
                f"{len(missing)} selected conversation(s) do not exist or were deleted",
                {"unknown_ids": [str(i) for i in missing[:_REPORTED_UNKNOWN]],
                 "unknown_count": len(missing)},
            )  # fmt: skip
        return None
    where = export_source.scope_for(
        owner_id,
        scope,
        filters=body.filters,
        exclude_near_duplicates=body.spec.exclude_near_duplicates,
    )
    if not await export_source.any_match(conn, where):
        return ScopeProblem(
            "nothing_to_export",
            f"no conversation matches scope {scope.value!r}; nothing would be exported",
            {"scope": scope.value, "filters": body.stored_filters},
        )
    return None


async def request_export(resources: ApiResources, owner_id: UUID, body: ExportRequest) -> ExportLog:
    """Write the audit row (failed at once when the scope is empty), then enqueue the job.

    The config (a preset's, or the user's default format) is remembered as the last used.
    """
    async with tenant_transaction(resources.pool, owner_id) as conn:
        body = await resolve(conn, body)
        await preset_repo.remember_config(conn, owner_id, body.spec)
        problem = await scope_problem(conn, owner_id, body)
        export = await repo.insert(
            conn, owner_id=owner_id, created_by=owner_id, config=body.spec,
            filters=body.stored_filters, selected_ids=body.selected_ids,
            error=f"{problem.code}: {problem.message}" if problem else None,
        )  # fmt: skip
    if problem is not None:
        details = {**problem.details, "export_id": str(export.id)}
        raise ValidationFailed(problem.message, code=problem.code, details=details)
    await _enqueue(resources, export)
    return export


async def _enqueue(resources: ApiResources, export: ExportLog) -> None:
    """Enqueue after the commit; if Redis is down the row says so instead of waiting forever."""
    try:
        await enqueue(
            resources.redis, resources.settings, "exporter", RUN_EXPORT, str(export.id),
            job_id=export_job_id(export.id),
        )  # fmt: skip
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
        log.warning("api.exports.enqueue_failed", export_id=str(export.id), error=str(exc))
        async with tenant_transaction(resources.pool, export.owner_id) as conn:
            await repo.fail_queued(conn, export.id, f"queue_unavailable: {exc}")
        raise Unavailable(
            "the export queue is unavailable; the export was recorded as failed",
            details={"unavailable": ["redis"], "export_id": str(export.id)},
        ) from exc
    JOBS_ENQUEUED.labels("exporter", RUN_EXPORT).inc()


async def preview(conn: asyncpg.Connection, owner_id: UUID, body: ExportRequest) -> PreviewOut:
    """The first conversations rendered by the exporter's own transformer and validator.

    A split previews the format of its parts (the first conversations, not split).
    """
    body = await resolve(conn, body)
    problem = await scope_problem(conn, owner_id, body)
    if problem is not None and problem.code == "unknown_conversations":
        raise ValidationFailed(problem.message, code=problem.code, details=problem.details)
    config = body.spec
    scope = export_source.scope_for(
        owner_id, config.scope, filters=body.filters, selected_ids=body.selected_ids,
        exclude_near_duplicates=config.exclude_near_duplicates,
    )  # fmt: skip
    options = plan.render_options(config, datetime.now(UTC))
    conversations = await export_source.batch(
        conn, scope, after=None, limit=PREVIEW_SIZE, **plan.reads(options)
    )
    data, tally, content_type = render_small(options, conversations)
    binary = config.format is ExportFormat.PARQUET
    return PreviewOut(
        format=config.format,
        content_type=content_type,
        content=base64.b64encode(data).decode() if binary else data.decode(),
        content_encoding="base64" if binary else "utf-8",
        conversation_count=tally.summary.conversation_count,
        total=await export_source.count(conn, scope),
        render_failures=tally.failures,
    )


async def get(conn: asyncpg.Connection, export_id: UUID) -> ExportLog:
    """One export of the caller's, or 404."""
    export = await repo.get(conn, export_id)
    if export is None:
        raise _not_found(export_id)
    return export


async def history(
    conn: asyncpg.Connection, filters: repo.HistoryFilters, cursor_value: str | None, limit: int
) -> ExportPage:
    """Newest first, keyset-paginated, with the total under the filters."""
    before = pagination.decode_newest(cursor_value)
    rows = await repo.history_page(conn, filters, before=before, limit=limit + 1)
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        next_cursor = pagination.encode(pagination.NEWEST_FIRST, (page[-1].created_at, page[-1].id))
    total = await repo.history_count(conn, filters)
    return ExportPage(items=[ExportOut.of(e) for e in page], next_cursor=next_cursor, total=total)


async def cancel(conn: asyncpg.Connection, export_id: UUID) -> ExportLog:
    """Stop a queued or running export; the worker aborts its upload at its next heartbeat."""
    cancelled = await repo.cancel(conn, export_id)
    if cancelled is not None:
        return cancelled
    export = await get(conn, export_id)
    raise Conflict(
        f"export is {export.status.value}; only queued or processing exports can be cancelled",
        code="export_not_active",
        details={"status": export.status.value},
    )


async def download_link(
    conn: asyncpg.Connection, storage: ObjectStore, settings: Settings, export_id: UUID
) -> DownloadLink:
    """A signed link to the file: 409 until it is ready, 410 once it has expired."""
    export = await get(conn, export_id)
    now = datetime.now(UTC)
    expired = export.status is ExportStatus.EXPIRED or (
        export.status is ExportStatus.COMPLETED and export.expires_at and export.expires_at <= now
    )
    if expired:
        raise Gone(
            "the export file has expired; request a new export",
            details={"expires_at": export.expires_at.isoformat() if export.expires_at else None},
        )
    if export.status is not ExportStatus.COMPLETED or not export.object_key:
        raise _not_ready(export)
    ttl = settings.download_url_ttl_seconds
    if export.expires_at is not None:
        ttl = max(1, min(ttl, int((export.expires_at - now).total_seconds())))
    name = export.file_name or "training-data"
    url = await storage.presign_get(export.object_key, expires_in=ttl, filename=name)
    await repo.record_download(conn, export_id)
    return DownloadLink(url=url, expires_at=now + timedelta(seconds=ttl), file_name=name)


def _not_ready(export: ExportLog) -> Conflict:
    status = export.status.value
    if export.status in (ExportStatus.QUEUED, ExportStatus.PROCESSING):
        message = f"export is {status} ({export.progress_percent:.0f}%); try again when completed"
        code = "export_not_ready"
    else:
        message = f"export is {status} and has no file: {export.error or 'no reason recorded'}"
        code = f"export_{status}"
    return Conflict(message, code=code, details={"status": status})
