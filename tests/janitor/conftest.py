"""Janitor tests: real PostgreSQL, Redis and storage (local directory and S3 via moto)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from services.janitor.context import JanitorDeps
from shared.db.pool import acquire
from shared.models.user import User
from shared.queue import ArqRedis, create_redis
from shared.settings import Settings
from shared.storage import LocalObjectStore, ObjectStore
from tests.support.factories import create_user


@pytest.fixture
def janitor_settings(settings: Settings) -> Settings:
    """The session settings with a queue prefix of this test's own (no worker consumes it)."""
    return settings.model_copy(
        update={
            "queue_prefix": f"{settings.queue_prefix}-jan-{uuid.uuid4().hex[:8]}",
            "janitor_orphan_grace_seconds": 0,
        }
    )


@pytest.fixture
async def queue_redis(janitor_settings: Settings) -> AsyncIterator[ArqRedis]:
    """The janitor's Redis client."""
    client = create_redis(janitor_settings)
    yield client
    await client.aclose()


@pytest.fixture
async def deps(
    janitor_settings: Settings, db: asyncpg.Pool, queue_redis: ArqRedis, storage: ObjectStore
) -> JanitorDeps:
    """A janitor on each storage backend in turn."""
    return JanitorDeps(janitor_settings, db, queue_redis, storage)


@pytest.fixture
async def local_deps(
    janitor_settings: Settings, db: asyncpg.Pool, queue_redis: ArqRedis, tmp_path: Path
) -> AsyncIterator[JanitorDeps]:
    """A janitor on the local backend only (for tasks that never touch storage)."""
    store = LocalObjectStore(tmp_path / "objects", base_url="http://test", signing_secret=b"x")
    yield JanitorDeps(janitor_settings, db, queue_redis, store)
    await store.close()


@pytest.fixture
async def owner(db: asyncpg.Pool) -> User:
    """A tenant."""
    async with acquire(db) as conn:
        return await create_user(conn)


@pytest.fixture
async def other_owner(db: asyncpg.Pool) -> User:
    """A second tenant."""
    async with acquire(db) as conn:
        return await create_user(conn)
