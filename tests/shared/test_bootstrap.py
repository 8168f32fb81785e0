"""Set-up through the admin DSN marks `@@` LEAKPROOF when it can, and says so when it cannot."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from structlog.testing import capture_logs

from shared.db.bootstrap import (
    drop_database,
    dsn_for_database,
    ensure_role_and_database,
    ensure_search_leakproof,
    parse_app_dsn,
    search_is_indexable,
)
from shared.db.migrate import migrate
from tests.conftest import ADMIN_URL, APP_ROLE


async def _indexable(dsn: str) -> bool:
    conn = await asyncpg.connect(dsn)
    try:
        return await search_is_indexable(conn)
    finally:
        await conn.close()


@pytest.fixture
async def stock_db(database_url: str) -> AsyncIterator[str]:
    """A database created without the bootstrap, owned by the app role (which the session's
    `database_url` made sure exists): a stock catalog, in which ts_match_vq is not LEAKPROOF.
    Yields the app role's DSN."""
    name = f"convoforge_boot_{uuid.uuid4().hex[:8]}"
    url = f"postgresql://{APP_ROLE}@127.0.0.1:5432/{name}"
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        role = parse_app_dsn(url)[0]
        await conn.execute(f'CREATE DATABASE "{name}" OWNER "{role}"')
    finally:
        await conn.close()
    yield url
    await drop_database(ADMIN_URL, name)


async def test_a_new_database_gets_an_indexable_search(stock_db: str) -> None:
    assert not await _indexable(stock_db)
    name = parse_app_dsn(stock_db)[2]
    await ensure_role_and_database(ADMIN_URL, stock_db)
    assert await _indexable(stock_db)
    # Idempotent: already marked, nothing to do, no superuser needed any more.
    assert await ensure_search_leakproof(stock_db, name)


async def test_without_a_superuser_it_warns_and_goes_on(stock_db: str) -> None:
    name = parse_app_dsn(stock_db)[2]
    with capture_logs() as logs:
        # The app role as "admin": an ordinary role, like a managed service's admin user.
        assert not await ensure_search_leakproof(stock_db, name)
    assert not await _indexable(stock_db)
    warnings = [log for log in logs if log["event"] == "db.bootstrap.search_not_indexable"]
    assert len(warnings) == 1, logs
    assert warnings[0]["log_level"] == "warning"
    assert (
        "ALTER FUNCTION pg_catalog.ts_match_vq(tsvector, tsquery) LEAKPROOF" in warnings[0]["fix"]
    )


async def test_migrating_a_database_without_it_warns(stock_db: str) -> None:
    with capture_logs() as logs:
        applied = await migrate(stock_db)
    assert applied, "the migrations should apply"
    events = [log["event"] for log in logs if log["log_level"] == "warning"]
    assert events == ["db.migration.search_not_indexable"]
    with capture_logs() as logs:
        await migrate(stock_db)
    assert [log["event"] for log in logs] == ["db.migration.search_not_indexable"]


def test_dsn_for_database_keeps_everything_but_the_database() -> None:
    dsn = "postgresql://admin:s%40cret@db.example:6432/postgres?sslmode=require"
    assert dsn_for_database(dsn, "convoforge") == (
        "postgresql://admin:s%40cret@db.example:6432/convoforge?sslmode=require"
    )


async def test_an_unreachable_database_is_a_warning_not_a_failure() -> None:
    missing = f"convoforge_missing_{uuid.uuid4().hex[:8]}"
    with capture_logs() as logs:
        assert not await ensure_search_leakproof(ADMIN_URL, missing)
    assert [log["event"] for log in logs] == ["db.bootstrap.search_not_indexable"]
