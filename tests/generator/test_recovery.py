"""The work reconciler: PostgreSQL says what should run; Redis is made to agree."""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

import httpx

from services.generator import items as item_state
from services.generator.recovery import BATCH_RUNS, ITEMS
from shared.queue import Presence, job_id, mark_seconds, presence, queue_name
from shared.recovery import reconcile
from shared.runtime import WorkerResources
from tests.generator.harness import plain_items
from tests.support.factories import Account

IN_PROGRESS = "arq:in-progress:"


async def _create(api: httpx.AsyncClient, account: Account, body: dict[str, Any]) -> str:
    created = await api.post("/v1/generation-jobs", json=body, headers=account.headers)
    assert created.status_code == 202, created.text
    batch_id: str = created.json()["id"]
    return batch_id


async def _look(resources: WorkerResources, jids: list[str]) -> dict[str, Presence]:
    ttl = mark_seconds(resources.settings.generator_job_timeout_seconds)
    return await presence(resources.redis, resources.settings, "generator", jids, mark_ttl=ttl)


async def _lose_redis_data(resources: WorkerResources) -> None:
    """What a Redis restarted without its data leaves of this test's queue: nothing."""
    redis = resources.redis
    await redis.delete(queue_name(resources.settings, "generator"))


async def test_items_whose_jobs_redis_lost_are_enqueued_again(
    gen_api: httpx.AsyncClient, account: Account, resources: WorkerResources
) -> None:
    batch_id = await _create(gen_api, account, plain_items(3))
    jids = [job_id("gen", batch_id, index) for index in range(3)]
    await _lose_redis_data(resources)
    for jid in jids:
        await resources.redis.delete(f"arq:job:{jid}")
    assert all(found.missing for found in (await _look(resources, jids)).values())

    counts = await reconcile(resources, ITEMS)

    assert counts["enqueued"] >= 3
    found = await _look(resources, jids)
    assert all(state.queued for state in found.values())
    assert (await reconcile(resources, ITEMS))["enqueued"] == 0  # idempotent


async def test_a_batch_mode_job_gets_its_runner_back_and_never_live_calls(
    gen_api: httpx.AsyncClient, account: Account, resources: WorkerResources
) -> None:
    batch_id = await _create(gen_api, account, {**plain_items(3), "mode": "batch"})
    runner, live = job_id("genbatch", batch_id), [job_id("gen", batch_id, i) for i in range(3)]
    assert (await _look(resources, [runner]))[runner].queued
    await _lose_redis_data(resources)
    await resources.redis.delete(f"arq:job:{runner}")

    # Its queued items belong to the batch runner: no live job is made for them.
    await reconcile(resources, ITEMS)
    assert all(found.missing for found in (await _look(resources, live)).values())
    assert (await reconcile(resources, BATCH_RUNS))["enqueued"] >= 1
    assert (await _look(resources, [runner]))[runner].queued
    assert (await reconcile(resources, BATCH_RUNS))["enqueued"] == 0  # idempotent


async def test_a_dead_runs_job_is_freed_without_waiting_for_arqs_timeout(
    gen_api: httpx.AsyncClient, account: Account, resources: WorkerResources
) -> None:
    batch_id = await _create(gen_api, account, plain_items(1))
    jid = job_id("gen", batch_id, 0)
    # A worker started the job (arq's mark, for its timeout) and died: its lease lapses.
    await resources.redis.set(f"{IN_PROGRESS}{jid}", b"1", px=600_000)
    dead = item_state.ItemRef(account.user.id, UUID(batch_id), 0, uuid.uuid4())
    assert (await item_state.claim(resources.pool, dead, 0.001)).state == "running"

    counts = await reconcile(resources, ITEMS)

    assert counts["freed"] >= 1
    assert not await resources.redis.exists(f"{IN_PROGRESS}{jid}")
    [state] = (await _look(resources, [jid])).values()
    assert state.queued


async def test_a_live_run_and_a_waiting_job_are_left_alone(
    gen_api: httpx.AsyncClient, account: Account, resources: WorkerResources
) -> None:
    batch_id = await _create(gen_api, account, plain_items(2))
    running, waiting = job_id("gen", batch_id, 0), job_id("gen", batch_id, 1)
    await resources.redis.set(f"{IN_PROGRESS}{running}", b"1", px=600_000)
    live = item_state.ItemRef(account.user.id, UUID(batch_id), 0, uuid.uuid4())
    assert (await item_state.claim(resources.pool, live, 60)).state == "running"

    await reconcile(resources, ITEMS)

    assert await resources.redis.exists(f"{IN_PROGRESS}{running}")
    found = await _look(resources, [running, waiting])
    assert found[waiting].queued
    assert not found[waiting].running


async def test_a_queued_items_job_marked_running_long_ago_is_freed(
    gen_api: httpx.AsyncClient, account: Account, resources: WorkerResources
) -> None:
    """Its worker took the job and died (or lost Redis) before claiming, or while giving back."""
    batch_id = await _create(gen_api, account, plain_items(2))
    old, young = job_id("gen", batch_id, 0), job_id("gen", batch_id, 1)
    ttl_ms = int(mark_seconds(resources.settings.generator_job_timeout_seconds) * 1000)
    await resources.redis.set(f"{IN_PROGRESS}{old}", b"1", px=1000)  # set ttl - 1 s ago
    await resources.redis.set(f"{IN_PROGRESS}{young}", b"1", px=ttl_ms - 500)  # just now

    await reconcile(resources, ITEMS)

    assert not await resources.redis.exists(f"{IN_PROGRESS}{old}")
    assert await resources.redis.exists(f"{IN_PROGRESS}{young}")
