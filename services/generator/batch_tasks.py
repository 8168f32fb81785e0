"""The `run_message_batches` job: one pass of a batch-mode generation job, then defer to poll."""

from __future__ import annotations

import time
import uuid
from typing import Any, Final
from uuid import UUID

from services.generator import items
from services.generator.batch_mode import BatchRunner
from services.generator.engine import Deferred
from services.generator.judging.batched import owner_batch_type
from services.generator.providers import build_batch_client, build_fleet, build_judge_fleet
from shared.db.pool import tenant_transaction
from shared.db.repositories import generation as repo
from shared.logging import bound_context, get_logger
from shared.models.generation import ItemStatus, StopReason
from shared.quality.enqueue import JOB_TYPE
from shared.runtime import WorkerContext, WorkerResources, instrumented

log = get_logger(__name__)
_BUSY_RETRY_SECONDS: Final = 5.0
_RELEASE_LUA: Final = (
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
)


def lock_key(resources: WorkerResources, batch_id: UUID) -> str:
    """One pass at a time per job, whichever replica runs it."""
    return f"{resources.settings.queue_prefix}:genbatch-lock:{batch_id}"


@instrumented("generator")
async def run_message_batches(ctx: WorkerContext, batch_id: str) -> dict[str, Any]:
    """Advance a batch-mode job; `Deferred` until its next poll, a result once it is done."""
    resources = ctx["resources"]
    started = time.monotonic()
    batch = UUID(str(batch_id))
    with bound_context(batch_id=batch):
        owner = await items.owner_of(resources.pool, batch)
        if owner is None:
            return {"outcome": "missing"}
        token = uuid.uuid4().hex
        timeout = resources.settings.generator_job_timeout_seconds
        key = lock_key(resources, batch)
        if not await resources.redis.set(key, token, nx=True, px=int(timeout * 1000)):
            raise Deferred(_BUSY_RETRY_SECONDS, "busy")
        try:
            delay = await _pass(resources, owner, batch, started + timeout - 2.0)
        finally:
            await resources.redis.eval(_RELEASE_LUA, 1, key, token)  # type: ignore[misc]
    if delay is None:
        return {"outcome": "done"}
    raise Deferred(delay, "batch_poll")


async def _pass(
    resources: WorkerResources, owner: UUID, batch: UUID, deadline: float
) -> float | None:
    judge = await owner_batch_type(resources, owner, batch) == JOB_TYPE
    build = build_judge_fleet if judge else build_fleet
    fleet = build(resources.http, resources.redis, resources.settings)
    client = build_batch_client(resources.http, resources.settings)
    if client is None:
        await _refuse(resources, owner, batch)
        return None
    runner = BatchRunner(resources, fleet, client, owner, batch, deadline, judge=judge)
    return await runner.step()


async def _refuse(resources: WorkerResources, owner: UUID, batch: UUID) -> None:
    """No key (or offline): Message Batches cannot run; the job stops as auth_failed."""
    message = "batch mode needs Claude with ANTHROPIC_API_KEY set"
    log.error("generator.batch.no_key")
    async with tenant_transaction(resources.pool, owner) as conn:
        await repo.get_batch(conn, batch, lock=True)
        reason = StopReason.AUTH_FAILED.value
        await repo.set_stop(conn, batch, reason=reason, error=message, cancel=False)
        await repo.skip_queued(conn, batch, status=ItemStatus.SKIPPED, code=reason, error=message)
