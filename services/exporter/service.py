"""One export run: claim the row, stream the snapshot into storage, record the outcome once.

Safe when arq runs it twice: a completed export is not redone (only its export_count bump is
finished if a crash interrupted it), and a re-run of an export left `processing` by a dead
worker takes the row over with a new run_id and starts again from the beginning.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
from botocore.exceptions import BotoCoreError, ClientError

from services.exporter import metrics, source
from services.exporter.control import ExportStopped, RunControl
from services.exporter.upload import upload_pipelined
from shared.db.pool import acquire, tenant_transaction
from shared.db.repositories import export_source
from shared.db.repositories import exports as repo
from shared.events import publish
from shared.exports import plan
from shared.exports.formats import ExportOptions, OutputInvalid, get_validator
from shared.exports.split import CardSpec, SplitStream, Splitter, split_chunks
from shared.exports.stream import ExportStream, NothingRendered, file_chunks
from shared.logging import bound_context, get_logger
from shared.models.export import ExportLog, ExportStatus
from shared.runtime import WorkerResources
from shared.storage import StorageError, UploadResult

log = get_logger(__name__)
_STORAGE_ERRORS = (StorageError, ClientError, BotoCoreError, OSError)


class RetryLater(Exception):
    """The outcome could not be recorded (database unreachable): run the job again later."""

    def __init__(self, seconds: float, reason: str) -> None:
        super().__init__(reason)
        self.seconds = seconds


@dataclass(frozen=True)
class Produced:
    """A file that is whole in storage, and what it holds."""

    upload: UploadResult
    stream: ExportStream | SplitStream
    seconds: float


async def run_export(resources: WorkerResources, export_id: UUID) -> dict[str, Any]:
    """Run (or finish, or skip) one export; returns a short summary for arq's result."""
    try:
        async with acquire(resources.pool) as conn:
            owner_id = await repo.owner_of(conn, export_id)
    except (asyncpg.PostgresError, OSError) as exc:
        raise RetryLater(5, f"database unavailable: {exc}") from exc
    if owner_id is None:
        log.warning("exporter.export.not_found", export_id=str(export_id))
        return {"export_id": str(export_id), "status": "not_found"}
    with bound_context(export_id=export_id, owner_id=owner_id):
        run = ExportRun(resources, owner_id, export_id)
        return await run.execute()


class ExportRun:
    """One attempt at one export."""

    def __init__(self, resources: WorkerResources, owner_id: UUID, export_id: UUID) -> None:
        self.resources = resources
        self.settings = resources.settings
        self.pool = resources.pool
        self.owner_id = owner_id
        self.export_id = export_id
        self.run_id = uuid.uuid4()

    async def execute(self) -> dict[str, Any]:
        """Claim, produce, record."""
        export = await self._claim()
        if export is None:
            return await self._already_finished()
        fmt = export.format.value
        log.info("exporter.export.started", attempt=export.attempts, format=fmt)
        await self._notify("started")
        try:
            produced = await self._produce(export)
        except ExportStopped as stop:
            return self._stopped(export, stop.status)
        except Exception as exc:
            return await self._failed(export, exc)
        return await self._record(export, produced)

    async def _claim(self) -> ExportLog | None:
        async with tenant_transaction(self.pool, self.owner_id) as conn:
            current = await repo.get(conn, self.export_id)
            if current is None or current.status not in (
                ExportStatus.QUEUED,
                ExportStatus.PROCESSING,
            ):
                return None
            restart = restart_reason(current)
            key = plan.object_key(current, self.run_id)
            claimed = await repo.claim(conn, self.export_id, self.run_id, key, restart)
        if claimed is not None and restart is not None and current.object_key:
            # The earlier run stopped mid-upload: its partial file goes before we start again.
            log.warning("exporter.export.restarted", reason=restart, restarts=claimed.restarts)
            await self._discard_partial(current.object_key)
        return claimed

    async def _discard_partial(self, key: str) -> None:
        storage = self.resources.storage
        try:
            aborted = await storage.abort_upload(key)
            await storage.delete(key)
        except _STORAGE_ERRORS as exc:  # abort-stale-uploads removes it later
            log.warning("exporter.export.partial_not_removed", object_key=key, error=str(exc))
            return
        metrics.PARTIALS_REMOVED.inc(aborted)

    async def _produce(self, export: ExportLog) -> Produced:
        """Read the snapshot, render, validate and upload; the file is whole when this returns."""
        started = time.monotonic()
        config = export.export_config
        options = plan.render_options(config, export.created_at)
        control = RunControl(
            self.pool, self.owner_id, self.export_id, self.run_id,
            interval=self.settings.export_heartbeat_seconds,
            max_per_second=self.settings.export_max_conversations_per_second,
            on_beat=lambda: self._notify("progress"),
        )  # fmt: skip
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(control)
            conn = await stack.enter_async_context(
                tenant_transaction(
                    self.pool, self.owner_id, isolation="repeatable_read", readonly=True
                )
            )
            scope = plan.scope_of(export)
            control.total = await export_source.count(conn, scope)
            batches = await stack.enter_async_context(
                aclosing(source.batches(
                    conn, scope, size=self.settings.export_batch_size, options=options,
                    for_card=config.dataset_card, python_only=config.split is not None,
                ))
            )  # fmt: skip
            stream, chunk_source = await _chunk_source(
                conn, scope, export, options, batches, control
            )
            chunks = await stack.enter_async_context(aclosing(chunk_source))
            upload = await upload_pipelined(
                self.resources.storage, export.object_key or "", chunks,
                content_type=plan.content_type(config),
                part_size=self.settings.export_part_size_bytes,
            )  # fmt: skip
        return Produced(upload, stream, time.monotonic() - started)

    async def _record(self, export: ExportLog, produced: Produced) -> dict[str, Any]:
        """Mark completed (only if this run still owns the row), then bump export counts."""
        tally = produced.stream.tally
        config = export.export_config
        summary = tally.summary
        outcome = repo.Outcome(
            file_name=plan.file_name(
                config, export.created_at, summary.conversation_count, summary.tier_distribution
            ),
            byte_size=produced.upload.size,
            sha256=produced.upload.sha256,
            conversation_count=summary.conversation_count,
            turn_count=summary.total_turns,
            quality_stats=tally.quality.to_dict(),
            tier_distribution=dict(summary.tier_distribution),
            render_failures=tally.failures,
            render_failure_count=tally.failure_count,
            exported_ids=bytes(tally.exported_ids),
            warnings=produced.stream.warnings(),
            split_counts=getattr(produced.stream, "split_counts", None),
        )
        try:
            async with tenant_transaction(self.pool, self.owner_id) as conn:
                owned = await repo.complete(
                    conn, self.export_id, self.run_id, outcome,
                    self.settings.export_retention_hours,
                )  # fmt: skip
        except BaseException as exc:
            await self._discard(produced.upload.key)
            if isinstance(exc, (asyncpg.PostgresError, OSError)):
                raise RetryLater(5, f"could not record the completion: {exc}") from exc
            raise
        if not owned:
            # Cancelled (or taken over) after the last heartbeat: this file must not stay.
            await self._discard(produced.upload.key)
            return self._stopped(export, await self._status())
        self._observe_completed(export, produced, outcome)
        return {**self._result("completed", outcome), "counts_applied": await self._apply_counts()}

    async def _already_finished(self) -> dict[str, Any]:
        """Not ours to run: report it, and finish an interrupted export_count bump."""
        status = await self._status()
        result: dict[str, Any] = {"export_id": str(self.export_id), "status": status}
        if status in (ExportStatus.COMPLETED.value, ExportStatus.EXPIRED.value):
            result["counts_applied"] = await self._apply_counts()
        log.info("exporter.export.skipped", status=status)
        return result

    async def _apply_counts(self) -> int | None:
        """export_count/last_exported_at for the exported conversations, exactly once."""
        try:
            async with tenant_transaction(self.pool, self.owner_id) as conn:
                return await repo.apply_counts(conn, self.export_id)
        except (asyncpg.PostgresError, OSError) as exc:
            raise RetryLater(5, f"export counts not applied yet: {exc}") from exc

    async def _failed(self, export: ExportLog, exc: Exception) -> dict[str, Any]:
        reason = failure_reason(exc)
        log.warning("exporter.export.failed", reason=reason, error_type=type(exc).__name__)
        try:
            async with tenant_transaction(self.pool, self.owner_id) as conn:
                owned = await repo.fail(conn, self.export_id, self.run_id, reason)
        except (asyncpg.PostgresError, OSError) as db_exc:
            raise RetryLater(5, f"could not record the failure: {db_exc}") from exc
        if not owned:
            return self._stopped(export, await self._status())
        metrics.EXPORTS.labels(export.format.value, "failed").inc()
        return {"export_id": str(self.export_id), "status": "failed", "error": reason}

    def _stopped(self, export: ExportLog, status: str) -> dict[str, Any]:
        log.info("exporter.export.stopped", status=status)
        if status == ExportStatus.CANCELLED.value:
            metrics.EXPORTS.labels(export.format.value, "cancelled").inc()
        return {"export_id": str(self.export_id), "status": status}

    async def _status(self) -> str:
        async with tenant_transaction(self.pool, self.owner_id) as conn:
            export = await repo.get(conn, self.export_id)
        return export.status.value if export is not None else "not_found"

    async def _notify(self, reason: str) -> None:
        await publish(self.resources.redis, self.settings, "export", self.export_id, reason)

    async def _discard(self, key: str) -> None:
        """Delete a file no row will point at; shielded so a cancel cannot skip it."""
        try:
            await asyncio.shield(self.resources.storage.delete(key))
        except Exception as exc:  # the janitor's reconcile removes what this could not
            log.warning("exporter.export.discard_failed", object_key=key, error=str(exc))

    def _observe_completed(
        self, export: ExportLog, produced: Produced, outcome: repo.Outcome
    ) -> None:
        fmt = export.format.value
        metrics.EXPORTS.labels(fmt, "completed").inc()
        metrics.DURATION.labels(fmt).observe(produced.seconds)
        metrics.FILE_SIZE.labels(fmt).observe(outcome.byte_size)
        metrics.CONVERSATIONS.labels(fmt).inc(outcome.conversation_count)
        if outcome.render_failure_count:
            metrics.RENDER_FAILURES.labels(fmt).inc(outcome.render_failure_count)
            log.warning("exporter.export.render_failures", count=outcome.render_failure_count)
        log.info(
            "exporter.export.completed", conversations=outcome.conversation_count,
            bytes=outcome.byte_size, seconds=round(produced.seconds, 3),
        )  # fmt: skip

    def _result(self, status: str, outcome: repo.Outcome) -> dict[str, Any]:
        return {
            "export_id": str(self.export_id),
            "status": status,
            "conversations": outcome.conversation_count,
            "bytes": outcome.byte_size,
            "render_failures": outcome.render_failure_count,
        }


def restart_reason(current: ExportLog) -> str | None:
    """Why a claim of an export already `processing` restarts it (None: a first start)."""
    if current.status is not ExportStatus.PROCESSING:
        return None
    seen = current.heartbeat_at or current.started_at
    since = seen.isoformat() if seen is not None else "its start"
    return f"restarted from scratch: the previous run stopped reporting progress at {since}"


async def _chunk_source(
    conn: asyncpg.Connection,
    scope: export_source.Scope,
    export: ExportLog,
    options: ExportOptions,
    batches: source.Batches,
    control: RunControl,
) -> tuple[ExportStream | SplitStream, AsyncGenerator[bytes, None]]:
    """The stream that renders the file and the generator of its stored chunks."""
    config = export.export_config
    if config.split is None:
        stream = ExportStream(options, compress=config.compress)
        validator = get_validator(options)
        return stream, file_chunks(stream, batches, validator, control.after_batch)
    split = await split_stream(conn, scope, export, options)
    return split, split_chunks(split, batches, control.after_batch)


async def split_stream(
    conn: asyncpg.Connection, scope: export_source.Scope, export: ExportLog, options: ExportOptions
) -> SplitStream:
    """The split's stream: thresholds read in the export's snapshot, the card's details."""
    config = export.export_config
    split = config.split
    assert split is not None
    thresholds = await export_source.split_thresholds(
        conn, scope, fraction=split.validation, seed=split.seed, stratify=split.stratify
    )
    card = None
    if config.dataset_card:
        title = f"training-data-{export.created_at:%Y-%m-%d}"
        card = CardSpec(title, config.model_dump(mode="json"), config.license)
    return SplitStream(options, Splitter(split, thresholds), card)


def failure_reason(exc: BaseException) -> str:
    """A reason a person can act on, stored in export_logs.error."""
    if isinstance(exc, OutputInvalid):
        return f"output_invalid: {exc.reason}"
    if isinstance(exc, NothingRendered):
        return f"render_failed: {exc.reason}"
    if isinstance(exc, _STORAGE_ERRORS):
        return f"storage_error: {type(exc).__name__}: {exc}"
    if isinstance(exc, asyncpg.PostgresError):
        return f"database_error: {type(exc).__name__}: {exc}"
    return f"internal_error: {type(exc).__name__}: {exc}"
