"""API fixtures: the app on each storage backend."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from shared.settings import Settings
from shared.storage import ObjectStore, open_storage
from tests.conftest import s3_settings
from tests.support.api import api_client


@pytest.fixture(params=["local", "s3"])
def backend_settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """The session settings on the local backend, then on S3 (moto)."""
    if request.param == "local":
        return settings
    return s3_settings(settings, request.getfixturevalue("s3_config"))


@pytest.fixture
async def api(backend_settings: Settings, db: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    """The API on the parametrized backend, on empty tables."""
    async with api_client(backend_settings) as client:
        yield client


@pytest.fixture
async def objects(backend_settings: Settings) -> AsyncIterator[ObjectStore]:
    """A second handle on the same storage, to check what the API wrote."""
    store = await open_storage(backend_settings)
    yield store
    await store.close()
