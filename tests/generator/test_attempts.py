"""Every paid call on the books: attempt rows before the call, lost calls, held answers."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any
from uuid import UUID

import httpx
import pytest

from services.generator import items as item_state
from services.generator import tasks
from services.generator.attempts import held
from shared.models.generation import LogStatus, NewLog
from shared.runtime import WorkerContext, WorkerResources
from tests.fakes.anthropic import FakeAnthropic
from tests.generator.harness import logs, plain_items, rows
from tests.support.factories import Account


async def _create(api: httpx.AsyncClient, account: Account, body: dict[str, Any]) -> str:
    created = await api.post("/v1/generation-jobs", json=body, headers=account.headers)
    assert created.status_code == 202, created.text
    batch_id: str = created.json()["id"]
    return batch_id


def _ctx(resources: WorkerResources) -> WorkerContext:
    return {"resources": resources, "redis": resources.redis, "job_try": 1}


def _entry(status: LogStatus = LogStatus.IN_FLIGHT, **fields: Any) -> NewLog:
    return NewLog(attempt=1, model="claude-test", parameters={}, prompt_sha256="0" * 64,
                  status=status, **fields)  # fmt: skip


async def _batch(resources: WorkerResources, owner: UUID, batch_id: str) -> dict[str, Any]:
    [row] = await rows(resources.pool, owner, "SELECT * FROM batch_jobs WHERE id = $1",
                       UUID(batch_id))  # fmt: skip
    return row


async def _dead_run_with_call_in_flight(
    resources: WorkerResources, owner: UUID, batch_id: str, reserved: Decimal
) -> tuple[item_state.ItemRef, UUID]:
    """A run that took the item, sent a call and died: its lease lapses at once."""
    dead = item_state.ItemRef(owner, UUID(batch_id), 0, uuid.uuid4())
    claim = await item_state.claim(resources.pool, dead, lease_seconds=0.001)
    assert claim.state == item_state.ClaimState.RUNNING
    attempt_id = await item_state.open_attempt(resources.pool, dead, None, _entry(), reserved)
    assert attempt_id is not None
    return dead, attempt_id


async def test_each_call_has_its_attempt_row_settled_with_real_cost(
    gen_api: httpx.AsyncClient, account: Account, resources: WorkerResources, claude: FakeAnthropic
) -> None:
    batch_id = await _create(gen_api, account, plain_items(1))

    result = await tasks.generate_item(_ctx(resources), batch_id, 0)

    assert result["outcome"] == "completed"
    sql = "SELECT * FROM generation_logs WHERE job_id = $1"
    [row] = await rows(resources.pool, account.user.id, sql, UUID(batch_id))
    assert row["status"] == "success"
    assert row["settled_at"] is not None
    assert row["reserved_cost_usd"] >= row["cost_usd"] > 0
    assert row["conversation_id"] is not None
    assert (await _batch(resources, account.user.id, batch_id))["cost_so_far_usd"] == row[
        "cost_usd"
    ]


async def test_a_takeover_books_the_dead_runs_call_as_lost_with_its_reserved_cost(
    gen_api: httpx.AsyncClient, account: Account, resources: WorkerResources, claude: FakeAnthropic
) -> None:
    batch_id = await _create(gen_api, account, plain_items(1))
    owner = account.user.id
    await _dead_run_with_call_in_flight(resources, owner, batch_id, Decimal("0.5"))

    result = await tasks.generate_item(_ctx(resources), batch_id, 0)

    assert result["outcome"] == "completed"
    entries = await logs(resources.pool, owner, batch_id)
    assert [entry["status"] for entry in entries] == ["lost", "success"]
    assert entries[0]["cost_usd"] == Decimal("0.5")
    batch = await _batch(resources, owner, batch_id)
    assert batch["cost_so_far_usd"] == Decimal("0.5") + entries[1]["cost_usd"]
    summary = await gen_api.get("/v1/generation-logs/cost-summary", headers=account.headers)
    body = summary.json()
    assert (body["lost_requests"], body["lost_cost_usd"]) == (1, 0.5)
    assert body["cost_usd"] == pytest.approx(float(batch["cost_so_far_usd"]))


async def test_a_lost_call_counts_against_the_cost_cap(
    gen_api: httpx.AsyncClient, account: Account, resources: WorkerResources, claude: FakeAnthropic
) -> None:
    batch_id = await _create(gen_api, account, {**plain_items(1), "cost_cap_usd": 0.6})
    await _dead_run_with_call_in_flight(resources, account.user.id, batch_id, Decimal("0.55"))

    result = await tasks.generate_item(_ctx(resources), batch_id, 0)

    # 0.55 lost + the next call's worst case would cross the 0.60 cap: nothing more is sent.
    assert result["outcome"] == "stopped"
    assert claude.requests == []
    batch = await _batch(resources, account.user.id, batch_id)
    assert (batch["stop_reason"], batch["cost_so_far_usd"]) == ("cost_cap_reached", Decimal("0.55"))


async def test_a_late_answer_replaces_the_lost_estimate_with_its_real_cost(
    gen_api: httpx.AsyncClient, account: Account, resources: WorkerResources
) -> None:
    batch_id = await _create(gen_api, account, plain_items(1))
    owner = account.user.id
    dead, attempt_id = await _dead_run_with_call_in_flight(
        resources, owner, batch_id, Decimal("0.5")
    )
    taker = item_state.ItemRef(owner, UUID(batch_id), 0, uuid.uuid4())
    assert (await item_state.claim(resources.pool, taker, 30)).state == "running"
    assert (await _batch(resources, owner, batch_id))["cost_so_far_usd"] == Decimal("0.5")

    answer = _entry(LogStatus.FAILED, attempt_id=attempt_id, cost_usd=Decimal("0.2"))
    attempts, _ = await item_state.book(resources.pool, dead, None, answer, consumed=True)

    assert attempts is None  # not the dead run's item any more
    [entry] = await logs(resources.pool, owner, batch_id)
    assert (entry["status"], entry["cost_usd"]) == ("failed", Decimal("0.2"))
    assert (await _batch(resources, owner, batch_id))["cost_so_far_usd"] == Decimal("0.2")


async def test_no_attempt_row_is_opened_without_the_lease(
    gen_api: httpx.AsyncClient, account: Account, resources: WorkerResources
) -> None:
    batch_id = await _create(gen_api, account, plain_items(1))
    stranger = item_state.ItemRef(account.user.id, UUID(batch_id), 0, uuid.uuid4())

    opened = await item_state.open_attempt(resources.pool, stranger, None, _entry(), Decimal(1))

    assert opened is None
    assert await logs(resources.pool, account.user.id, batch_id) == []


async def test_a_held_write_is_retried_until_the_database_answers() -> None:
    calls: list[int] = []

    async def write() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionRefusedError("PostgreSQL is down")
        return "landed"

    assert await held(write, deadline=float("inf"), what="test") == "landed"
    assert len(calls) == 3


async def test_a_held_write_gives_up_at_the_deadline() -> None:
    async def write() -> None:
        raise ConnectionRefusedError("PostgreSQL is down")

    with pytest.raises(ConnectionRefusedError):
        await held(write, deadline=0.0, what="test")
