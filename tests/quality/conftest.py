"""Judge fixtures: the fake Claude (which answers record_scores), worker resources, the API."""

from __future__ import annotations

import asyncpg
import httpx
import pytest

from shared.db.pool import acquire
from shared.settings import Settings
from tests.support.factories import Account, create_account
from tests.support.worker_fixtures import (  # noqa: F401 (fixtures, found by name)
    account,
    claude,
    claude_server,
    gen_api,
    gen_settings,
    resources,
)


@pytest.fixture
def judge_settings(gen_settings: Settings) -> Settings:  # noqa: F811 (the fixture)
    """Settings aimed at the fake, with their own queue and limiter keys."""
    return gen_settings


@pytest.fixture
def api(gen_api: httpx.AsyncClient) -> httpx.AsyncClient:  # noqa: F811 (the fixture)
    """The API with the same settings (it enqueues where the worker listens)."""
    return gen_api


@pytest.fixture
async def other(pool: asyncpg.Pool) -> Account:
    """A second tenant."""
    async with acquire(pool) as conn:
        return await create_account(conn)
