"""Chaos fixtures: a PostgreSQL, a Redis and a fake Claude of the module's own, and per test a
fresh database, a queue prefix, an account and the workers' processes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest

from shared.db.pool import acquire, create_pool
from shared.settings import Settings
from tests.chaos.harness import Fleet, PrivatePostgres, PrivateRedis, chaos_settings
from tests.fakes.anthropic import FakeAnthropic, FakeConfig
from tests.support.api import api_client
from tests.support.factories import Account, create_account


@pytest.fixture(scope="module")
def postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL cluster this module may stop and restart."""
    server = PrivatePostgres()
    try:
        server.start()
        yield server
    finally:
        server.remove()


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    """A Redis this module may stop, wipe and restart."""
    server = PrivateRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def claude() -> Iterator[FakeAnthropic]:
    """The fake Claude: a second per answer, so calls are in flight when a fault strikes."""
    config = FakeConfig(rpm=100_000, latency=1.0, input_tpm=10**9, output_tpm=10**9)
    with FakeAnthropic(config) as fake:
        yield fake


@dataclass
class Stack:
    """One test's system: settings, a pool for looking, the API in-process, the workers."""

    settings: Settings
    pool: asyncpg.Pool
    api: httpx.AsyncClient
    account: Account
    fleet: Fleet
    postgres: PrivatePostgres
    redis: PrivateRedis
    claude: FakeAnthropic


@pytest.fixture
async def stack(
    postgres: PrivatePostgres, redis_server: PrivateRedis, claude: FakeAnthropic, tmp_path: Path
) -> AsyncIterator[Stack]:
    """A fresh database and queue prefix; the fake's request log cleared."""
    claude.reset()
    url = await postgres.new_database()
    settings = chaos_settings(url, redis_server.url, claude.base_url, tmp_path)
    pool = await create_pool(settings)
    async with acquire(pool) as conn:
        account = await create_account(conn)
    fleet = Fleet(settings, tmp_path)
    try:
        async with api_client(settings) as api:
            yield Stack(settings, pool, api, account, fleet, postgres, redis_server, claude)
    finally:
        fleet.stop()
        await pool.close()
