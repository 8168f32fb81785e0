"""Row-level security: a query with no WHERE never returns another tenant's rows."""

from __future__ import annotations

from uuid import UUID

import asyncpg
import pytest

from shared.db.pool import acquire, tenant_transaction
from tests.support.factories import create_user

TENANT_TABLES = [
    "templates",
    "scenarios",
    "edge_cases",
    "batch_jobs",
    "conversations",
    "conversation_turns",
    "conversation_reviews",
    "generation_items",
    "generation_logs",
    "export_logs",
]


async def _seed_template(pool: asyncpg.Pool, owner: UUID, name: str) -> None:
    async with tenant_transaction(pool, owner) as conn:
        await conn.execute(
            "INSERT INTO templates (owner_id, name, user_prompt_template) VALUES ($1, $2, 'x')",
            owner,
            name,
        )


async def test_select_without_where_sees_only_own_rows(db: asyncpg.Pool) -> None:
    async with acquire(db) as conn:
        alice = await create_user(conn)
        bob = await create_user(conn)
    await _seed_template(db, alice.id, "alice-template")
    await _seed_template(db, bob.id, "bob-template")
    async with tenant_transaction(db, alice.id) as conn:
        rows = await conn.fetch("SELECT name, owner_id FROM templates")
    assert [(r["name"], r["owner_id"]) for r in rows] == [("alice-template", alice.id)]


async def test_no_tenant_set_sees_nothing(db: asyncpg.Pool) -> None:
    async with acquire(db) as conn:
        alice = await create_user(conn)
    await _seed_template(db, alice.id, "t")
    async with acquire(db) as conn:
        assert await conn.fetchval("SELECT count(*) FROM templates") == 0


async def test_cannot_write_rows_for_another_tenant(db: asyncpg.Pool) -> None:
    async with acquire(db) as conn:
        alice = await create_user(conn)
        bob = await create_user(conn)
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
        async with tenant_transaction(db, alice.id) as conn:
            await conn.execute(
                "INSERT INTO templates (owner_id, name, user_prompt_template) "
                "VALUES ($1, 'stolen', 'x')",
                bob.id,
            )


@pytest.mark.parametrize("table", TENANT_TABLES)
async def test_every_tenant_table_forces_rls(db: asyncpg.Pool, table: str) -> None:
    async with acquire(db) as conn:
        row = await conn.fetchrow(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = $1", table
        )
        policies = await conn.fetchval(
            "SELECT count(*) FROM pg_policies WHERE tablename = $1", table
        )
    assert row is not None
    assert (row["relrowsecurity"], row["relforcerowsecurity"]) == (True, True)
    assert policies == 1


async def test_updated_at_trigger(db: asyncpg.Pool) -> None:
    async with acquire(db) as conn:
        alice = await create_user(conn)
    await _seed_template(db, alice.id, "t")
    async with tenant_transaction(db, alice.id) as conn:
        before = await conn.fetchval("SELECT updated_at FROM templates")
    async with tenant_transaction(db, alice.id) as conn:
        await conn.execute("UPDATE templates SET description = 'changed'")
        after = await conn.fetchval("SELECT updated_at FROM templates")
    assert after > before
