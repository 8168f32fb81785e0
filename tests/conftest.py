"""Session-wide real services: a migrated database, a Redis DB, S3 on loopback, the API."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
import redis.asyncio as redis_asyncio
from pydantic import SecretStr

from shared.db.bootstrap import drop_database, ensure_role_and_database
from shared.db.migrate import migrate
from shared.db.pool import acquire, create_pool
from shared.settings import Settings
from shared.storage import LocalObjectStore, ObjectStore, S3ObjectStore
from tests.support.api import api_client
from tests.support.factories import Account, create_account
from tests.support.servers import moto_server, swift_env

ADMIN_URL = os.environ.get(
    "TEST_DATABASE_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
APP_ROLE = os.environ.get("TEST_DATABASE_ROLE", "convoforge:convoforge")
REDIS_BASE = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
_LOCK_KEY = "convoforge:test-session-lock"


@pytest.fixture(scope="session")
def session_id() -> str:
    """Unique per pytest run, so parallel runs on one machine never share state."""
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
async def database_url(session_id: str) -> AsyncIterator[str]:
    """A fresh database for this session, created through the admin DSN and migrated once."""
    name = f"convoforge_test_{session_id}"
    url = f"postgresql://{APP_ROLE}@127.0.0.1:5432/{name}"
    await ensure_role_and_database(ADMIN_URL, url)
    await migrate(url)
    yield url
    await drop_database(ADMIN_URL, name)


@pytest.fixture(scope="session")
async def redis_url() -> AsyncIterator[str]:
    """A Redis DB index (1-15) no other test session holds, flushed at start and end."""
    for index in range(1, 16):
        client = redis_asyncio.Redis.from_url(f"{REDIS_BASE}/{index}")
        if await client.set(_LOCK_KEY, "1", nx=True, ex=3600):
            await client.flushdb()
            await client.set(_LOCK_KEY, "1", ex=3600)
            try:
                yield f"{REDIS_BASE}/{index}"
            finally:
                await client.flushdb()
                await client.aclose()
            return
        await client.aclose()
    raise RuntimeError("no free Redis DB index for the test session")


@pytest.fixture(scope="session")
def s3_config(session_id: str) -> Iterator[dict[str, str]]:
    """An S3 server on loopback: moto by default, Swift's s3api with S3_TEST_BACKEND=swift."""
    bucket = f"cf-test-{session_id}"
    if os.environ.get("S3_TEST_BACKEND") == "swift":
        yield {**swift_env(), "S3_BUCKET": bucket}
        return
    with moto_server() as endpoint:
        yield {
            "S3_ENDPOINT_URL": endpoint,
            "S3_ACCESS_KEY_ID": "testing",
            "S3_SECRET_ACCESS_KEY": "testing",
            "S3_REGION": "us-east-1",
            "S3_BUCKET": bucket,
        }


@pytest.fixture(scope="session")
def settings(
    database_url: str, redis_url: str, session_id: str, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    """The session's settings (local storage); tests derive variants with model_copy."""
    return Settings(
        environment="test",
        database_url=database_url,
        database_admin_url=None,
        redis_url=redis_url,
        queue_prefix=f"cftest-{session_id}",
        storage_backend="local",
        storage_local_dir=tmp_path_factory.mktemp("storage"),
        llm_provider="offline",
        log_format="json",
        log_level="WARNING",
        api_rate_limit_per_minute=0,
        # Tests that want a judge run after each landing ask for it (tests/quality/).
        judge_after_generation=False,
        judge_after_edit=False,
    )


def s3_settings(settings: Settings, s3: dict[str, str]) -> Settings:
    """The same settings on the S3 backend."""
    return settings.model_copy(
        update={
            "storage_backend": "s3",
            "s3_endpoint_url": s3["S3_ENDPOINT_URL"],
            "s3_bucket": s3["S3_BUCKET"],
            "s3_region": s3["S3_REGION"],
            "s3_access_key_id": SecretStr(s3["S3_ACCESS_KEY_ID"]),
            "s3_secret_access_key": SecretStr(s3["S3_SECRET_ACCESS_KEY"]),
            "s3_create_bucket": True,
        }
    )


@pytest.fixture(scope="session")
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    """The application pool (ordinary role, RLS applies)."""
    pool = await create_pool(settings)
    yield pool
    await pool.close()


@pytest.fixture
async def db(pool: asyncpg.Pool) -> asyncpg.Pool:
    """No users (so no tenant rows) at the start of the test; left as is after, for debugging."""
    async with acquire(pool) as conn:
        # Every tenant row hangs off users with ON DELETE CASCADE, and referential actions are
        # not subject to row-level security, so this empties every table; on the few rows a test
        # leaves behind it is much cheaper than TRUNCATE of every table.
        await conn.execute("DELETE FROM users")
    return pool


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[redis_asyncio.Redis]:
    """A client on the session's Redis DB."""
    client = redis_asyncio.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture(params=["local", "s3"])
async def storage(
    request: pytest.FixtureRequest, settings: Settings, tmp_path: Path
) -> AsyncIterator[ObjectStore]:
    """Each storage backend in turn: the same contract must hold on both."""
    store: ObjectStore
    if request.param == "local":
        store = LocalObjectStore(
            tmp_path / "objects", base_url="http://test", signing_secret=b"test-secret"
        )
    else:
        s3 = s3_settings(settings, request.getfixturevalue("s3_config"))
        store = await S3ObjectStore.open(
            bucket=s3.s3_bucket,
            endpoint_url=s3.s3_endpoint_url,
            region=s3.s3_region,
            access_key_id=s3.s3_access_key_id.get_secret_value() if s3.s3_access_key_id else None,
            secret_access_key=(
                s3.s3_secret_access_key.get_secret_value() if s3.s3_secret_access_key else None
            ),
            create_bucket=True,
        )
    yield store
    await store.close()


@pytest.fixture
async def client(settings: Settings, db: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    """The API on the local backend, on empty tables."""
    async with api_client(settings) as api:
        yield api


@pytest.fixture
async def account(db: asyncpg.Pool) -> Account:
    """A user with an API key."""
    async with acquire(db) as conn:
        return await create_account(conn)
