"""recover-stuck-jobs: exports and generation batches whose heartbeat went quiet.

A quiet row is stuck only if its arq job is gone too (finished, failed for good, or lost with
Redis); a job still queued or running is merely slow and left alone. A stuck job is
re-enqueued under its own deterministic id (forget_job first, so arq accepts the id again) at
most JANITOR_MAX_RECOVERIES times, then failed with a reason. Rows change first; jobs are
enqueued after the commit. A parked generation item (waiting for a concurrency slot) that lost
its job is re-enqueued too: the generator parks it again, deferred, if no slot is free. The
items of a batch-mode job are its runner's: only the runner's job (`genbatch:{id}`) is checked
and re-enqueued, never a live call per item.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg

from services.janitor import repository as repo
from services.janitor.context import Counts, JanitorDeps, for_each_owner
from shared.db.pool import tenant_transaction
from shared.logging import get_logger
from shared.queue import (
    GENERATE_ITEM,
    RUN_EXPORT,
    RUN_MESSAGE_BATCHES,
    Service,
    enqueue,
    forget_job,
    job_id,
    job_state,
)

log = get_logger(__name__)
# arq states in which a job will still run by itself.
_ALIVE = frozenset({"deferred", "queued", "in_progress"})


def export_job_id(export_id: UUID) -> str:
    """The exporter's job id for an export (the contract with services/exporter)."""
    return job_id("export", export_id)


def item_job_id(batch_id: UUID, item_index: int) -> str:
    """The generator's job id for one item of a batch (the contract with services/generator)."""
    return job_id("gen", batch_id, item_index)


async def recover_stuck_jobs(deps: JanitorDeps, counts: Counts) -> None:
    """Re-enqueue or fail quiet exports and generation batches, tenant by tenant."""
    for action in ("exports_requeued", "exports_failed", "items_requeued", "batches_failed"):
        counts.add(action, 0)
    quiet_since = datetime.now(UTC) - timedelta(seconds=deps.settings.janitor_stuck_after_seconds)

    async def owner_work(owner: UUID) -> None:
        await _recover_exports(deps, counts, owner, quiet_since)
        await _recover_batches(deps, counts, owner, quiet_since)

    await for_each_owner(deps, counts, owner_work)


async def _alive(deps: JanitorDeps, service: Service, jid: str) -> bool:
    state = await job_state(deps.redis, deps.settings, service, jid)
    return state.status in _ALIVE


def _reason(last_seen: datetime, recoveries: int) -> str:
    return (
        f"stuck: no heartbeat since {last_seen.isoformat()}; gave up after {recoveries} recoveries"
    )


async def _recover_exports(
    deps: JanitorDeps, counts: Counts, owner: UUID, quiet_since: datetime
) -> None:
    requeue: list[UUID] = []
    async with tenant_transaction(deps.pool, owner) as conn:
        for export in await repo.stuck_exports(conn, quiet_since=quiet_since):
            if await _alive(deps, "exporter", export_job_id(export.id)):
                counts.add("exports_waiting")
            elif export.recovery_count >= deps.settings.janitor_max_recoveries:
                reason = _reason(export.last_seen, export.recovery_count)
                await repo.fail_export(conn, export.id, reason)
                counts.add("exports_failed")
                log.warning(
                    "janitor.recover.export_failed", export_id=str(export.id), reason=reason
                )
            else:
                await repo.note_export_recovery(conn, export.id)
                requeue.append(export.id)
    for export_id in requeue:
        jid = export_job_id(export_id)
        if await _requeue(deps, counts, "exporter", jid, RUN_EXPORT, str(export_id)):
            counts.add("exports_requeued")


def runner_job_id(batch_id: UUID) -> str:
    """The batch runner's job id of a batch-mode job (the contract with services/api)."""
    return job_id("genbatch", batch_id)


async def _recover_batches(
    deps: JanitorDeps, counts: Counts, owner: UUID, quiet_since: datetime
) -> None:
    requeue: list[tuple[UUID, int | None]] = []
    async with tenant_transaction(deps.pool, owner) as conn:
        for batch in await repo.stuck_batches(conn, quiet_since=quiet_since):
            requeue += await _recover_batch(deps, counts, conn, batch)
    for batch_id, index in requeue:
        if index is None:
            jid = runner_job_id(batch_id)
            if await _requeue(deps, counts, "generator", jid, RUN_MESSAGE_BATCHES, str(batch_id)):
                counts.add("runners_requeued")
            continue
        jid = item_job_id(batch_id, index)
        if await _requeue(deps, counts, "generator", jid, GENERATE_ITEM, str(batch_id), index):
            counts.add("items_requeued")


async def _recover_batch(
    deps: JanitorDeps, counts: Counts, conn: asyncpg.Connection, batch: repo.StuckBatch
) -> list[tuple[UUID, int | None]]:
    """Decide one batch inside the transaction; returns the items (None: the runner) to enqueue."""
    items = await repo.pending_items(conn, batch.id)
    if not items:
        status = await repo.finish_batch(
            conn, batch.id, "finished by the janitor: heartbeat stopped with no item pending"
        )
        counts.add("batches_finished")
        log.warning("janitor.recover.batch_finished", batch_id=str(batch.id), status=status)
        return []
    if batch.mode == "batch":
        runner_alive = await _alive(deps, "generator", runner_job_id(batch.id))
        lost: list[int | None] = [] if runner_alive else [None]
    else:
        lost = [
            item.item_index
            for item in items
            if not await _alive(deps, "generator", item_job_id(batch.id, item.item_index))
        ]
    if not lost:
        counts.add("batches_waiting")
        return []
    if batch.recovery_count >= deps.settings.janitor_max_recoveries:
        reason = _reason(batch.last_seen, batch.recovery_count)
        counts.add("items_failed", await repo.fail_batch(conn, batch.id, reason))
        counts.add("batches_failed")
        log.warning("janitor.recover.batch_failed", batch_id=str(batch.id), reason=reason)
        return []
    await repo.note_batch_recovery(conn, batch.id)
    counts.add("batches_recovered")
    log.warning(
        "janitor.recover.batch_requeued", batch_id=str(batch.id), mode=batch.mode, jobs=len(lost)
    )
    return [(batch.id, index) for index in lost]


async def _requeue(
    deps: JanitorDeps, counts: Counts, service: Service, jid: str, function: str, *args: object
) -> bool:
    try:
        await forget_job(deps.redis, jid)
        await enqueue(deps.redis, deps.settings, service, function, *args, job_id=jid)
    except Exception as exc:  # the row keeps its fresh heartbeat; the next quiet period retries
        counts.add("requeue_failed")
        log.warning("janitor.recover.requeue_failed", job_id=jid, error=str(exc))
        return False
    return True
