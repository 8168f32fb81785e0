"""Routes of the generation domain: jobs, their control, regenerate, logs, the rate limiter."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query

from services.api import pagination
from services.api.deps import HttpDep, PoolDep, PrincipalDep, QueueDep, SettingsDep, TenantConnDep
from services.api.generation import economy, service
from services.api.generation import regenerate as regeneration
from services.api.generation.schemas import (
    ActionOut,
    CostSummary,
    EstimateOut,
    ItemPage,
    JobDetail,
    JobIn,
    JobOut,
    JobPage,
    LogOut,
    LogPage,
    PricingOut,
    RateLimitOut,
    RegenerateIn,
)
from services.api.openapi import errors
from services.api.pagination import CursorQuery, LimitQuery
from shared.db.repositories import generation as repo
from shared.db.repositories import generation_logs as logs_repo
from shared.errors import ValidationFailed
from shared.models.bounds import INT4_MAX
from shared.models.generation import BatchStatus, ItemStatus, LogStatus

router = APIRouter()
_JOBS = "/v1/generation-jobs"


@router.post(_JOBS, status_code=202, response_model=JobOut, tags=["generation"])
async def create_job(
    body: JobIn, me: PrincipalDep, pool: PoolDep, queue: QueueDep, settings: SettingsDep
) -> JobOut:
    """Plan a batch (items or a tier plan); its rows are written, then one job per item queued."""
    return await service.create(pool, queue, settings, me.user_id, body)


@router.post(f"{_JOBS}/estimate", response_model=EstimateOut, tags=["generation"])
async def estimate_job(
    body: JobIn, me: PrincipalDep, conn: TenantConnDep, settings: SettingsDep, http: HttpDep
) -> EstimateOut:
    """Expected requests, tokens and cost of a batch, live and batched; nothing is enqueued."""
    return await service.estimate(conn, http, me.user_id, body, settings)


@router.get(_JOBS, response_model=JobPage, tags=["generation"])
async def list_jobs(
    me: PrincipalDep,
    conn: TenantConnDep,
    status: BatchStatus | None = None,
    limit: LimitQuery = 25,
    cursor: CursorQuery = None,
) -> JobPage:
    """The caller's generation jobs, newest first."""
    rows, total = await repo.page_batches(
        conn, owner_id=me.user_id, status=status.value if status else None,
        after=pagination.decode_newest(cursor), limit=limit,
    )  # fmt: skip
    page, next_cursor = pagination.split_page(rows, limit, lambda b: (b.created_at, b.id))
    return JobPage(items=[service.job_out(b) for b in page], next_cursor=next_cursor, total=total)


@router.get(f"{_JOBS}/{{job_id}}", response_model=JobDetail, tags=["generation"])
async def get_job(job_id: UUID, me: PrincipalDep, conn: TenantConnDep) -> JobDetail:
    """Counts, progress %, cost so far, ETA and the latest errors."""
    return await service.detail(conn, me.user_id, job_id)


@router.get(f"{_JOBS}/{{job_id}}/items", response_model=ItemPage, tags=["generation"])
async def list_items(
    job_id: UUID,
    me: PrincipalDep,
    conn: TenantConnDep,
    status: ItemStatus | None = None,
    limit: LimitQuery = 25,
    cursor: CursorQuery = None,
) -> ItemPage:
    """The batch's items in index order (the cursor is the last index seen)."""
    batch = await repo.get_batch(conn, job_id, owner_id=me.user_id)
    if batch is None:
        raise service.not_found()
    after = _index_cursor(cursor)
    rows = await repo.page_items(
        conn, job_id, status=status.value if status else None, after_index=after, limit=limit
    )
    page = rows[:limit]
    next_cursor = str(page[-1].item_index) if len(rows) > limit else None
    counts = await repo.status_counts(conn, job_id)
    total = counts.get(status.value, 0) if status else sum(counts.values())
    items = [service.item_out(item) for item in page]
    return ItemPage(items=items, next_cursor=next_cursor, total=total)


def _index_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    # isdigit() alone accepts '²'; the index is an int4 column.
    if not (cursor.isascii() and cursor.isdigit() and len(cursor) <= 10) or int(cursor) > INT4_MAX:
        raise ValidationFailed(
            "invalid cursor",
            details=[{"path": "cursor", "message": "malformed cursor", "type": "value_error"}],
        )
    return int(cursor)


@router.post(
    f"{_JOBS}/{{job_id}}/cancel", response_model=ActionOut, tags=["generation"],
    responses=errors(409),
)  # fmt: skip
async def cancel_job(
    job_id: UUID, me: PrincipalDep, pool: PoolDep, queue: QueueDep, settings: SettingsDep
) -> ActionOut:
    """Cancel: queued items are skipped; in-flight ones finish or stop; 409 when finished."""
    return await service.cancel(pool, queue, settings, me.user_id, job_id)


@router.post(
    f"{_JOBS}/{{job_id}}/retry-failed", status_code=202, response_model=ActionOut,
    tags=["generation"], responses=errors(409),
)  # fmt: skip
async def retry_failed(
    job_id: UUID, me: PrincipalDep, pool: PoolDep, queue: QueueDep, settings: SettingsDep
) -> ActionOut:
    """Re-run only the failed items; successes are kept; 409 when nothing failed."""
    return await service.retry_failed(pool, queue, settings, me.user_id, job_id)


@router.post(
    "/v1/conversations/{conversation_id}/regenerate", status_code=202, response_model=JobOut,
    tags=["generation"],
)  # fmt: skip
async def regenerate(
    conversation_id: UUID,
    me: PrincipalDep,
    pool: PoolDep,
    queue: QueueDep,
    settings: SettingsDep,
    body: RegenerateIn | None = None,
) -> JobOut:
    """A new one-item job whose conversation keeps this one as its parent; `from_turn` keeps
    the turns before it, `instructions` and `parameters` change what Claude is asked."""
    return await regeneration.regenerate(
        pool, queue, settings, me.user_id, conversation_id, body or RegenerateIn()
    )


@router.get("/v1/generation-logs", response_model=LogPage, tags=["generation"])
async def list_logs(
    me: PrincipalDep,
    conn: TenantConnDep,
    conversation_id: UUID | None = None,
    job_id: UUID | None = None,
    item_index: Annotated[int | None, Query(ge=0, le=INT4_MAX)] = None,
    status: LogStatus | None = None,
    purpose: Annotated[
        Literal["generation", "judge"] | None,
        Query(description="what the call was for: writing a conversation or judging one"),
    ] = None,
    created_from: Annotated[datetime | None, Query(alias="from")] = None,
    created_to: Annotated[datetime | None, Query(alias="to")] = None,
    limit: LimitQuery = 25,
    cursor: CursorQuery = None,
) -> LogPage:
    """One row per Claude attempt, newest first."""
    filters = {
        "conversation_id": conversation_id,
        "job_id": job_id,
        "item_index": item_index,
        "status": status.value if status else None,
        "purpose": purpose,
    }
    rows, total = await logs_repo.page(
        conn, owner_id=me.user_id, filters=filters, created_from=created_from,
        created_to=created_to, after=pagination.decode_newest(cursor), limit=limit,
    )  # fmt: skip
    page, next_cursor = pagination.split_page(rows, limit, lambda r: (r.created_at, r.id))
    items = [LogOut.model_validate(row.model_dump()) for row in page]
    return LogPage(items=items, next_cursor=next_cursor, total=total)


@router.get("/v1/generation-logs/cost-summary", response_model=CostSummary, tags=["generation"])
async def cost_summary(
    me: PrincipalDep,
    conn: TenantConnDep,
    created_from: Annotated[datetime | None, Query(alias="from")] = None,
    created_to: Annotated[datetime | None, Query(alias="to")] = None,
) -> CostSummary:
    """Requests, tokens and cost per UTC day and model, and the totals."""
    rows = await logs_repo.cost_summary(
        conn, owner_id=me.user_id, created_from=created_from, created_to=created_to
    )
    return economy.cost_summary(rows)


@router.get("/v1/generation/pricing", response_model=PricingOut, tags=["generation"])
async def pricing(_: PrincipalDep, settings: SettingsDep) -> PricingOut:
    """The per-model price table every estimate, cap and log row is computed from."""
    return economy.pricing(settings)


@router.get("/v1/generation/rate-limit", response_model=RateLimitOut, tags=["generation"])
async def rate_limit(_: PrincipalDep, queue: QueueDep, settings: SettingsDep) -> RateLimitOut:
    """The fleet-wide Claude limiter now: used, remaining, reset time, pause, waiting."""
    return await service.rate_limit(queue, settings)
