"""The judge seen from the API: rubric versions, and enqueueing judgements (never a call)."""

from __future__ import annotations

from dataclasses import asdict
from decimal import Decimal
from uuid import UUID

import asyncpg

from services.api.conversations.schemas import BulkItemResult, BulkResult
from services.api.generation.schemas import JobOut
from services.api.generation.service import job_out
from services.api.quality.schemas import (
    CriterionOut,
    RubricIn,
    RubricOut,
    RubricVersion,
    RubricVersions,
    ScoreIn,
)
from services.api.transactions import committed_transaction
from shared.db.repositories import quality as repo
from shared.errors import NotFound, ValidationFailed
from shared.quality import enqueue as judging
from shared.quality.rubric import CRITERIA, Rubric, problems
from shared.queue import ArqRedis
from shared.settings import Settings


def rubric_out(rubric: Rubric) -> RubricOut:
    """The API view of a rubric version, criteria in their fixed order."""
    criteria = {
        name: CriterionOut(
            scale=rubric.scale(name),
            description=rubric.criteria[name].description,
            levels=rubric.criteria[name].levels,
        )
        for name in CRITERIA
    }
    return RubricOut(
        version=rubric.version, builtin=rubric.builtin, note=rubric.note, criteria=criteria
    )


async def current(conn: asyncpg.Connection) -> RubricOut:
    """The tenant's current rubric."""
    return rubric_out(await repo.current_rubric(conn))


async def version(conn: asyncpg.Connection, number: int) -> RubricOut:
    """One version of the tenant's rubric; 404 when there is none."""
    found = await repo.rubric_version(conn, number)
    if found is None:
        raise NotFound("no such rubric version")
    return rubric_out(found)


async def versions(conn: asyncpg.Connection) -> RubricVersions:
    """The history, newest first."""
    stored = await repo.rubric_versions(conn)
    items = [RubricVersion(**asdict(entry)) for entry in stored]
    return RubricVersions(items=items, current=items[0].version)


async def edit(
    conn: asyncpg.Connection, owner_id: UUID, user_id: UUID, body: RubricIn
) -> RubricOut:
    """Store the next version after checking every criterion and level (422 lists them all)."""
    raw = body.model_dump(exclude_unset=True)
    found = problems(raw)
    if found:
        raise ValidationFailed(f"the rubric has {len(found)} problem(s)", details=found)
    criteria = {name: raw["criteria"][name] for name in CRITERIA}
    stored = await repo.add_rubric_version(conn, owner_id, criteria, body.note, user_id)
    return rubric_out(stored)


async def score(
    pool: asyncpg.Pool,
    queue: ArqRedis,
    settings: Settings,
    owner_id: UUID,
    ids: list[UUID],
    options: ScoreIn,
) -> judging.JudgeJob | None:
    """Write a quality_check job for the tenant's conversations among `ids`, then enqueue it."""
    cap = Decimal(str(options.cost_cap_usd)) if options.cost_cap_usd is not None else None
    async with committed_transaction(pool, owner_id) as conn:
        job = await judging.plan(
            conn, owner_id, ids, settings, reason="api", cost_cap_usd=cap,
            batch=options.mode == "batch",
        )  # fmt: skip
    if job is not None:
        await judging.dispatch(queue, settings, job)
    return job


async def score_one(
    pool: asyncpg.Pool,
    queue: ArqRedis,
    settings: Settings,
    owner_id: UUID,
    id: UUID,
    options: ScoreIn,
) -> JobOut:
    """Judge one conversation: its job (404 when it is not the tenant's)."""
    job = await score(pool, queue, settings, owner_id, [id], options)
    if job is None:
        raise NotFound("no such conversation")
    created: JobOut = job_out(job.batch)
    return created


async def bulk_score(
    pool: asyncpg.Pool, queue: ArqRedis, settings: Settings, owner_id: UUID, ids: list[UUID]
) -> BulkResult:
    """Bulk action `score`: one job for the tenant's ids; every other id is a 404 result."""
    job = await score(pool, queue, settings, owner_id, ids, ScoreIn())
    queued = set(job.conversation_ids) if job is not None else set()
    results = [BulkItemResult(id=id, ok=True) if id in queued else _missing(id) for id in ids]
    succeeded = sum(result.ok for result in results)
    return BulkResult(
        results=results, succeeded=succeeded, failed=len(results) - succeeded,
        job_id=job.batch.id if job is not None else None,
    )  # fmt: skip


def _missing(id: UUID) -> BulkItemResult:
    error = NotFound("conversation not found", details={"id": str(id)})
    return BulkItemResult(id=id, ok=False, error=error.to_body()["error"])
