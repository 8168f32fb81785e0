"""Batch-mode jobs against the fake's Message Batches: once only, resubmission, cancel, prices."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest

from services.generator import batch_tasks
from services.generator.batch_orphans import parse_custom_id
from services.generator.engine import Deferred
from services.generator.llm.batches import BatchClient
from services.generator.llm.client import Timeout
from shared.llm.pricing import CacheTtl, Usage, cost_usd, table_for
from shared.runtime import WorkerResources
from shared.settings import Settings
from tests.fakes.anthropic import FakeAnthropic
from tests.generator.harness import (
    conversations,
    fake_settings,
    items,
    plain_items,
    rows,
    running_worker,
    wait_batch,
    worker_resources,
)
from tests.support.api import api_client
from tests.support.factories import Account

BATCH_SETTINGS = {"llm_batch_poll_min_seconds": 0.05, "llm_batch_poll_max_seconds": 0.2}


@pytest.fixture
def batch_settings(settings: Settings, claude: FakeAnthropic) -> Settings:
    """Settings aimed at the fake with fast polling."""
    return fake_settings(settings, claude.base_url, claude.api_key, **BATCH_SETTINGS)


@pytest.fixture
async def api(batch_settings: Settings, pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    """The API with the batch settings."""
    async with api_client(batch_settings) as client:
        yield client


@pytest.fixture
async def resources(
    batch_settings: Settings, pool: asyncpg.Pool, tmp_path: Path
) -> AsyncIterator[WorkerResources]:
    """A generator process's resources with the batch settings."""
    async with worker_resources(batch_settings, pool, tmp_path / "objects") as built:
        yield built


async def _create(api: httpx.AsyncClient, account: Account, body: dict[str, Any]) -> str:
    response = await api.post("/v1/generation-jobs", json=body, headers=account.headers)
    assert response.status_code == 202, response.text
    created: dict[str, Any] = response.json()
    assert created["mode"] == body.get("mode", "live")
    return str(created["id"])


async def _logs(pool: asyncpg.Pool, owner: UUID, batch_id: str) -> list[dict[str, Any]]:
    return await rows(
        pool, owner,
        "SELECT item_index, attempt, status, error_code, mode, price_entry, cache_ttl, "
        "input_tokens, output_tokens, cache_write_tokens, cache_read_tokens, cost_usd, "
        "list_cost_usd FROM generation_logs WHERE job_id = $1 ORDER BY item_index, attempt",
        UUID(batch_id),
    )  # fmt: skip


def _created_indexes(claude: FakeAnthropic) -> list[list[int]]:
    """The item indexes of every batch the fake accepted; each round's tag checked on the way."""
    created: list[list[int]] = []
    for custom_ids in claude.batch_creates:
        parsed = [parse_custom_id(c) for c in custom_ids]
        assert all(p is not None for p in parsed), custom_ids
        assert len({p[0] for p in parsed if p}) == 1  # one round tag per batch
        created.append([p[1] for p in parsed if p])
    return created


async def _pass(resources: WorkerResources, batch_id: str) -> float | None:
    """One run of the job as arq would make it: the delay it asks for, or None when done."""
    ctx: Any = {"resources": resources, "job_try": 1}
    try:
        await batch_tasks.run_message_batches(ctx, batch_id)
    except Deferred as deferred:
        return deferred.seconds
    return None


async def test_batch_lands_every_item_once_across_a_replica_kill(
    api: httpx.AsyncClient,
    account: Account,
    batch_settings: Settings,
    pool: asyncpg.Pool,
    tmp_path: Path,
    claude: FakeAnthropic,
) -> None:
    claude.configure(batch_delay=0.5)
    batch_id = await _create(api, account, {**plain_items(6), "mode": "batch"})
    async with worker_resources(batch_settings, pool, tmp_path / "a") as replica_a:
        assert await _pass(replica_a, batch_id) is not None  # submitted, results not ready
    # Replica A is gone (its HTTP client and Redis connection closed); B knows only PostgreSQL.
    async with worker_resources(batch_settings, pool, tmp_path / "b") as replica_b:
        deadline = time.monotonic() + 20
        while (delay := await _pass(replica_b, batch_id)) is not None:
            assert time.monotonic() < deadline
            await asyncio.sleep(delay)
        assert await _pass(replica_b, batch_id) is None  # a further run changes nothing

    assert _created_indexes(claude) == [list(range(6))]
    assert claude.requests == []  # no live call
    owner = account.user.id
    assert [(i["status"], i["attempts"]) for i in await items(pool, owner, batch_id)] == [
        ("completed", 1)
    ] * 6
    landed = await conversations(pool, owner, batch_id)
    assert sorted(c["generation_item_index"] for c in landed) == list(range(6))
    logs = await _logs(pool, owner, batch_id)
    assert [(entry["status"], entry["mode"]) for entry in logs] == [("success", "batch")] * 6
    detail = (await api.get(f"/v1/generation-jobs/{batch_id}", headers=account.headers)).json()
    assert (detail["status"], detail["completed_items"]) == ("completed", 6)
    assert detail["batch_progress"] == {
        "submitted": 6, "in_batch": 0, "landed": 6, "open_batches": 0, "rounds": 1,
    }  # fmt: skip


class _Crash(Exception):
    """The replica dies right after the API accepted its batch."""


async def _drive(resources: WorkerResources, batch_id: str) -> None:
    deadline = time.monotonic() + 20
    while (delay := await _pass(resources, batch_id)) is not None:
        assert time.monotonic() < deadline
        await asyncio.sleep(delay)


@pytest.mark.parametrize("loss", ["replica_killed", "create_timed_out"])
async def test_a_batch_whose_create_answer_was_lost_is_adopted_not_paid_twice(
    api: httpx.AsyncClient,
    account: Account,
    batch_settings: Settings,
    pool: asyncpg.Pool,
    tmp_path: Path,
    claude: FakeAnthropic,
    monkeypatch: pytest.MonkeyPatch,
    loss: str,
) -> None:
    claude.configure(batch_delay=0.3)
    batch_id = await _create(api, account, {**plain_items(5), "mode": "batch"})
    real_create = BatchClient.create

    async def create_then_lose(self: Any, requests: list[dict[str, Any]]) -> Any:
        await real_create(self, requests)  # accepted and billed at the API
        raise _Crash() if loss == "replica_killed" else Timeout("no answer within 60s")

    monkeypatch.setattr(BatchClient, "create", create_then_lose)
    async with worker_resources(batch_settings, pool, tmp_path / "a") as replica_a:
        if loss == "replica_killed":
            with pytest.raises(_Crash):
                await _pass(replica_a, batch_id)
        else:
            assert await _pass(replica_a, batch_id) is not None
    monkeypatch.setattr(BatchClient, "create", real_create)
    async with worker_resources(batch_settings, pool, tmp_path / "b") as replica_b:
        await _drive(replica_b, batch_id)

    assert _created_indexes(claude) == [list(range(5))]  # one batch, never a second
    owner = account.user.id
    assert [(i["status"], i["attempts"]) for i in await items(pool, owner, batch_id)] == [
        ("completed", 1)
    ] * 5
    logs = await _logs(pool, owner, batch_id)
    assert [(entry["status"], entry["mode"]) for entry in logs] == [("success", "batch")] * 5
    rounds = await rows(
        pool, owner, "SELECT status, provider_batch_id FROM message_batches WHERE job_id = $1",
        UUID(batch_id),
    )  # fmt: skip
    assert [r["status"] for r in rounds] == ["ended"]
    assert rounds[0]["provider_batch_id"].startswith("msgbatch_fake_")


async def test_a_create_that_never_reached_the_api_is_resubmitted_and_a_stranger_is_not_adopted(
    api: httpx.AsyncClient,
    account: Account,
    batch_settings: Settings,
    pool: asyncpg.Pool,
    tmp_path: Path,
    claude: FakeAnthropic,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    claude.configure(batch_delay=0.3)
    batch_id = await _create(api, account, {**plain_items(3), "mode": "batch"})
    real_create = BatchClient.create

    async def stranger_then_lose(self: Any, requests: list[dict[str, Any]]) -> Any:
        # Someone else's batch of the same size at the same moment; ours never arrives.
        await real_create(self, [{**r, "custom_id": f"other-{i}"} for i, r in enumerate(requests)])
        raise Timeout("no answer within 60s")

    monkeypatch.setattr(BatchClient, "create", stranger_then_lose)
    async with worker_resources(batch_settings, pool, tmp_path / "a") as replica_a:
        assert await _pass(replica_a, batch_id) is not None
    monkeypatch.setattr(BatchClient, "create", real_create)
    await asyncio.sleep(0.4)  # the stranger has ended: its results show it is not ours
    async with worker_resources(batch_settings, pool, tmp_path / "b") as replica_b:
        await _drive(replica_b, batch_id)

    stranger, ours = claude.batch_creates
    assert stranger == ["other-0", "other-1", "other-2"]
    assert [parse_custom_id(c) for c in ours] == [(ours[0].rpartition("-")[0], i) for i in range(3)]
    owner = account.user.id
    assert [(i["status"], i["attempts"]) for i in await items(pool, owner, batch_id)] == [
        ("completed", 1)
    ] * 3
    rounds = await rows(
        pool, owner, "SELECT status, error FROM message_batches WHERE job_id = $1 ORDER BY round",
        UUID(batch_id),
    )  # fmt: skip
    assert [r["status"] for r in rounds] == ["failed", "ended"]
    assert "submission outcome unknown" in rounds[0]["error"]


async def test_only_errored_and_expired_items_are_resubmitted_at_the_batch_price(
    api: httpx.AsyncClient,
    account: Account,
    batch_settings: Settings,
    resources: WorkerResources,
    claude: FakeAnthropic,
) -> None:
    claude.script_batches("errored", "succeeded", "expired", "succeeded")
    batch_id = await _create(api, account, {**plain_items(4), "mode": "batch"})
    async with running_worker(resources):
        done = await wait_batch(api, account.headers, batch_id)

    assert (done["status"], done["completed_items"], done["failed_items"]) == ("completed", 4, 0)
    assert _created_indexes(claude) == [list(range(4)), [0, 2]]
    owner = account.user.id
    logs = await _logs(resources.pool, owner, batch_id)
    assert [(e["item_index"], e["attempt"], e["status"], e["error_code"]) for e in logs] == [
        (0, 1, "failed", "batch_errored"), (0, 2, "success", None),
        (1, 1, "success", None),
        (2, 1, "timeout", "batch_expired"), (2, 2, "success", None),
        (3, 1, "success", None),
    ]  # fmt: skip
    entry, price = table_for(batch_settings).price_for(batch_settings.llm_model)
    for log in logs:
        usage = Usage(
            log["input_tokens"], log["output_tokens"], log["cache_write_tokens"],
            log["cache_read_tokens"],
        )  # fmt: skip
        expected = cost_usd(price, usage, batch=True, cache_ttl=CacheTtl.ONE_HOUR)
        assert (log["cost_usd"], log["price_entry"], log["mode"]) == (expected, entry, "batch")
    assert sum(log["cost_usd"] for log in logs) == Decimal(str(done["cost_so_far_usd"]))
    successes = [log for log in logs if log["status"] == "success"]
    # Half the list price (each figure is rounded to the micro-dollar on its own).
    half = Decimal("0.000001")
    assert all(log["cost_usd"] <= log["list_cost_usd"] / 2 + half for log in successes)


async def test_cancel_cancels_the_open_batch_and_its_items(
    api: httpx.AsyncClient, account: Account, resources: WorkerResources, claude: FakeAnthropic
) -> None:
    claude.configure(batch_delay=60.0)
    batch_id = await _create(api, account, {**plain_items(3), "mode": "batch"})
    async with running_worker(resources):
        deadline = time.monotonic() + 10
        while not claude.batch_creates:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        cancelled = await api.post(
            f"/v1/generation-jobs/{batch_id}/cancel", headers=account.headers
        )
        assert cancelled.status_code == 200, cancelled.text
        done = await wait_batch(api, account.headers, batch_id)

    assert (done["status"], done["completed_items"], done["skipped_items"]) == ("cancelled", 0, 3)
    states = await items(resources.pool, account.user.id, batch_id)
    assert {(i["status"], i["error_code"]) for i in states} == {("cancelled", "cancelled")}
    batches = claude.state.batch_store.batches.values()
    assert [b.status() for b in batches] == ["ended"]
    assert all(b.cancel_at is not None for b in batches)


async def test_auto_mode_batches_large_jobs_unless_the_deadline_is_near(
    api: httpx.AsyncClient, account: Account
) -> None:
    big = {**plain_items(3), "mode": "auto"}
    settings_min = 50  # LLM_BATCH_AUTO_MIN_ITEMS default
    estimate = (
        await api.post("/v1/generation-jobs/estimate", json=big, headers=account.headers)
    ).json()
    assert estimate["chosen_mode"] == "live"  # 3 < 50 items
    assert estimate["by_mode"]["batch"]["cost_usd"] < estimate["by_mode"]["live"]["cost_usd"]
    many = {**plain_items(settings_min), "mode": "auto"}
    estimate = (
        await api.post("/v1/generation-jobs/estimate", json=many, headers=account.headers)
    ).json()
    assert estimate["chosen_mode"] == "batch"
    soon = {**many, "deadline": "2000-01-01T00:00:00Z"}
    estimate = (
        await api.post("/v1/generation-jobs/estimate", json=soon, headers=account.headers)
    ).json()
    assert estimate["chosen_mode"] == "live"


async def test_cost_cap_limits_what_each_batch_may_cost(
    api: httpx.AsyncClient, account: Account, resources: WorkerResources, claude: FakeAnthropic
) -> None:
    # One item's worst case at the batch price (2x the prompt estimate written to the cache,
    # 1,500 output tokens) is about $0.012: a $0.03 cap lets two into a batch, never three.
    body = {**plain_items(5, max_tokens=1500), "mode": "batch", "cost_cap_usd": 0.03}
    batch_id = await _create(api, account, body)
    async with running_worker(resources):
        done = await wait_batch(api, account.headers, batch_id)

    assert claude.batch_creates
    assert all(1 <= len(ids) <= 2 for ids in claude.batch_creates)
    assert 0 < done["cost_so_far_usd"] <= 0.03
    assert done["completed_items"] + done["skipped_items"] == 5
    tiny = {**plain_items(2, max_tokens=1500), "mode": "batch", "cost_cap_usd": 0.001}
    stopped_id = await _create(api, account, tiny)
    async with running_worker(resources):
        stopped = await wait_batch(api, account.headers, stopped_id)
    assert (stopped["stop_reason"], stopped["skipped_items"]) == ("cost_cap_reached", 2)
