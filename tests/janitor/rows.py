"""Rows the janitor acts on, written with plain SQL as each owner (RLS applies)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg

from shared.conversations.seed_format import parse_seed_bytes
from shared.conversations.store import store_conversation
from shared.db.pool import tenant_transaction
from shared.models.conversation import Conversation
from shared.storage import ObjectStore

FIXTURE = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "conversations"


def ago(**delta: float) -> datetime:
    """A time in the past."""
    return datetime.now(UTC) - timedelta(**delta)


async def insert_export(
    pool: asyncpg.Pool,
    owner: UUID,
    *,
    status: str = "completed",
    object_key: str | None = None,
    expires_at: datetime | None = None,
    created_at: datetime | None = None,
    completed_at: datetime | None = None,
    heartbeat_at: datetime | None = None,
    recovery_count: int = 0,
) -> UUID:
    """An export_logs row."""
    async with tenant_transaction(pool, owner) as conn:
        export_id: UUID = await conn.fetchval(
            """INSERT INTO export_logs (owner_id, format, scope, status, object_key, expires_at,
                                        created_at, completed_at, heartbeat_at, recovery_count)
               VALUES ($1, 'jsonl', 'all', $2, $3, $4, coalesce($5, now()), $6, $7, $8)
               RETURNING id""",
            owner, status, object_key, expires_at, created_at, completed_at, heartbeat_at,
            recovery_count,
        )  # fmt: skip
    return export_id


async def insert_batch(
    pool: asyncpg.Pool,
    owner: UUID,
    *,
    items: list[str],
    status: str = "running",
    heartbeat_at: datetime | None = None,
    recovery_count: int = 0,
    mode: str = "live",
) -> UUID:
    """A generation batch (a live or batch-mode job) with one item per status in `items`."""
    async with tenant_transaction(pool, owner) as conn:
        batch_id: UUID = await conn.fetchval(
            """INSERT INTO batch_jobs (owner_id, job_type, status, total_items, heartbeat_at,
                                       started_at, created_at, recovery_count, config)
               VALUES ($1, 'generation', $2, $3, $4, $4, coalesce($4, now()), $5,
                       jsonb_build_object('mode', $6::text)) RETURNING id""",
            owner, status, len(items), heartbeat_at, recovery_count, mode,
        )  # fmt: skip
        await conn.execute(
            """INSERT INTO generation_items (owner_id, batch_id, item_index, status, request)
               SELECT $1, $2, idx - 1, status, '{}'::jsonb
                 FROM unnest($3::text[]) WITH ORDINALITY AS u(status, idx)""",
            owner,
            batch_id,
            items,
        )
    return batch_id


async def row(pool: asyncpg.Pool, owner: UUID, table: str, id: UUID) -> dict[str, Any] | None:
    """One row of a tenant table as a dict."""
    async with tenant_transaction(pool, owner) as conn:
        found = await conn.fetchrow(f"SELECT * FROM {table} WHERE id = $1", id)
    return dict(found) if found else None


async def items(pool: asyncpg.Pool, owner: UUID, batch_id: UUID) -> list[dict[str, Any]]:
    """A batch's items in order."""
    async with tenant_transaction(pool, owner) as conn:
        rows = await conn.fetch(
            "SELECT * FROM generation_items WHERE batch_id = $1 ORDER BY item_index", batch_id
        )
    return [dict(found) for found in rows]


async def update(pool: asyncpg.Pool, owner: UUID, table: str, id: UUID, **values: Any) -> None:
    """Set columns of one row."""
    columns = ", ".join(f"{name} = ${i}" for i, name in enumerate(values, start=2))
    async with tenant_transaction(pool, owner) as conn:
        await conn.execute(f"UPDATE {table} SET {columns} WHERE id = $1", id, *values.values())


async def conversation(pool: asyncpg.Pool, storage: ObjectStore, owner: UUID) -> Conversation:
    """A stored conversation (object + row) from the kit's seed file."""
    draft = parse_seed_bytes((FIXTURE / "fp-anxious-investor-001.json").read_bytes())
    unique = draft.model_copy(update={"conversation_id": f"janitor-{uuid.uuid4().hex[:12]}"})
    return await store_conversation(pool, storage, owner, unique, dedup=None)
