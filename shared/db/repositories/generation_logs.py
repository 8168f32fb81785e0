"""SQL for generation_logs: one row per Claude attempt, and the cost summary over them."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from shared.models.generation import CostRow, GenerationLog, NewLog

LOG_COLUMNS = ", ".join(GenerationLog.model_fields)


async def insert(
    conn: asyncpg.Connection,
    *,
    owner_id: UUID,
    batch_id: UUID,
    item_index: int,
    template_id: UUID | None,
    log: NewLog,
    conversation_id: UUID | None = None,
) -> UUID:
    """Record one attempt (a template deleted meanwhile is recorded as none); returns its id."""
    row_id: UUID = await conn.fetchval(
        """INSERT INTO generation_logs (
               owner_id, job_id, item_index, template_id, attempt, model, parameters,
               prompt_sha256, request_excerpt, response_excerpt, input_tokens, output_tokens,
               cost_usd, duration_ms, status, error_code, error_message, conversation_id,
               cache_write_tokens, cache_read_tokens, cache_ttl, price_entry, prices, mode,
               list_cost_usd, purpose)
           VALUES ($1, $2, $3, (SELECT id FROM templates WHERE id = $4), $5, $6, $7, $8, $9,
                   $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24,
                   $25, $26)
           RETURNING id""",
        owner_id,
        batch_id,
        item_index,
        template_id,
        log.attempt,
        log.model,
        log.parameters,
        log.prompt_sha256,
        log.request_excerpt,
        log.response_excerpt,
        log.input_tokens,
        log.output_tokens,
        log.cost_usd,
        log.duration_ms,
        log.status.value,
        log.error_code,
        (log.error_message or "")[:1000] or None,
        conversation_id,
        log.cache_write_tokens,
        log.cache_read_tokens,
        log.cache_ttl,
        log.price_entry,
        log.prices,
        log.mode,
        log.list_cost_usd,
        log.purpose,
    )
    return row_id


async def page(
    conn: asyncpg.Connection,
    *,
    owner_id: UUID,
    filters: dict[str, Any],
    created_from: datetime | None,
    created_to: datetime | None,
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> tuple[list[GenerationLog], int]:
    """Newest first; `filters` keys: conversation_id, job_id, status, item_index, purpose."""
    where, args = ["owner_id = $1"], list[Any]([owner_id])
    for name in ("conversation_id", "job_id", "status", "item_index", "purpose"):
        if filters.get(name) is not None:
            args.append(filters[name])
            where.append(f"{name} = ${len(args)}")
    if created_from is not None:
        args.append(created_from)
        where.append(f"created_at >= ${len(args)}")
    if created_to is not None:
        args.append(created_to)
        where.append(f"created_at < ${len(args)}")
    total: int = await conn.fetchval(
        f"SELECT count(*) FROM generation_logs WHERE {' AND '.join(where)}", *args
    )
    if after is not None:
        args.extend(after)
        where.append(f"(created_at, id) < (${len(args) - 1}, ${len(args)})")
    args.append(limit + 1)
    rows = await conn.fetch(
        f"SELECT {LOG_COLUMNS} FROM generation_logs WHERE {' AND '.join(where)} "
        f"ORDER BY created_at DESC, id DESC LIMIT ${len(args)}",
        *args,
    )
    return [GenerationLog.model_validate(dict(row)) for row in rows], total


async def cost_summary(
    conn: asyncpg.Connection,
    *,
    owner_id: UUID,
    created_from: datetime | None,
    created_to: datetime | None,
) -> list[CostRow]:
    """Requests, tokens and cost per UTC day and model."""
    rows = await conn.fetch(
        """SELECT to_char(date_trunc('day', created_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD') AS day,
                  model, count(*) AS requests,
                  coalesce(sum(input_tokens), 0) AS input_tokens,
                  coalesce(sum(output_tokens), 0) AS output_tokens,
                  coalesce(sum(cost_usd), 0) AS cost_usd,
                  count(*) FILTER (WHERE status = 'lost') AS lost_requests,
                  coalesce(sum(cost_usd) FILTER (WHERE status = 'lost'), 0) AS lost_cost_usd,
                  count(*) FILTER (WHERE status = 'in_flight') AS in_flight_requests,
                  coalesce(sum(cache_write_tokens), 0) AS cache_write_tokens,
                  coalesce(sum(cache_read_tokens), 0) AS cache_read_tokens,
                  coalesce(sum(list_cost_usd), 0) AS list_cost_usd
             FROM generation_logs
            WHERE owner_id = $1 AND ($2::timestamptz IS NULL OR created_at >= $2)
              AND ($3::timestamptz IS NULL OR created_at < $3)
            GROUP BY 1, 2 ORDER BY 1, 2""",
        owner_id,
        created_from,
        created_to,
    )
    return [CostRow.model_validate(dict(row)) for row in rows]
