"""Generator jobs: `ping`, and `generate_item` (one conversation of a batch, safe to run twice)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from dataclasses import dataclass
from typing import Any, Final
from uuid import UUID

from services.generator import items
from services.generator.engine import LANDING_MARGIN_SECONDS, Budget, Deferred, ItemRun
from services.generator.items import ClaimState, ItemRef
from services.generator.judging import run as judging
from services.generator.judging.hook import after_landing
from services.generator.providers import build_fleet, build_judge_fleet
from shared.events import publish
from shared.logging import bound_context, get_logger
from shared.models.generation import BatchJob, GenerationItem
from shared.quality.enqueue import JOB_TYPE
from shared.queue import (
    GENERATE_ITEM,
    GENERATION_PARK_SECONDS,
    QUALITY_CHECK,
    enqueue,
    job_id,
    wake,
)
from shared.runtime import WorkerContext, WorkerResources, instrumented, ping_payload

log = get_logger(__name__)
# arq counts every run of a job (parks and deferrals included) against max_tries; the job gives
# the item a final answer itself on its last allowed run instead of letting arq drop it.
MAX_JOB_TRIES: Final = 5000
# Unexpected errors (database or storage down) retry the job with backoff this many times.
MAX_ERROR_RETRIES: Final = 6
# While PostgreSQL or Redis cannot be reached the job comes back this soon (with jitter), so
# work resumes seconds after an outage ends, whatever this job's history of deferrals.
OUTAGE_RETRY_SECONDS: Final = 5.0
_FINISHED: Final = frozenset({"completed", "failed", "stopped"})


@instrumented("generator")
async def ping(ctx: WorkerContext) -> dict[str, Any]:
    """Round-trip check: proves this worker reaches PostgreSQL and storage."""
    return await ping_payload(ctx)


@dataclass(frozen=True)
class ItemKind:
    """A job function that runs items of a batch: generate_item or quality_check."""

    function: str
    prefix: str


GENERATION: Final = ItemKind(GENERATE_ITEM, "gen")
JUDGE: Final = ItemKind(QUALITY_CHECK, "judge")
_KINDS: Final = {"generation": GENERATION, JOB_TYPE: JUDGE}
_UNKNOWN: Final = "unknown"


@instrumented("generator")
async def generate_item(ctx: WorkerContext, batch_id: str, item_index: int) -> dict[str, Any]:
    """Generate item `item_index` of batch `batch_id`; a no-op if it already finished."""
    return await _item_job(ctx, batch_id, item_index, GENERATION)


@instrumented("generator")
async def quality_check(ctx: WorkerContext, batch_id: str, item_index: int) -> dict[str, Any]:
    """Judge item `item_index` of quality_check job `batch_id`; a no-op once finished."""
    return await _item_job(ctx, batch_id, item_index, JUDGE)


async def _item_job(
    ctx: WorkerContext, batch_id: str, item_index: int, kind: ItemKind
) -> dict[str, Any]:
    resources = ctx["resources"]
    started = time.monotonic()
    job_try = ctx.get("job_try") or 1
    batch = UUID(str(batch_id))
    with bound_context(batch_id=batch, item_index=item_index):
        try:
            owner = await _owner(resources, batch, job_try)
            if owner is None:
                log.warning("generator.item.unknown_batch")
                return {"outcome": "missing"}
            ref = ItemRef(owner, batch, int(item_index), uuid.uuid4())
            with bound_context(owner_id=owner):
                outcome, parking = await _guarded(resources, ref, started)
                await publish(resources.redis, resources.settings, "generation", batch, outcome)
                if parking and outcome in _FINISHED:
                    await wake_parked(resources, owner, batch, _KINDS.get(parking, kind))
                return {"outcome": outcome}
        except Deferred as deferred:
            if job_try >= MAX_JOB_TRIES - 1:
                return {"outcome": await _last_try(resources, batch, int(item_index), deferred)}
            raise


async def _owner(resources: WorkerResources, batch: UUID, job_try: int) -> UUID | None:
    try:
        return await items.owner_of(resources.pool, batch)
    except Exception as exc:  # database down: arq keeps the job; try again later
        log.warning("generator.item.owner_lookup_failed", error=str(exc), job_try=job_try)
        raise Deferred(_outage_retry(), "error") from exc


async def _guarded(
    resources: WorkerResources, ref: ItemRef, started: float
) -> tuple[str, str | None]:
    """Run the item; turn unexpected errors into a retry with backoff, then a failure.

    Returns the outcome and, when the batch may have parked items waiting for a slot, its job
    type (`_UNKNOWN` when the run failed before the batch was read).
    """
    try:
        return await _run(resources, ref, started)
    except (Deferred, asyncio.CancelledError):
        raise
    except Exception as exc:
        log.exception("generator.item.error", error=type(exc).__name__)
        return await _errored(resources, ref, exc), _UNKNOWN


async def _run(resources: WorkerResources, ref: ItemRef, started: float) -> tuple[str, str | None]:
    settings = resources.settings
    lease_s = 3 * settings.generator_heartbeat_seconds
    claim = await items.claim(resources.pool, ref, lease_s)
    if claim.state == ClaimState.PARKED:
        raise Deferred(GENERATION_PARK_SECONDS * random.uniform(0.8, 1.2), "parked")
    if claim.state == ClaimState.BUSY:
        raise Deferred(claim.wait_s + 0.5, "busy")
    if claim.state != ClaimState.RUNNING or claim.item is None or claim.batch is None:
        return claim.state.value, None
    await publish(resources.redis, settings, "generation", ref.batch_id, "item_started")
    budget = Budget(
        deadline=started + settings.generator_job_timeout_seconds - 1.0,
        call_need=settings.llm_timeout_seconds + LANDING_MARGIN_SECONDS,
    )
    batch = claim.batch
    run = await _build_run(resources, ref, (batch, claim.item), budget)
    if not isinstance(run, ItemRun):
        outcome = await judging.refuse(resources.pool, ref, claim.item, run)
        return outcome, batch.job_type
    beat = asyncio.create_task(_heartbeat(resources, ref, lease_s))
    try:
        outcome = await run.run()
    except asyncio.CancelledError:
        await asyncio.shield(items.release(resources.pool, ref))
        raise
    finally:
        beat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beat
    if outcome == "stopped" and isinstance(run, judging.JudgeRun):
        await judging.record_stopped(run)
    return outcome, batch.job_type if batch.concurrency < batch.total_items else None


async def _build_run(
    resources: WorkerResources,
    ref: ItemRef,
    claimed: tuple[BatchJob, GenerationItem],
    budget: Budget,
) -> ItemRun | judging.Refusal:
    """A generation run (with its after-landing hook) or a judge run (or why it cannot run)."""
    batch = claimed[0]
    if batch.job_type == JOB_TYPE:
        fleet = build_judge_fleet(resources.http, resources.redis, resources.settings)
        return await judging.prepare(fleet, resources.pool, resources.storage, ref, claimed, budget)
    fleet = build_fleet(resources.http, resources.redis, resources.settings)
    run = ItemRun(fleet, resources.pool, resources.storage, ref, claimed, budget)
    run.on_landed = after_landing(resources, batch)
    return run


async def _heartbeat(resources: WorkerResources, ref: ItemRef, lease_s: float) -> None:
    """Extend the lease and the batch heartbeat until cancelled."""
    interval = resources.settings.generator_heartbeat_seconds
    while True:
        await asyncio.sleep(interval)
        try:
            if not await items.heartbeat(resources.pool, ref, lease_s):
                log.warning("generator.item.lease_lost")
                return
        except Exception as exc:  # a missed beat is not fatal; the lease has 3x slack
            log.warning("generator.item.heartbeat_failed", error=str(exc))


async def _errored(resources: WorkerResources, ref: ItemRef, exc: Exception) -> str:
    """Retry the job later (backing off); after MAX_ERROR_RETRIES fail the item."""
    key = f"{resources.settings.queue_prefix}:gen-errors:{ref.batch_id}:{ref.index}"
    try:
        # The item first: if Redis is what failed, it is back in the queue all the same.
        released = await items.release(resources.pool, ref)
        errors = int(await resources.redis.incr(key))
        await resources.redis.expire(key, 86_400)
        if errors > MAX_ERROR_RETRIES and released:
            await items.fail_unclaimed(
                resources.pool, ref.owner_id, ref.batch_id, ref.index, "internal_error",
                f"{type(exc).__name__}: {exc}",
            )  # fmt: skip
            return "failed"
    except Exception as inner:  # still down: arq keeps the job, try again soon
        log.warning("generator.item.recovery_failed", error=str(inner))
        raise Deferred(_outage_retry(), "error") from inner
    raise Deferred(min(300.0, 2.0**errors), "error")


def _outage_retry() -> float:
    return OUTAGE_RETRY_SECONDS * random.uniform(0.8, 1.2)


async def _last_try(resources: WorkerResources, batch: UUID, index: int, deferred: Deferred) -> str:
    """arq will not run this job again: give the item its final answer now."""
    owner = await items.owner_of(resources.pool, batch)
    if owner is None:
        return "missing"
    await items.fail_unclaimed(
        resources.pool, owner, batch, index, "deferred_too_often", deferred.reason
    )
    return "failed"


async def wake_parked(
    resources: WorkerResources, owner_id: UUID, batch_id: UUID, kind: ItemKind = GENERATION
) -> list[int]:
    """Give freed concurrency slots to parked items: bring their deferred jobs forward."""
    woken = await items.slots_to_wake(resources.pool, owner_id, batch_id)
    for index in woken:
        jid = job_id(kind.prefix, batch_id, index)
        if not await wake(resources.redis, resources.settings, "generator", jid):
            await enqueue(
                resources.redis, resources.settings, "generator", kind.function,
                str(batch_id), index, job_id=jid,
            )  # fmt: skip
    return woken
