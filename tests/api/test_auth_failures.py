"""Failed API-key attempts: one message for every invalid key, WWW-Authenticate, and a 429
lockout per client address kept in Redis."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from services.api.app import create_app
from shared.db.pool import acquire
from shared.db.repositories import users as users_repo
from shared.settings import Settings
from tests.support.factories import Account

LIMIT = 3
UNKNOWN = {"Authorization": "Bearer cf_00000000_" + "x" * 43}


@pytest.fixture
async def app(settings: Settings, db: asyncpg.Pool) -> AsyncIterator[FastAPI]:
    """The API with a low failure limit, lifespan entered."""
    limited = settings.model_copy(
        update={"api_auth_failure_limit": LIMIT, "api_auth_failure_window_seconds": 120}
    )
    app = create_app(limited)
    async with app.router.lifespan_context(app):
        yield app


def _client(app: FastAPI, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


@pytest.fixture
def address() -> str:
    """A loopback address of this test's own, so counts from other tests never show."""
    return f"127.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"


@pytest.fixture
async def client(app: FastAPI, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client from the test's address."""
    async with _client(app, address) as client:
        yield client


async def test_every_invalid_key_gets_the_same_401(
    client: httpx.AsyncClient, account: Account, db: asyncpg.Pool
) -> None:
    async with acquire(db) as conn:
        assert await users_repo.revoke_api_key(conn, account.prefix) is not None
    cases = [
        {"Authorization": "Bearer not-a-key"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer two tokens"},
        UNKNOWN,
        account.headers,  # revoked
    ]
    bodies = []
    for headers in cases[:LIMIT]:
        response = await client.get("/v1/me", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        bodies.append(response.json())
    assert bodies == [{"error": {"code": "unauthorized", "message": "invalid API key",
                                 "details": None}}] * LIMIT  # fmt: skip


async def test_missing_header_is_401_with_challenge_and_not_counted(
    client: httpx.AsyncClient, account: Account
) -> None:
    for _ in range(LIMIT + 2):
        response = await client.get("/v1/me")
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert (await client.get("/v1/me", headers=account.headers)).status_code == 200


async def test_too_many_failures_lock_the_address_out(
    app: FastAPI, client: httpx.AsyncClient, account: Account
) -> None:
    for _ in range(LIMIT):
        assert (await client.get("/v1/me", headers=UNKNOWN)).status_code == 401
    locked = await client.get("/v1/me", headers=UNKNOWN)
    assert locked.status_code == 429
    assert locked.json()["error"]["code"] == "rate_limited"
    assert 0 < int(locked.headers["retry-after"]) <= 120
    # Even a good key from that address waits: the lockout comes before any key is checked.
    assert (await client.get("/v1/me", headers=account.headers)).status_code == 429
    async with _client(app, "::1") as elsewhere:
        assert (await elsewhere.get("/v1/me", headers=account.headers)).status_code == 200


async def test_lockout_is_shared_through_redis(
    settings: Settings, client: httpx.AsyncClient, address: str, db: asyncpg.Pool
) -> None:
    for _ in range(LIMIT):
        assert (await client.get("/v1/me", headers=UNKNOWN)).status_code == 401
    other = create_app(settings.model_copy(update={"api_auth_failure_limit": LIMIT}))
    async with other.router.lifespan_context(other), _client(other, address) as replica:
        assert (await replica.get("/v1/me", headers=UNKNOWN)).status_code == 429


async def test_limit_zero_never_locks_out(
    settings: Settings, address: str, db: asyncpg.Pool
) -> None:
    app = create_app(settings.model_copy(update={"api_auth_failure_limit": 0}))
    async with app.router.lifespan_context(app), _client(app, address) as client:
        for _ in range(LIMIT + 3):
            assert (await client.get("/v1/me", headers=UNKNOWN)).status_code == 401
