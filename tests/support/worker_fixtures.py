"""Fixtures of the suites that run a generator in-process against the fake Claude API
(tests/generator/, tests/quality/): import them into a conftest by name.

Generation rows are tenant-scoped and every test has its own tenant, queue and limiter keys, so
these fixtures work on the session database without truncating it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from shared.db.pool import acquire
from shared.runtime import WorkerResources
from shared.settings import Settings
from tests.fakes.anthropic import FakeAnthropic, FakeConfig
from tests.generator.harness import fake_settings, worker_resources
from tests.support.api import api_client
from tests.support.factories import Account, create_account


@pytest.fixture(scope="module")
def claude_server() -> Iterator[FakeAnthropic]:
    """One fake Messages API per module (fast: no latency, a generous limit)."""
    config = FakeConfig(rpm=1000, window_seconds=1.0, latency=0.0, timeout_sleep=3.0)
    with FakeAnthropic(config) as fake:
        yield fake


@pytest.fixture
def claude(claude_server: FakeAnthropic) -> FakeAnthropic:
    """The module's fake, reset for this test."""
    claude_server.reset()
    return claude_server


@pytest.fixture
def gen_settings(settings: Settings, claude: FakeAnthropic) -> Settings:
    """Settings aimed at the fake, with their own queue and limiter keys."""
    return fake_settings(settings, claude.base_url, claude.api_key)


@pytest.fixture
async def account(pool: asyncpg.Pool) -> Account:
    """A fresh tenant with an API key."""
    async with acquire(pool) as conn:
        return await create_account(conn)


@pytest.fixture
async def resources(
    gen_settings: Settings, pool: asyncpg.Pool, tmp_path: Path
) -> AsyncIterator[WorkerResources]:
    """A generator process's resources, in this process."""
    async with worker_resources(gen_settings, pool, tmp_path / "objects") as built:
        yield built


@pytest.fixture
async def gen_api(gen_settings: Settings, pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    """The API with the same settings (it enqueues where the worker listens)."""
    async with api_client(gen_settings) as client:
        yield client
