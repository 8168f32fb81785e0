"""Recovery after faults (DESIGN §10): seconds from the end of a fault to the job progressing
again, next to the 60 s target, and paid calls left off the books.

Runs against a PostgreSQL and a Redis of its own (free loopback ports, temporary directories),
real worker processes and the fake Claude (1 s per answer). Faults: a generator SIGKILLed with
calls in flight, an exporter SIGKILLed mid-export, Redis stopped for 30 s, Redis restarted
empty, PostgreSQL stopped for 10 s. Usage: `.venv/bin/python bench/chaos.py`.
"""

from __future__ import annotations

import asyncio
import signal
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

from shared.db.pool import acquire, create_pool, tenant_transaction
from shared.storage import LocalObjectStore
from tests.chaos.books import books, completed, start_batch, wait_done
from tests.chaos.conftest import Stack
from tests.chaos.harness import (
    Fleet,
    PrivatePostgres,
    PrivateRedis,
    chaos_settings,
    in_flight,
    until,
)
from tests.exporter import helpers
from tests.fakes.anthropic import FakeAnthropic, FakeConfig
from tests.support.api import api_client
from tests.support.factories import create_account

TARGET = 60.0
ITEMS = 12


@dataclass(frozen=True)
class Result:
    """One fault's figures."""

    fault: str
    recovery_s: float
    unrecorded: int


async def _progress_after(stack: Stack, batch_id: str) -> float:
    """Seconds until one more item completes than now (polling through the fault's tail)."""
    owner = stack.account.user.id
    started = time.monotonic()
    while True:
        try:
            before = await completed(stack.pool, owner, batch_id)
            break
        except OSError:
            await asyncio.sleep(0.1)
    await until(lambda: _more(stack, batch_id, before), within=120, what="progress")
    return time.monotonic() - started


async def _more(stack: Stack, batch_id: str, before: int) -> bool:
    try:
        return await completed(stack.pool, stack.account.user.id, batch_id) > before
    except OSError:
        return False


async def _unrecorded(stack: Stack, batch_id: str) -> int:
    await wait_done(stack.pool, stack.account.user.id, batch_id, ITEMS, within=180)
    found = await books(stack.pool, stack.account.user.id, batch_id)
    return max(0, len(stack.claude.requests) - found.calls)


async def generator_kill(stack: Stack) -> Result:
    """SIGKILL the only generator with calls in flight; start a fresh one."""
    doomed, _ = stack.fleet.start("generator")
    batch_id = await start_batch(stack.api, stack.account.headers, ITEMS, concurrency=6)
    await until(lambda: _holds(in_flight(stack.claude) >= 3), within=30, what="in flight")
    doomed.proc.send_signal(signal.SIGKILL)
    doomed.proc.wait()
    start = time.monotonic()
    stack.fleet.start("generator")
    await _progress_after(stack, batch_id)
    return Result("generator kill -9", time.monotonic() - start,
                  await _unrecorded(stack, batch_id))  # fmt: skip


async def _batch_midway(stack: Stack) -> str:
    for _ in range(2):
        stack.fleet.start("generator")
    batch_id = await start_batch(stack.api, stack.account.headers, ITEMS, concurrency=4)
    owner = stack.account.user.id
    await until(lambda: _at_least(stack, owner, batch_id), within=60, what="2 items done")
    return batch_id


async def _at_least(stack: Stack, owner: UUID, batch_id: str) -> bool:
    return await completed(stack.pool, owner, batch_id) >= 2


async def redis_stopped(stack: Stack) -> Result:
    """Redis down for 30 s, then back with its append-only file."""
    batch_id = await _batch_midway(stack)
    stack.redis.stop()
    await asyncio.sleep(30)
    stack.redis.start()
    took = await _progress_after(stack, batch_id)
    return Result("Redis stopped 30 s", took, await _unrecorded(stack, batch_id))


async def redis_empty(stack: Stack) -> Result:
    """Redis restarted with no data at all."""
    batch_id = await _batch_midway(stack)
    stack.redis.stop()
    stack.redis.wipe()
    stack.redis.start()
    took = await _progress_after(stack, batch_id)
    return Result("Redis restarted empty", took, await _unrecorded(stack, batch_id))


async def postgres_stopped(stack: Stack) -> Result:
    """PostgreSQL down for 10 s with calls in flight."""
    for _ in range(2):
        stack.fleet.start("generator", GENERATOR_HEARTBEAT_SECONDS="8")
    batch_id = await start_batch(stack.api, stack.account.headers, ITEMS, concurrency=4)
    await until(lambda: _holds(in_flight(stack.claude) >= 2), within=30, what="in flight")
    stack.postgres.stop()
    await asyncio.sleep(10)
    stack.postgres.start()
    took = await _progress_after(stack, batch_id)
    return Result("PostgreSQL stopped 10 s", took, await _unrecorded(stack, batch_id))


async def exporter_kill(stack: Stack) -> Result:
    """SIGKILL the exporter mid-export; start a fresh one."""
    owner = stack.account.user.id
    storage = LocalObjectStore(stack.settings.storage_local_dir, base_url="http://b",
                               signing_secret=b"unused")  # fmt: skip
    first = await helpers.store(stack.pool, storage, owner, helpers.seed_bytes("b"),
                                status="approved")  # fmt: skip
    await helpers.clone(stack.pool, owner, first.id, 39)
    slow = {"EXPORT_MAX_CONVERSATIONS_PER_SECOND": "8"}
    doomed, _ = stack.fleet.start("exporter", **slow)
    body = {"config": {"scope": "all", "format": "jsonl"}}
    created = await stack.api.post("/v1/exports", headers=stack.account.headers, json=body)
    export_id = UUID(created.json()["id"])
    await until(lambda: _export_progress(stack, export_id, 0), within=30, what="export started")
    doomed.proc.send_signal(signal.SIGKILL)
    doomed.proc.wait()
    start = time.monotonic()
    stack.fleet.start("exporter", **slow)
    await until(lambda: _export_restarted(stack, export_id), within=120, what="restart")
    return Result("exporter kill -9", time.monotonic() - start, 0)


async def _export_progress(stack: Stack, export_id: UUID, above: float) -> bool:
    async with tenant_transaction(stack.pool, stack.account.user.id) as conn:
        value = await conn.fetchval(
            "SELECT progress_percent FROM export_logs WHERE id = $1", export_id
        )
    return float(value) > above


async def _export_restarted(stack: Stack, export_id: UUID) -> bool:
    async with tenant_transaction(stack.pool, stack.account.user.id) as conn:
        row = await conn.fetchrow(
            "SELECT restarts, progress_percent FROM export_logs WHERE id = $1", export_id
        )
    return row is not None and row["restarts"] >= 1 and float(row["progress_percent"]) > 0


async def _holds(value: bool) -> bool:
    return value


Fault = Callable[[Stack], Awaitable[Result]]


async def run_fault(fault: Fault, postgres: PrivatePostgres, redis: PrivateRedis,
                    claude: FakeAnthropic) -> Result:  # fmt: skip
    """One fault on a fresh database and queue prefix."""
    claude.reset()
    root = Path(tempfile.mkdtemp(prefix="convoforge-bench-chaos-"))
    settings = chaos_settings(await postgres.new_database(), redis.url, claude.base_url, root)
    pool = await create_pool(settings)
    async with acquire(pool) as conn:
        account = await create_account(conn)
    fleet = Fleet(settings, root)
    try:
        async with api_client(settings) as api:
            stack = Stack(settings, pool, api, account, fleet, postgres, redis, claude)
            return await fault(stack)
    finally:
        fleet.stop()
        await pool.close()


async def main() -> None:
    """Run every fault and print the table."""
    postgres = PrivatePostgres()
    redis = PrivateRedis(Path(tempfile.mkdtemp(prefix="convoforge-bench-redis-")))
    postgres.start()
    redis.start()
    config = FakeConfig(rpm=100_000, latency=1.0, input_tpm=10**9, output_tpm=10**9)
    results = []
    try:
        with FakeAnthropic(config) as claude:
            for fault in (generator_kill, exporter_kill, redis_stopped, redis_empty,
                          postgres_stopped):  # fmt: skip
                results.append(await run_fault(fault, postgres, redis, claude))
    finally:
        redis.stop()
        postgres.remove()
    print(f"{'fault':<26} {'recovery (s)':>12} {'target (s)':>10} {'unrecorded calls':>16}")
    for result in results:
        print(f"{result.fault:<26} {result.recovery_s:>12.1f} {TARGET:>10.0f} "
              f"{result.unrecorded:>16}")  # fmt: skip
    print("recovery: from the end of the fault to the job progressing again (an item or export "
          "batch done); figures from a shared, busy 2-core machine")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
