"""The asyncpg pool (orjson codecs) and the per-tenant transaction every query runs in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal, cast
from uuid import UUID

import asyncpg
import orjson

from shared.settings import Settings

Isolation = Literal["read_committed", "repeatable_read", "serializable"]


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


async def _init_connection(conn: asyncpg.Connection) -> None:
    """Use orjson for json/jsonb in both directions."""
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(
            typename, encoder=_dumps, decoder=orjson.loads, schema="pg_catalog"
        )


async def create_pool(settings: Settings, *, min_size: int | None = None) -> asyncpg.Pool:
    """Open the application pool as the ordinary (RLS-bound) role."""
    pool = await asyncpg.create_pool(
        settings.database_url,
        min_size=settings.database_pool_min if min_size is None else min_size,
        max_size=settings.database_pool_max,
        init=_init_connection,
        command_timeout=60,
        server_settings={"application_name": "convoforge"},
    )
    assert pool is not None
    return pool


@asynccontextmanager
async def acquire(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection, typed as the Connection it proxies."""
    async with pool.acquire() as proxy:
        yield cast(asyncpg.Connection, proxy)


@asynccontextmanager
async def tenant_transaction(
    pool: asyncpg.Pool,
    owner_id: UUID,
    *,
    isolation: Isolation = "read_committed",
    readonly: bool = False,
) -> AsyncIterator[asyncpg.Connection]:
    """A transaction in which row-level security shows only `owner_id`'s rows."""
    async with acquire(pool) as conn, conn.transaction(isolation=isolation, readonly=readonly):
        await set_tenant(conn, owner_id)
        yield conn


async def set_tenant(conn: asyncpg.Connection, owner_id: UUID) -> None:
    """Set app.user_id for the rest of the current transaction."""
    await conn.execute("SELECT set_config('app.user_id', $1, true)", str(owner_id))
