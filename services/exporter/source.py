"""Keyset batches of an export's conversations, the next one fetched while this one renders."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator

import asyncpg

from shared.db.repositories import export_source
from shared.db.repositories.export_source import Key, Scope
from shared.models.export import ExportConversation


async def batches(
    conn: asyncpg.Connection,
    scope: Scope,
    *,
    size: int,
    metadata: bool,
    annotations: bool,
    reviews: bool,
) -> AsyncGenerator[list[ExportConversation], None]:
    """Every conversation in scope, in (created_at, id) order, `size` at a time.

    Run inside one REPEATABLE READ transaction: every batch then reads the same snapshot.
    """

    async def fetch(after: Key | None) -> list[ExportConversation]:
        return await export_source.batch(
            conn, scope, after=after, limit=size, metadata=metadata, annotations=annotations,
            reviews=reviews,
        )  # fmt: skip

    pending: asyncio.Task[list[ExportConversation]] | None = asyncio.create_task(fetch(None))
    try:
        while pending is not None:
            current = await pending
            pending = None
            if len(current) == size:
                pending = asyncio.create_task(fetch(export_source.last_key(current)))
                # Let the next query reach the server before the caller renders this batch.
                await asyncio.sleep(0)
            if current:
                yield current
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, asyncpg.PostgresError):
                await pending
