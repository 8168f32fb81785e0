"""Keyset batches of an export's conversations, the next one fetched while this one renders."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator

import asyncpg

from shared.db.repositories import export_source
from shared.db.repositories.export_source import Key, Scope
from shared.exports import plan
from shared.exports.formats import ExportOptions, database_columns_sql, database_render_sql
from shared.models.export import ExportConversation, MessageColumns, RenderedConversation

Batch = list[ExportConversation] | list[RenderedConversation] | list[MessageColumns]
Batches = AsyncGenerator[Batch, None]


async def batches(
    conn: asyncpg.Connection,
    scope: Scope,
    *,
    size: int,
    options: ExportOptions,
    for_card: bool = False,
    python_only: bool = False,
) -> AsyncGenerator[Batch, None]:
    """Every conversation in scope, in (created_at, id) order, `size` at a time: rendered by
    PostgreSQL when the format has SQL for these options, read as column pieces for a
    columnar file that has, else read for the Python renderer (only the columns the file
    shows, `plan.reads`).

    `python_only` (a split) always reads conversations; `for_card` adds the metadata columns
    the dataset card counts. Run inside one REPEATABLE READ transaction: every batch then
    reads the same snapshot.
    """
    render_sql = None if python_only else database_render_sql(options)
    columns_sql = None if python_only else database_columns_sql(options)
    reads = plan.reads(options)
    if for_card:
        reads["metadata"] = True

    async def fetch(after: Key | None) -> Batch:
        if render_sql is not None:
            return await export_source.rendered_batch(
                conn, scope, after=after, limit=size, render_sql=render_sql
            )
        if columns_sql is not None:
            return await export_source.column_batch(
                conn, scope, after=after, limit=size, columns_sql=columns_sql
            )
        return await export_source.batch(conn, scope, after=after, limit=size, **reads)

    pending: asyncio.Task[Batch] | None = asyncio.create_task(fetch(None))
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
