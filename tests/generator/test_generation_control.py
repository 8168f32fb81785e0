"""Control and idempotency: cancel, retry-failed, regenerate, duplicate runs, leases, slots."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any
from uuid import UUID

import httpx
import pytest

from services.generator import items as item_state
from services.generator import tasks
from services.generator.engine import Deferred
from shared.queue import GENERATE_ITEM, enqueue, job_id
from shared.runtime import WorkerContext, WorkerResources
from tests.fakes.anthropic import FakeAnthropic
from tests.generator.harness import (
    conversations,
    items,
    logs,
    plain_items,
    rows,
    running_worker,
    wait_batch,
)
from tests.support.factories import Account


async def _create(api: httpx.AsyncClient, account: Account, body: dict[str, Any]) -> str:
    created = await api.post("/v1/generation-jobs", json=body, headers=account.headers)
    assert created.status_code == 202, created.text
    batch_id: str = created.json()["id"]
    return batch_id


def _ctx(resources: WorkerResources) -> WorkerContext:
    return {"resources": resources, "redis": resources.redis, "job_try": 1}


async def _batch_row(resources: WorkerResources, owner: UUID, batch_id: str) -> dict[str, Any]:
    [row] = await rows(resources.pool, owner, "SELECT * FROM batch_jobs WHERE id = $1",
                       UUID(batch_id))  # fmt: skip
    return row


async def test_running_an_item_twice_lands_one_conversation_and_counts_once(
    gen_api: httpx.AsyncClient, account: Account, resources: WorkerResources, claude: FakeAnthropic
) -> None:
    batch_id = await _create(gen_api, account, plain_items(1))
    # The API already enqueued gen:{batch}:0; a second enqueue of the same id is a no-op.
    again = await enqueue(
        resources.redis, resources.settings, "generator", GENERATE_ITEM, batch_id, 0,
        job_id=job_id("gen", batch_id, 0),
    )  # fmt: skip
    assert again.created is False

    first = await tasks.generate_item(_ctx(resources), batch_id, 0)
    second = await tasks.generate_item(_ctx(resources), batch_id, 0)

    assert (first["outcome"], second["outcome"]) == ("completed", "done")
    assert len(claude.requests) == 1
    assert len(await conversations(resources.pool, account.user.id, batch_id)) == 1
    batch = await _batch_row(resources, account.user.id, batch_id)
    assert (batch["completed_items"], batch["status"]) == (1, "completed")
    [log_row] = await logs(resources.pool, account.user.id, batch_id)
    assert batch["cost_so_far_usd"] == log_row["cost_usd"]


async def test_a_lapsed_lease_is_taken_over_and_a_live_one_is_left_alone(
    gen_api: httpx.AsyncClient, account: Account, resources: WorkerResources, claude: FakeAnthropic
) -> None:
    batch_id = await _create(gen_api, account, plain_items(1))
    owner, batch = account.user.id, UUID(batch_id)
    # A worker took the item and died: its lease is live for a moment, then lapses.
    dead = item_state.ItemRef(owner, batch, 0, uuid.uuid4())
    claim = await item_state.claim(resources.pool, dead, lease_seconds=0.6)
    assert claim.state == item_state.ClaimState.RUNNING

    with pytest.raises(Deferred, match="busy"):
        await tasks.generate_item(_ctx(resources), batch_id, 0)
    await asyncio.sleep(0.7)
    result = await tasks.generate_item(_ctx(resources), batch_id, 0)

    assert result["outcome"] == "completed"
    # The dead run can no longer write: its lease is gone.
    assert not await item_state.heartbeat(resources.pool, dead, 5.0)
    assert await item_state.release(resources.pool, dead) is False
    batch_row = await _batch_row(resources, owner, batch_id)
    assert (batch_row["completed_items"], len(claude.requests)) == (1, 1)


async def test_cancel_skips_queued_items_and_lets_the_call_in_flight_finish(
    gen_api: httpx.AsyncClient, account: Account, resources: WorkerResources, claude: FakeAnthropic
) -> None:
    claude.configure(latency=0.6)
    batch_id = await _create(gen_api, account, {**plain_items(5), "concurrency": 1})
    async with running_worker(resources):
        await _until(lambda: len(claude.requests) >= 1)
        cancelled = await gen_api.post(
            f"/v1/generation-jobs/{batch_id}/cancel", headers=account.headers
        )
        assert cancelled.status_code == 200, cancelled.text
        assert (cancelled.json()["status"], cancelled.json()["affected_items"]) == ("cancelled", 4)
        done = await wait_batch(gen_api, account.headers, batch_id)

    assert (done["status"], done["stop_reason"]) == ("cancelled", "cancelled")
    assert (done["completed_items"], done["skipped_items"]) == (1, 4)
    assert len(claude.requests) == 1
    statuses = [i["status"] for i in await items(resources.pool, account.user.id, batch_id)]
    assert statuses == ["completed"] + ["cancelled"] * 4
    again = await gen_api.post(f"/v1/generation-jobs/{batch_id}/cancel", headers=account.headers)
    assert again.status_code == 409


async def test_retry_failed_reruns_only_the_failed_items(
    gen_api: httpx.AsyncClient, account: Account, resources: WorkerResources, claude: FakeAnthropic
) -> None:
    claude.script("malformed")
    batch_id = await _create(gen_api, account, {**plain_items(3), "concurrency": 1})
    async with running_worker(resources):
        first = await wait_batch(gen_api, account.headers, batch_id)
        assert (first["completed_items"], first["failed_items"]) == (2, 1)
        retried = await gen_api.post(
            f"/v1/generation-jobs/{batch_id}/retry-failed", headers=account.headers
        )
        assert retried.status_code == 202, retried.text
        assert retried.json()["affected_items"] == 1
        done = await wait_batch(gen_api, account.headers, batch_id)

    assert (done["status"], done["completed_items"], done["failed_items"]) == ("completed", 3, 0)
    assert len(claude.requests) == 4
    landed = await conversations(resources.pool, account.user.id, batch_id)
    assert sorted(c["generation_item_index"] for c in landed) == [0, 1, 2]
    nothing = await gen_api.post(
        f"/v1/generation-jobs/{batch_id}/retry-failed", headers=account.headers
    )
    assert (nothing.status_code, nothing.json()["error"]["code"]) == (409, "nothing_to_retry")


async def test_concurrency_caps_the_items_in_flight(
    gen_api: httpx.AsyncClient, account: Account, resources: WorkerResources, claude: FakeAnthropic
) -> None:
    claude.configure(latency=0.15)
    batch_id = await _create(gen_api, account, {**plain_items(6), "concurrency": 2})
    async with running_worker(resources):
        done = await wait_batch(gen_api, account.headers, batch_id, within=20)

    assert done["completed_items"] == 6
    spans = await rows(
        resources.pool, account.user.id,
        "SELECT started_at, finished_at FROM generation_items WHERE batch_id = $1",
        UUID(batch_id),
    )  # fmt: skip
    # The most items in flight at once is reached at some item's start: count the spans open
    # then. (Counting every span that overlaps one item over-counts: a long item can overlap two
    # short ones that ran one after the other.)
    in_flight_at_starts = [
        sum(1 for s in spans if s["started_at"] <= span["started_at"] < s["finished_at"])
        for span in spans
    ]
    assert max(in_flight_at_starts) == 2  # both slots were used, and never a third


async def test_regenerate_makes_a_child_conversation(
    gen_api: httpx.AsyncClient, account: Account, resources: WorkerResources, claude: FakeAnthropic
) -> None:
    batch_id = await _create(gen_api, account, plain_items(1, temperature=0.3))
    async with running_worker(resources):
        await wait_batch(gen_api, account.headers, batch_id)
        [original] = await conversations(resources.pool, account.user.id, batch_id)
        response = await gen_api.post(
            f"/v1/conversations/{original['id']}/regenerate",
            json={"temperature": 0.9},
            headers=account.headers,
        )
        assert response.status_code == 202, response.text
        child_batch = response.json()["id"]
        await wait_batch(gen_api, account.headers, child_batch)

    [child] = await conversations(resources.pool, account.user.id, child_batch)
    assert (child["parent_id"], child["parent_type"]) == (original["id"], "conversation")
    first, second = claude.requests
    assert first.body["messages"] == second.body["messages"]
    assert (first.body["temperature"], second.body["temperature"]) == (0.3, 0.9)
    missing = await gen_api.post(
        f"/v1/conversations/{uuid.uuid4()}/regenerate", headers=account.headers
    )
    assert missing.status_code == 404


async def _until(condition: Callable[[], bool], within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - polling a thread's state, not an event
            await asyncio.sleep(0.02)
