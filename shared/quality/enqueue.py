"""Enqueue judging: a `quality_check` job with one item per conversation, run by the generator.

The one entry point other code calls (after an edit, a regenerate, an import, a landing):

    job = await enqueue_judging(pool, queue, settings, owner_id, conversation_ids, reason="edit")

It writes the job and its items in one tenant transaction, commits, then enqueues the items'
arq jobs (the API and the generator never call Claude for this themselves). Ids that are not
the tenant's, or deleted, are left out and listed in `missing`; with none left nothing is
written and None is returned. Inside a transaction of your own, call `plan` there and
`dispatch` after your commit.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final
from uuid import UUID

import asyncpg
import orjson

from shared.db.pool import tenant_transaction
from shared.db.repositories import generation as generation_repo
from shared.db.repositories import quality as repo
from shared.llm.pricing import CHARS_PER_TOKEN
from shared.models.conversation import Tier
from shared.models.generation import BatchJob, ItemRequest
from shared.quality.judge import TOOL, prefix
from shared.queue import (
    GENERATION_PARK_SECONDS,
    QUALITY_CHECK,
    RUN_MESSAGE_BATCHES,
    ArqRedis,
    enqueue,
    job_id,
)
from shared.settings import Settings

JOB_TYPE: Final = "quality_check"
OFFLINE_JUDGE_MODEL: Final = "offline-judge"
# Per turn, the transcript adds "[n] role: " and a newline around the stored text.
_TURN_OVERHEAD_CHARS: Final = 20
_ESTIMATED_OUTPUT_TOKENS: Final = 600
_ENQUEUE_CHUNK: Final = 50


@dataclass(frozen=True)
class JudgeJob:
    """The quality_check job written, and the requested ids that were not found."""

    batch: BatchJob
    conversation_ids: list[UUID]
    missing: list[UUID] = field(default_factory=list)


def judge_model(settings: Settings) -> str:
    """The model judgements are recorded with (the offline judge without an API key)."""
    return OFFLINE_JUDGE_MODEL if settings.offline_llm else settings.judge_model


def job_key(batch_id: UUID, index: int) -> str:
    """The deterministic arq job id of one judge item."""
    return job_id("judge", batch_id, index)


async def plan(
    conn: asyncpg.Connection,
    owner_id: UUID,
    conversation_ids: Sequence[UUID],
    settings: Settings,
    *,
    reason: str,
    cost_cap_usd: Decimal | None = None,
    batch: bool = False,
) -> JudgeJob | None:
    """Write the job and its items in the caller's tenant transaction (nothing enqueued).

    `batch`: send the judge calls as Message Batches (half price, answers within 24 h); the
    offline judge has none, so it always runs live.
    """
    wanted = list(dict.fromkeys(conversation_ids))
    found = {target.id: target for target in await repo.targets(conn, wanted)}
    order = [id for id in wanted if id in found]
    if not order:
        return None
    rubric = await repo.current_rubric(conn)
    fixed_chars = len(prefix(rubric)) + len(orjson.dumps(TOOL))
    requests = [_request(found[id], rubric.version, fixed_chars, settings) for id in order]
    concurrency = min(settings.judge_concurrency, len(requests))
    config = {
        "source": {"kind": "judge", "reason": reason[:100]},
        "mode": "batch" if batch and not settings.offline_llm else "live",
        "judge_model": judge_model(settings),
        "rubric_version": rubric.version,
        "priority": 5,
    }
    written = await generation_repo.insert_batch(
        conn, owner_id=owner_id, total=len(requests), concurrency=concurrency,
        cost_cap_usd=cost_cap_usd, config=config, estimated_completion_at=None,
        job_type=JOB_TYPE,
    )  # fmt: skip
    await generation_repo.insert_items(
        conn, owner_id=owner_id, batch_id=written.id, requests=requests,
        dispatch_first=concurrency,
    )  # fmt: skip
    missing = [id for id in wanted if id not in found]
    return JudgeJob(batch=written, conversation_ids=order, missing=missing)


def _request(
    target: repo.Target, rubric_version: int, fixed_chars: int, settings: Settings
) -> ItemRequest:
    threshold = target.threshold
    if threshold is None:
        threshold = settings.judge_flag_threshold
    chars = fixed_chars + target.chars + _TURN_OVERHEAD_CHARS * target.turn_count
    return ItemRequest(
        tier=Tier(target.tier), template_id=target.template_id, system_prompt="",
        user_prompt="", temperature=0.0, max_tokens=settings.judge_max_tokens,
        quality_threshold=threshold, estimated_input_tokens=math.ceil(chars / CHARS_PER_TOKEN),
        estimated_output_tokens=min(_ESTIMATED_OUTPUT_TOKENS, settings.judge_max_tokens),
        judge_conversation_id=target.id, judge_rubric_version=rubric_version,
    )  # fmt: skip


async def dispatch(queue: ArqRedis, settings: Settings, job: JudgeJob) -> None:
    """Enqueue the items' arq jobs after the commit: the first `concurrency` now, others parked."""
    batch = job.batch
    if batch.config.get("mode") == "batch":
        await enqueue(
            queue, settings, "generator", RUN_MESSAGE_BATCHES, str(batch.id),
            job_id=job_id("genbatch", batch.id),
        )  # fmt: skip
        return
    await dispatch_items(queue, settings, batch.id, range(batch.total_items), batch.concurrency)


async def dispatch_items(
    queue: ArqRedis, settings: Settings, batch_id: UUID, indexes: Sequence[int], now: int = 0
) -> None:
    """Enqueue these items' jobs: the first `now` (all, when 0) at once, the rest deferred."""
    ordered = list(indexes)
    now = now or len(ordered)
    for start in range(0, len(ordered), _ENQUEUE_CHUNK):
        chunk = list(enumerate(ordered))[start : start + _ENQUEUE_CHUNK]
        await asyncio.gather(
            *(_enqueue_one(queue, settings, batch_id, index, pos < now) for pos, index in chunk)
        )


async def _enqueue_one(
    queue: ArqRedis, settings: Settings, batch_id: UUID, index: int, at_once: bool
) -> None:
    await enqueue(
        queue, settings, "generator", QUALITY_CHECK, str(batch_id), index,
        job_id=job_key(batch_id, index), defer_by=None if at_once else GENERATION_PARK_SECONDS,
    )  # fmt: skip


async def enqueue_judging(
    pool: asyncpg.Pool,
    queue: ArqRedis,
    settings: Settings,
    owner_id: UUID,
    conversation_ids: Sequence[UUID],
    *,
    reason: str = "api",
    cost_cap_usd: Decimal | None = None,
    batch: bool = False,
) -> JudgeJob | None:
    """Judge these conversations of `owner_id`: write the job, commit, enqueue its items."""
    async with tenant_transaction(pool, owner_id) as conn:
        job = await plan(
            conn, owner_id, conversation_ids, settings, reason=reason,
            cost_cap_usd=cost_cap_usd, batch=batch,
        )  # fmt: skip
    if job is not None:
        await dispatch(queue, settings, job)
    return job
