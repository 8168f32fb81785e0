"""Several janitor replicas: a task never runs twice at once; a dead holder's lock expires."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from prometheus_client import REGISTRY

from services.janitor.context import JanitorDeps, redis_key
from services.janitor.lock import RedisLock
from services.janitor.runner import run_task
from shared.models.user import User
from shared.queue import create_redis
from tests.janitor.rows import ago, insert_export, row


def _runs(task: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "convoforge_janitor_runs_total", {"task": task, "outcome": outcome}
    )
    return value or 0.0


async def test_two_janitors_racing_on_one_task(deps: JanitorDeps, owner: User) -> None:
    exports = []
    for n in range(20):
        key = f"exports/{owner.id}/race-{n}.jsonl"
        await deps.storage.put(key, b"x")
        exports.append(
            await insert_export(deps.pool, owner.id, object_key=key, expires_at=ago(minutes=n + 1))
        )
    # A second replica: its own Redis connection, same Redis, same database and storage.
    other_redis = create_redis(deps.settings)
    replica = replace(deps, redis=other_redis)
    skipped_before = _runs("expire-exports", "skipped")
    try:
        reports = await asyncio.gather(
            run_task(deps, "expire-exports"), run_task(replica, "expire-exports")
        )
    finally:
        await other_redis.aclose()

    assert sorted(r.outcome for r in reports) == ["ok", "skipped"]
    assert sum(r.counts.get("expired", 0) for r in reports) == 20
    assert _runs("expire-exports", "skipped") == skipped_before + 1
    for export_id in exports:
        assert (await row(deps.pool, owner.id, "export_logs", export_id) or {})[
            "status"
        ] == "expired"
    # The lock is gone once the winner finished: the next run goes ahead.
    assert (await run_task(replica, "expire-exports")).outcome == "ok"


async def test_a_held_lock_skips_and_an_expired_one_does_not(local_deps: JanitorDeps) -> None:
    key = redis_key(local_deps.settings, "lock", "reconcile")
    crashed = RedisLock(local_deps.redis, key, ttl=0.3)
    assert await crashed.acquire()  # a replica that died while holding the lock
    assert (await run_task(local_deps, "reconcile")).outcome == "skipped"
    await asyncio.sleep(0.4)
    assert (await run_task(local_deps, "reconcile")).outcome == "ok"


async def test_lock_is_renewed_while_held_and_released_only_by_its_owner(
    local_deps: JanitorDeps,
) -> None:
    key = redis_key(local_deps.settings, "lock", "test")
    lock = RedisLock(local_deps.redis, key, ttl=0.3)
    async with lock.held() as acquired:
        assert acquired
        await asyncio.sleep(0.7)  # longer than the TTL: the keeper renewed it
        intruder = RedisLock(local_deps.redis, key, ttl=5)
        assert not await intruder.acquire()
        await intruder.release()  # not the intruder's to release
        assert await local_deps.redis.get(key) == lock.token.encode()
    assert await local_deps.redis.get(key) is None
