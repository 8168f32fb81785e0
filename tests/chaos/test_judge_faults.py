"""The judge through a fault: a generation job that judges what it lands (JUDGE_AFTER_GENERATION,
the production default, or `"judge": true`) loses its generator to SIGKILL while it generates
and judges. Every conversation lands once and is judged, with no manual step, by one judge job
each; every judge call sent is on the quality_check jobs' books."""

from __future__ import annotations

import signal
from decimal import Decimal
from uuid import UUID

import pytest

from shared.db.pool import tenant_transaction
from tests.chaos.books import (
    assert_every_call_on_the_books,
    books,
    judge_requests,
    start_batch,
    wait_done,
)
from tests.chaos.conftest import Stack
from tests.chaos.harness import in_flight, until

TARGET = 60.0  # DESIGN §10: progressing again within 60 s of the fault ending


@pytest.mark.timeout(150)
async def test_a_generator_killed_while_judging_leaves_every_conversation_judged(
    stack: Stack,
) -> None:
    total = 8
    doomed, _ = stack.fleet.start("generator")
    owner = stack.account.user.id
    batch_id = await start_batch(stack.api, stack.account.headers, total, concurrency=4, judge=True)
    # Kill it once generation and judging are both in flight: the first items have landed and
    # their judge calls are being answered while the later items' generation calls are.
    await until(
        lambda: _true(len(judge_requests(stack.claude)) >= 1 and in_flight(stack.claude) >= 2),
        within=30,
        what="judge and generation calls in flight",
    )
    doomed.proc.send_signal(signal.SIGKILL)
    doomed.proc.wait()
    stack.fleet.start("generator")

    await wait_done(stack.pool, owner, batch_id, total, within=TARGET)
    assert_every_call_on_the_books(await books(stack.pool, owner, batch_id), stack.claude, total)
    await until(lambda: _all_judged(stack, batch_id, total), within=TARGET, what="all judged")

    async with tenant_transaction(stack.pool, owner) as conn:
        logs = await conn.fetchrow(
            "SELECT count(*) AS calls, count(*) FILTER (WHERE l.status = 'lost') AS lost, "
            "coalesce(sum(l.cost_usd), 0) AS cost FROM generation_logs l "
            "JOIN batch_jobs b ON b.id = l.job_id WHERE b.job_type = 'quality_check'"
        )
        spent = await conn.fetchval(
            "SELECT coalesce(sum(cost_so_far_usd), 0) FROM batch_jobs "
            "WHERE job_type = 'quality_check'"
        )
        jobs = await conn.fetchval(
            "SELECT count(*) FROM batch_jobs WHERE job_type = 'quality_check'"
        )
        unfinished = await conn.fetchval(
            "SELECT count(*) FROM batch_jobs WHERE job_type = 'quality_check' "
            "AND status NOT IN ('completed', 'partial')"
        )
    assert logs is not None
    sent = len(judge_requests(stack.claude))
    # Every judge call sent has its attempt row; extra rows are only calls a dying worker lost.
    assert logs["calls"] >= sent, (dict(logs), sent)
    assert logs["calls"] - sent <= logs["lost"]
    assert Decimal(spent) == Decimal(logs["cost"]) > 0
    assert unfinished == 0
    # One judge job per conversation, written in its landing's transaction: none lost with the
    # killed worker, none added by the replica that found an item already landed.
    assert jobs == total


async def _all_judged(stack: Stack, batch_id: str, total: int) -> bool:
    async with tenant_transaction(stack.pool, stack.account.user.id) as conn:
        judged: int = await conn.fetchval(
            "SELECT count(*) FROM conversations WHERE generation_job_id = $1 "
            "AND quality_source = 'judge' AND quality_overall IS NOT NULL",
            UUID(batch_id),
        )
    assert judged <= total
    return judged == total


async def _true(value: bool) -> bool:
    return value
