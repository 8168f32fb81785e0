"""The work reconciler: PostgreSQL is the source of truth for what should be running.

Every generator and exporter process runs one (at start, then every RECOVERY_INTERVAL_SECONDS;
one replica per period takes the turn through a Redis key that expires). For each tenant it
lists the unfinished work the database knows of and looks each job id up in Redis:

- a job that is missing (Redis restarted empty, or a job was dropped) is enqueued again under
  its deterministic id, so a duplicate is impossible and a job that merely finished meanwhile
  is a no-op when it runs;
- work whose run stopped beating (killed worker) while arq still marks its job running has the
  mark removed, so any replica picks the job up now instead of after arq's job timeout; the job
  takes the lease (items) or the row (exports) over.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final
from uuid import UUID

import asyncpg

from shared.db.pool import acquire, tenant_transaction
from shared.db.repositories import users as users_repo
from shared.db.repositories.recovery import OpenWork
from shared.logging import get_logger
from shared.queue import Presence, Service, mark_seconds, presence, revive, take_turn
from shared.resilience import READINESS
from shared.runtime import WorkerResources
from shared.settings import Settings

log = get_logger(__name__)
_LOOKUP_CHUNK: Final = 500
# Queued work whose job has been marked running this long has no live run (it claims in ms).
_MIN_MARK_GRACE_SECONDS: Final = 5.0


@dataclass(frozen=True)
class Kind:
    """One kind of work: how to list it, and the job that runs it."""

    service: Service
    # The job function, or (items of several job types) the function for one piece of work.
    function: str | Callable[[OpenWork], str]
    job_id: Callable[[OpenWork], str]
    args: Callable[[OpenWork], tuple[object, ...]]
    list_open: Callable[[asyncpg.Connection, WorkerResources], Awaitable[list[OpenWork]]]
    # The service's longest job timeout: arq's running mark lasts that plus 10 s.
    job_timeout: Callable[[Settings], float]
    # Whether a job marked running for longer than the grace on work that is still queued is
    # dead (items and exports claim their work within milliseconds). A batch runner's pass may
    # legitimately run long without changing its job's row, so its kind turns this off.
    stale_mark_is_dead: bool = True


async def reconcile(resources: WorkerResources, kind: Kind) -> dict[str, int]:
    """One pass over every tenant; returns how many jobs were freed and enqueued."""
    counts = {"freed": 0, "enqueued": 0}
    async with acquire(resources.pool) as conn:
        owners = await users_repo.list_user_ids(conn)
    for owner in owners:
        for outcome in await _reconcile_owner(resources, kind, owner):
            counts[outcome] += 1
    return counts


async def _reconcile_owner(resources: WorkerResources, kind: Kind, owner: UUID) -> list[str]:
    async with tenant_transaction(resources.pool, owner) as conn:
        work = await kind.list_open(conn, resources)
    outcomes: list[str] = []
    for start in range(0, len(work), _LOOKUP_CHUNK):
        outcomes += await _revive_chunk(resources, kind, work[start : start + _LOOKUP_CHUNK])
    return outcomes


async def _revive_chunk(
    resources: WorkerResources, kind: Kind, work: Sequence[OpenWork]
) -> list[str]:
    settings, redis = resources.settings, resources.redis
    jids = [kind.job_id(one) for one in work]
    ttl = mark_seconds(kind.job_timeout(settings))
    found = await presence(redis, settings, kind.service, jids, mark_ttl=ttl)
    grace = max(_MIN_MARK_GRACE_SECONDS, 2 * settings.recovery_interval_seconds)
    outcomes = []
    for one in work:
        jid = kind.job_id(one)
        state = found[jid]
        if not _needs_help(one, state, grace if kind.stale_mark_is_dead else None):
            continue
        function = kind.function if isinstance(kind.function, str) else kind.function(one)
        outcome = await revive(
            redis, settings, kind.service, function, *kind.args(one), job_id=jid, found=state
        )
        log.warning("recovery.job_revived", job_id=jid, outcome=outcome, lapsed=one.lapsed)
        outcomes.append(outcome)
    return outcomes


def _needs_help(work: OpenWork, state: Presence, grace: float | None) -> bool:
    """Missing jobs; running marks of a lapsed run, or on queued work for longer than `grace`.

    A job marked running whose work is still queued after `grace` is not running anywhere: its
    worker died (or lost Redis) between taking the job and claiming the work, or while giving
    it back; arq would leave it alone until the mark expires (the job timeout + 10 s).
    """
    if state.missing:
        return True
    if not state.running:
        return False
    marked = state.marked_for
    return work.lapsed or (grace is not None and marked is not None and marked > grace)


async def run_forever(resources: WorkerResources, kinds: Sequence[Kind]) -> None:
    """Reconcile every kind of a service at start and every RECOVERY_INTERVAL_SECONDS."""
    interval = resources.settings.recovery_interval_seconds
    service = kinds[0].service
    while True:
        try:
            if await take_turn(resources.redis, resources.settings, service, interval * 0.9):
                for kind in kinds:
                    counts = await reconcile(resources, kind)
                    if any(counts.values()):
                        log.warning("recovery.pass", service=service, job=kind.function, **counts)
                READINESS.up("postgresql")
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            READINESS.down("postgresql", f"{type(exc).__name__}: {exc}")
            log.warning("recovery.pass_failed", service=service, error=str(exc))
        except Exception as exc:  # Redis down (its errors are not OSError) or anything else
            log.warning("recovery.pass_failed", service=service, error=str(exc))
        await asyncio.sleep(interval)


def start(resources: WorkerResources, *kinds: Kind) -> list[asyncio.Task[None]]:
    """Run the reconciler over `kinds` (one service's) in this worker process, unless disabled."""
    service = kinds[0].service
    assert all(kind.service == service for kind in kinds)
    if not resources.settings.recovery_enabled:
        log.warning("recovery.disabled", service=service)
        return []
    return [asyncio.create_task(run_forever(resources, kinds), name=f"recovery-{service}")]
