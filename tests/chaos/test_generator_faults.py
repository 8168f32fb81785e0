"""Generation through faults, with real processes: a generator SIGKILLed with calls in flight,
Redis stopped for 30 s, Redis restarted empty, PostgreSQL stopped for 10 s. The job completes
with no manual step, each conversation once, and every paid call on the books."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest

from tests.chaos.books import (
    assert_every_call_on_the_books,
    books,
    completed,
    start_batch,
    wait_done,
)
from tests.chaos.conftest import Stack
from tests.chaos.harness import in_flight, readyz, until

# Recovery target (DESIGN §10): progressing again within 60 s of the fault ending.
TARGET = 60.0


async def test_a_generator_killed_with_calls_in_flight_is_taken_over(stack: Stack) -> None:
    total = 8
    doomed, _ = stack.fleet.start("generator")
    batch_id = await start_batch(stack.api, stack.account.headers, total, concurrency=total)
    await until(lambda: _true(in_flight(stack.claude) >= 3), within=30, what="calls in flight")

    doomed.proc.send_signal(signal.SIGKILL)
    doomed.proc.wait()
    killed_at = time.monotonic()
    stack.fleet.start("generator")  # the replica that takes the killed items over
    await wait_done(stack.pool, stack.account.user.id, batch_id, total, within=TARGET)

    found = await books(stack.pool, stack.account.user.id, batch_id)
    assert_every_call_on_the_books(found, stack.claude, total)
    assert found.statuses.get("lost", 0) >= 1  # the killed calls, booked at their reserve
    assert time.monotonic() - killed_at < TARGET


@pytest.mark.timeout(150)
async def test_workers_ride_out_redis_stopped_for_30_seconds(stack: Stack) -> None:
    total = 12
    for _ in range(2):
        stack.fleet.start("generator")
    _, port = stack.fleet.processes[0]
    owner = stack.account.user.id
    batch_id = await start_batch(stack.api, stack.account.headers, total, concurrency=4)
    await until(lambda: _at_least(stack, batch_id, 2), within=30, what="2 items done")

    stack.redis.stop()
    await until(lambda: _true(readyz(port) == 503), within=10, what="/readyz 503")
    await asyncio.sleep(30)
    assert all(stack.fleet.alive()), "a worker died while Redis was down"
    stack.redis.start()

    await wait_done(stack.pool, owner, batch_id, total, within=TARGET)
    assert all(stack.fleet.alive())
    # The replica that finished the items may not be the one probed: that one is ready again
    # once its own reconnect backoff (at most worker_redis_backoff_max_seconds) has run out.
    await until(lambda: _true(readyz(port) == 200), within=10, what="/readyz 200 again")
    assert_every_call_on_the_books(await books(stack.pool, owner, batch_id), stack.claude, total)


async def test_a_job_completes_after_redis_restarts_empty(stack: Stack) -> None:
    total = 12
    for _ in range(2):
        stack.fleet.start("generator")
    owner = stack.account.user.id
    batch_id = await start_batch(stack.api, stack.account.headers, total, concurrency=4)
    await until(lambda: _at_least(stack, batch_id, 2), within=30, what="2 items done")

    stack.redis.stop()
    stack.redis.wipe()  # the queue, the jobs, the limiter: all gone
    stack.redis.start()

    await wait_done(stack.pool, owner, batch_id, total, within=TARGET)
    assert all(stack.fleet.alive())
    assert_every_call_on_the_books(await books(stack.pool, owner, batch_id), stack.claude, total)


@pytest.mark.timeout(120)
async def test_answers_arriving_while_postgresql_is_down_are_held_not_paid_twice(
    stack: Stack,
) -> None:
    total = 6
    # Leases outlast the outage (3 x 8 s), so the held answers still own their items.
    for _ in range(2):
        stack.fleet.start("generator", GENERATOR_HEARTBEAT_SECONDS="8")
    stack.claude.configure(latency=3.0)
    owner = stack.account.user.id
    batch_id = await start_batch(stack.api, stack.account.headers, total, concurrency=3)
    await until(lambda: _true(in_flight(stack.claude) >= 2), within=30, what="calls in flight")

    stack.postgres.stop()
    await asyncio.sleep(10)
    stack.postgres.start()

    await wait_done(stack.pool, owner, batch_id, total, within=TARGET)
    found = await books(stack.pool, owner, batch_id)
    assert_every_call_on_the_books(found, stack.claude, total)
    # 0 answers discarded: one request per item (no faults from the fake, so no retries).
    assert len(stack.claude.requests) == total
    assert found.statuses == {"success": total}


async def _true(value: bool) -> bool:
    return value


async def _at_least(stack: Stack, batch_id: str, count: int) -> bool:
    return await completed(stack.pool, stack.account.user.id, batch_id) >= count
