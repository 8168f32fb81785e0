"""What a chaos test checks after the fault: the batch, its conversations, its paid calls."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
import httpx

from shared.db.pool import tenant_transaction
from tests.chaos.harness import until
from tests.fakes._anthropic_state import RecordedRequest
from tests.fakes.anthropic import FakeAnthropic


@dataclass(frozen=True)
class Books:
    """A batch as PostgreSQL has it once it finished."""

    batch: dict[str, Any]
    item_indexes: list[int]
    statuses: dict[str, int]
    log_costs: Decimal

    @property
    def calls(self) -> int:
        """Attempt rows, whatever their outcome."""
        return sum(self.statuses.values())


async def start_batch(api: httpx.AsyncClient, headers: dict[str, str], count: int,
                      concurrency: int, *, judge: bool = False) -> str:  # fmt: skip
    """POST /v1/generation-jobs with `count` items; returns the batch id."""
    request = {"persona": "an anxious investor", "topic": "market volatility"}
    body = {
        "items": [dict(request) for _ in range(count)],
        "concurrency": concurrency,
        "judge": judge,
    }
    created = await api.post("/v1/generation-jobs", json=body, headers=headers)
    assert created.status_code == 202, created.text
    batch_id: str = created.json()["id"]
    return batch_id


async def completed(pool: asyncpg.Pool, owner: UUID, batch_id: str) -> int:
    """Items completed so far."""
    async with tenant_transaction(pool, owner) as conn:
        done: int = await conn.fetchval(
            "SELECT completed_items FROM batch_jobs WHERE id = $1", UUID(batch_id)
        )
    return done


async def wait_done(pool: asyncpg.Pool, owner: UUID, batch_id: str, total: int,
                    within: float) -> float:  # fmt: skip
    """Seconds until every item completed (fails after `within`)."""

    async def done() -> bool:
        try:
            return await completed(pool, owner, batch_id) >= total
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return False  # our own look while PostgreSQL is away

    return await until(done, within=within, what=f"batch {batch_id} completed")


async def books(pool: asyncpg.Pool, owner: UUID, batch_id: str) -> Books:
    """The finished batch, its conversations' item indexes and its attempt rows by status."""
    batch = UUID(batch_id)
    async with tenant_transaction(pool, owner) as conn:
        row = await conn.fetchrow("SELECT * FROM batch_jobs WHERE id = $1", batch)
        indexes = await conn.fetch(
            "SELECT generation_item_index FROM conversations WHERE generation_job_id = $1 "
            "ORDER BY 1",
            batch,
        )
        logs = await conn.fetch(
            "SELECT status, count(*) AS n, sum(cost_usd) AS cost FROM generation_logs "
            "WHERE job_id = $1 GROUP BY status",
            batch,
        )
    assert row is not None
    return Books(
        batch=dict(row),
        item_indexes=[r["generation_item_index"] for r in indexes],
        statuses={r["status"]: r["n"] for r in logs},
        log_costs=sum((r["cost"] for r in logs), Decimal(0)),
    )


def judge_requests(fake: FakeAnthropic) -> list[RecordedRequest]:
    """The requests a quality_check job sent (the judge's call carries its record_scores tool)."""
    return [r for r in fake.requests if "tools" in (r.body or {})]


def assert_every_call_on_the_books(found: Books, fake: FakeAnthropic, total: int) -> None:
    """Each conversation once; every generation request the fake answered is an attempt row and
    costed (the judge's requests are its own jobs' books: `judge_requests`)."""
    sent = len(fake.requests) - len(judge_requests(fake))
    assert found.batch["status"] == "completed"
    assert found.item_indexes == list(range(total))  # each item landed exactly once
    assert "in_flight" not in found.statuses, found.statuses
    # A lost row may be a call its dying worker never sent; every call sent has a row.
    assert found.calls >= sent, (found.statuses, sent)
    assert found.calls - sent <= found.statuses.get("lost", 0)
    assert found.batch["cost_so_far_usd"] == found.log_costs
