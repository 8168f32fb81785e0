"""API-key authentication: every failure is a 401 in the one error shape."""

from __future__ import annotations

import asyncpg
import httpx
import pytest

from shared.db.pool import acquire
from shared.db.repositories import users as users_repo
from tests.support.factories import Account


def _assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code


async def test_me_returns_the_caller(client: httpx.AsyncClient, account: Account) -> None:
    response = await client.get("/v1/me", headers=account.headers)
    assert response.status_code == 200
    assert response.json() == {
        "user_id": str(account.user.id),
        "email": account.user.email,
        "role": "user",
        "key_prefix": account.prefix,
    }


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer two tokens"},
        {"Authorization": "Bearer not-a-key"},
        {"Authorization": "Bearer cf_00000000_" + "x" * 43},
    ],
    ids=["none", "empty", "basic", "no-token", "two-tokens", "garbage", "unknown-key"],
)
async def test_bad_credentials_are_401(
    client: httpx.AsyncClient, account: Account, headers: dict[str, str]
) -> None:
    _assert_error(await client.get("/v1/me", headers=headers), 401, "unauthorized")


async def test_revoked_key_is_401(
    client: httpx.AsyncClient, account: Account, db: asyncpg.Pool
) -> None:
    assert (await client.get("/v1/me", headers=account.headers)).status_code == 200
    async with acquire(db) as conn:
        assert await users_repo.revoke_api_key(conn, account.prefix) is not None
    _assert_error(await client.get("/v1/me", headers=account.headers), 401, "unauthorized")


async def test_use_records_last_used_at(
    client: httpx.AsyncClient, account: Account, db: asyncpg.Pool
) -> None:
    async with acquire(db) as conn:
        before = await conn.fetchval(
            "SELECT last_used_at FROM api_keys WHERE prefix = $1", account.prefix
        )
    await client.get("/v1/me", headers=account.headers)
    async with acquire(db) as conn:
        after = await conn.fetchval(
            "SELECT last_used_at FROM api_keys WHERE prefix = $1", account.prefix
        )
    assert before is None
    assert after is not None


async def test_keys_are_stored_hashed(account: Account, db: asyncpg.Pool) -> None:
    async with acquire(db) as conn:
        row = await conn.fetchrow("SELECT * FROM api_keys WHERE prefix = $1", account.prefix)
    assert row is not None
    assert account.key.encode() not in bytes(row["key_hash"])
    assert all(account.key not in str(value) for value in row.values())
    assert account.key.startswith(account.prefix + "_")
