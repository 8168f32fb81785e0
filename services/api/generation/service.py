"""Generation jobs: create (rows first, enqueue after commit), status, control, logs, limiter."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
import httpx

from services.api.generation import batch_jobs, economy, planning
from services.api.generation.schemas import (
    ActionOut,
    EstimateOut,
    ItemError,
    ItemOut,
    JobDetail,
    JobIn,
    JobOut,
    RateLimitOut,
    RegenerateIn,
)
from services.api.metrics import JOBS_ENQUEUED
from shared.db.pool import tenant_transaction
from shared.db.repositories import generation as repo
from shared.errors import Conflict, InvalidTransition, NotFound
from shared.llm.limiter import build_limiter
from shared.logging import get_logger
from shared.models.generation import (
    TERMINAL_BATCH,
    BatchJob,
    BatchStatus,
    GenerationItem,
    ItemRequest,
    ItemStatus,
    JobMode,
    StopReason,
)
from shared.quality import enqueue as quality_enqueue
from shared.queue import (
    GENERATE_ITEM,
    GENERATION_PARK_SECONDS,
    ArqRedis,
    enqueue,
    forget_job,
    job_id,
)
from shared.settings import Settings

log = get_logger(__name__)
_ENQUEUE_CHUNK = 50


def not_found() -> NotFound:
    """The one 404 for a batch that is missing or someone else's."""
    return NotFound("no such generation job")


async def estimate(
    conn: asyncpg.Connection,
    http: httpx.AsyncClient,
    owner_id: UUID,
    body: JobIn,
    settings: Settings,
) -> EstimateOut:
    """What the batch would cost, live and batched; nothing is written or enqueued."""
    requests = await planning.expand(conn, owner_id, body, settings)
    scale = await economy.measure(http, settings, requests)
    return planning.estimate(
        requests, settings, mode=body.mode, deadline=body.deadline, scale=scale
    )


async def create(
    pool: asyncpg.Pool, queue: ArqRedis, settings: Settings, owner_id: UUID, body: JobIn
) -> JobOut:
    """Write the batch and its items, commit, then enqueue one job per item."""
    async with tenant_transaction(pool, owner_id) as conn:
        requests = await planning.expand(conn, owner_id, body, settings)
        mode = JobMode.LIVE
        if not settings.offline_llm:  # the offline provider has no Message Batches
            mode = economy.choose_mode(body.mode, len(requests), body.deadline, settings)
        judge = settings.judge_after_generation if body.judge is None else body.judge
        config = {
            "source": _source(body), "mode": mode.value, "requested_mode": body.mode.value,
            "judge": judge,
        }  # fmt: skip
        batch = await insert_job(conn, owner_id, requests, body, settings, config)
    if settings.offline_llm:
        log.warning(
            "api.generation.offline_provider",
            batch_id=str(batch.id),
            message="no ANTHROPIC_API_KEY: this batch gets offline sample conversations",
        )
    if mode == JobMode.BATCH:
        await batch_jobs.start(queue, settings, batch.id)
    else:
        await dispatch(queue, settings, batch.id, range(len(requests)), now=body.concurrency)
    created: JobOut = job_out(batch)
    return created


def _source(body: JobIn) -> dict[str, Any]:
    if body.plan is not None:
        return {"kind": "plan", "plan": body.plan.model_dump()}
    return {"kind": "items"}


async def insert_job(
    conn: asyncpg.Connection,
    owner_id: UUID,
    requests: list[ItemRequest],
    body: JobIn | RegenerateIn,
    settings: Settings,
    config: dict[str, Any],
) -> BatchJob:
    mode = JobMode(config.get("mode", JobMode.LIVE.value))
    summary = planning.estimate(requests, settings, mode=mode)
    concurrency = body.concurrency if isinstance(body, JobIn) else 1
    cap = Decimal(str(body.cost_cap_usd)) if body.cost_cap_usd is not None else None
    batch = await repo.insert_batch(
        conn, owner_id=owner_id, total=len(requests), concurrency=concurrency, cost_cap_usd=cap,
        config={**config, "estimate": summary.model_dump(mode="json"),
                "priority": body.priority if isinstance(body, JobIn) else 5},
        estimated_completion_at=datetime.now(UTC)
        + timedelta(seconds=summary.estimated_duration_seconds),
    )  # fmt: skip
    await repo.insert_items(
        conn, owner_id=owner_id, batch_id=batch.id, requests=requests, dispatch_first=concurrency
    )
    return batch


async def dispatch(
    queue: ArqRedis, settings: Settings, batch_id: UUID, indexes: range | list[int], *, now: int
) -> None:
    """Enqueue item jobs: the first `now` at once, the rest parked (deferred) for a slot."""
    indexes = list(indexes)
    for start in range(0, len(indexes), _ENQUEUE_CHUNK):
        chunk = indexes[start : start + _ENQUEUE_CHUNK]
        await asyncio.gather(
            *(
                enqueue(
                    queue,
                    settings,
                    "generator",
                    GENERATE_ITEM,
                    str(batch_id),
                    index,
                    job_id=job_id("gen", batch_id, index),
                    defer_by=None if position < now else GENERATION_PARK_SECONDS,
                )
                for position, index in enumerate(chunk, start=start)
            )
        )
    JOBS_ENQUEUED.labels("generator", GENERATE_ITEM).inc(len(indexes))


def job_out(batch: BatchJob, **extra: Any) -> Any:
    """The API view of a batch; `extra` fills the fields of JobDetail / ActionOut."""
    eta_seconds = _eta_seconds(batch)
    fields = {
        "id": batch.id, "status": batch.status, "total_items": batch.total_items,
        "completed_items": batch.completed_items, "failed_items": batch.failed_items,
        "skipped_items": batch.skipped_items, "progress_percent": float(batch.progress_percent),
        "cost_so_far_usd": float(batch.cost_so_far_usd),
        "cost_cap_usd": float(batch.cost_cap_usd) if batch.cost_cap_usd is not None else None,
        "stop_reason": batch.stop_reason, "error": batch.error,
        "concurrency": batch.concurrency, "priority": batch.config.get("priority", 5),
        "estimate": batch.config.get("estimate", {}), "created_at": batch.created_at,
        "started_at": batch.started_at, "completed_at": batch.completed_at,
        "heartbeat_at": batch.heartbeat_at, "eta_seconds": eta_seconds,
        "mode": batch_jobs.mode_of(batch),
        "eta": datetime.now(UTC) + timedelta(seconds=eta_seconds) if eta_seconds is not None
        else None,
    }  # fmt: skip
    if "items_by_status" in extra:
        return JobDetail(**fields, **extra)
    if "affected_items" in extra:
        return ActionOut(**fields, **extra)
    return JobOut(**fields)


def _eta_seconds(batch: BatchJob) -> float | None:
    """Remaining items at the pace so far (or at the planned pace before the first one)."""
    if batch.status in TERMINAL_BATCH:
        return None
    done = batch.completed_items + batch.failed_items + batch.skipped_items
    remaining = max(0, batch.total_items - done)
    planned = batch.config.get("estimate", {}).get("estimated_duration_seconds")
    if batch.started_at is None or done == 0:
        if planned and batch.total_items:
            return round(float(planned) * remaining / batch.total_items, 1)
        return None
    elapsed = max(0.001, (datetime.now(UTC) - batch.started_at).total_seconds())
    return round(remaining * elapsed / done, 1)


async def detail(conn: asyncpg.Connection, owner_id: UUID, batch_id: UUID) -> JobDetail:
    """Status with per-status counts and the latest errors."""
    batch = await repo.get_batch(conn, batch_id, owner_id=owner_id)
    if batch is None:
        raise not_found()
    counts = await repo.status_counts(conn, batch_id)
    errors = [ItemError(**row) for row in await repo.recent_errors(conn, batch_id)]
    progress = await batch_jobs.progress(conn, batch)
    result: JobDetail = job_out(
        batch, items_by_status=counts, errors=errors, batch_progress=progress
    )
    return result


async def cancel(
    pool: asyncpg.Pool, queue: ArqRedis, settings: Settings, owner_id: UUID, batch_id: UUID
) -> ActionOut:
    """Queued items are cancelled at once; running ones finish their call or stop before it.

    A batch-mode job's runner is woken: it cancels the open Message Batches.
    """
    async with tenant_transaction(pool, owner_id) as conn:
        batch = await repo.get_batch(conn, batch_id, owner_id=owner_id, lock=True)
        if batch is None:
            raise not_found()
        if batch.status in TERMINAL_BATCH:
            raise InvalidTransition(
                f"the job is already {batch.status.value}",
                details={"status": batch.status.value, "allowed_from": ["queued", "running"]},
            )
        await repo.set_stop(
            conn, batch_id, reason=StopReason.CANCELLED.value, error=None, cancel=True
        )
        skipped = await repo.skip_queued(
            conn, batch_id, status=ItemStatus.CANCELLED, code="cancelled",
            error="cancelled by the user",
        )  # fmt: skip
        batch = await repo.get_batch(conn, batch_id)
    assert batch is not None
    if batch_jobs.mode_of(batch) == JobMode.BATCH:
        await batch_jobs.nudge(queue, settings, batch_id)
    result: ActionOut = job_out(batch, affected_items=skipped)
    return result


async def retry_failed(
    pool: asyncpg.Pool, queue: ArqRedis, settings: Settings, owner_id: UUID, batch_id: UUID
) -> ActionOut:
    """Re-run only the failed items (fresh attempts); completed ones are kept."""
    async with tenant_transaction(pool, owner_id) as conn:
        batch = await repo.get_batch(conn, batch_id, owner_id=owner_id, lock=True)
        if batch is None:
            raise not_found()
        if batch.status == BatchStatus.CANCELLED:
            raise InvalidTransition("a cancelled job cannot be retried")
        indexes = await repo.requeue_failed(conn, batch_id)
        if not indexes:
            raise Conflict("the job has no failed items", code="nothing_to_retry")
        batch = await repo.get_batch(conn, batch_id)
    assert batch is not None
    if batch_jobs.mode_of(batch) == JobMode.BATCH:
        await batch_jobs.start(queue, settings, batch_id, again=True)
        again: ActionOut = job_out(batch, affected_items=len(indexes))
        return again
    if batch.job_type == quality_enqueue.JOB_TYPE:
        for index in indexes:
            await forget_job(queue, quality_enqueue.job_key(batch_id, index))
        await quality_enqueue.dispatch_items(queue, settings, batch_id, indexes)
        judged: ActionOut = job_out(batch, affected_items=len(indexes))
        return judged
    for index in indexes:
        await forget_job(queue, job_id("gen", batch_id, index))
    await dispatch(queue, settings, batch_id, indexes, now=len(indexes))
    result: ActionOut = job_out(batch, affected_items=len(indexes))
    return result


def item_out(item: GenerationItem) -> ItemOut:
    """The API view of one item."""
    request = item.request
    return ItemOut(
        item_index=item.item_index, status=item.status, tier=item.tier,
        template_id=item.template_id, scenario_id=request.scenario_id,
        edge_case_id=request.edge_case_id, persona=request.persona, emotion=request.emotion,
        topic=request.topic, attempts=item.attempts, conversation_id=item.conversation_id,
        cost_usd=float(item.cost_usd), error_code=item.error_code, error=item.error,
        started_at=item.started_at, finished_at=item.finished_at,
    )  # fmt: skip


async def rate_limit(queue: ArqRedis, settings: Settings) -> RateLimitOut:
    """The fleet-wide limiter's state, read from the same Redis keys the generators use."""
    status = await build_limiter(queue, settings).status()
    return RateLimitOut(
        provider=settings.llm_provider or "offline",
        model="offline-sample" if settings.offline_llm else settings.llm_model,
        requests_per_minute=status.requests_per_minute,
        window_seconds=status.window_seconds,
        used=status.used,
        remaining=status.remaining,
        reset_at=status.reset_at,
        paused_until=status.paused_until,
        pause_reason=status.pause_reason,
        waiting=status.waiting,
        input_tokens=status.input_tokens.model_dump() if status.input_tokens else None,
        output_tokens=status.output_tokens.model_dump() if status.output_tokens else None,
    )
