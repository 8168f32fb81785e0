"""SQL for attempt rows: a generation_logs row opened before a Claude call and settled after.

Lock order as in generation.py: callers lock the `batch_jobs` row first, so a takeover that
marks a dead run's calls lost and a late answer settling one of them never interleave.
"""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

import asyncpg

from shared.models.generation import NewLog


async def open_attempt(
    conn: asyncpg.Connection,
    *,
    owner_id: UUID,
    batch_id: UUID,
    item_index: int,
    lease_id: UUID,
    template_id: UUID | None,
    log: NewLog,
    reserved: Decimal,
) -> UUID | None:
    """An `in_flight` row for the call about to leave; None when the lease is no longer ours."""
    row_id: UUID | None = await conn.fetchval(
        """INSERT INTO generation_logs (
               owner_id, job_id, item_index, template_id, attempt, model, parameters,
               prompt_sha256, request_excerpt, status, lease_id, reserved_cost_usd,
               price_entry, prices, mode, cache_ttl, purpose)
           SELECT $1, $2, $3, (SELECT id FROM templates WHERE id = $4), $5, $6, $7, $8, $9,
                  'in_flight', $10, $11, $12, $13, $14, $15, $16
            WHERE EXISTS (SELECT 1 FROM generation_items
                           WHERE batch_id = $2 AND item_index = $3 AND lease_id = $10
                             AND status = 'running')
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
        lease_id,
        reserved,
        log.price_entry,
        log.prices,
        log.mode,
        log.cache_ttl,
        log.purpose,
    )
    return row_id


async def discard(conn: asyncpg.Connection, attempt_id: UUID) -> None:
    """Delete an attempt row whose call was never sent."""
    await conn.execute(
        "DELETE FROM generation_logs WHERE id = $1 AND status = 'in_flight'", attempt_id
    )


async def counted(conn: asyncpg.Connection, attempt_id: UUID) -> Decimal:
    """What the books already hold for this attempt: its reserved cost if it was marked lost."""
    amount: Decimal | None = await conn.fetchval(
        """SELECT CASE WHEN status = 'lost' THEN cost_usd ELSE 0 END
             FROM generation_logs WHERE id = $1 FOR UPDATE""",
        attempt_id,
    )
    return amount or Decimal(0)


async def settle(
    conn: asyncpg.Connection, log: NewLog, *, conversation_id: UUID | None = None
) -> UUID:
    """Write the call's real outcome onto its attempt row (`log.attempt_id`)."""
    row_id: UUID | None = await conn.fetchval(
        """UPDATE generation_logs SET
               status = $2, response_excerpt = $3, input_tokens = $4, output_tokens = $5,
               cost_usd = $6, duration_ms = $7, error_code = $8, error_message = $9,
               conversation_id = coalesce($10, conversation_id), settled_at = now(),
               cache_write_tokens = $11, cache_read_tokens = $12, cache_ttl = $13,
               price_entry = $14, prices = $15, mode = $16, list_cost_usd = $17
         WHERE id = $1 RETURNING id""",
        log.attempt_id,
        log.status.value,
        log.response_excerpt,
        log.input_tokens,
        log.output_tokens,
        log.cost_usd,
        log.duration_ms,
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
    )
    if row_id is None:
        raise LookupError(f"attempt row {log.attempt_id} is gone")
    return row_id


async def mark_lost(
    conn: asyncpg.Connection, batch_id: UUID, item_index: int, *, keep_lease: UUID | None
) -> Decimal:
    """Settle an item's in-flight calls of other leases as lost; returns their reserved cost.

    Their reserved cost becomes their cost on the row, on the item and on the batch (so it
    counts against the cost cap); the caller holds the batch row lock.
    """
    lost: Decimal = await conn.fetchval(
        """WITH lost AS (
               UPDATE generation_logs SET status = 'lost', cost_usd = reserved_cost_usd,
                      list_cost_usd = reserved_cost_usd,
                      settled_at = now(), error_code = 'lost',
                      error_message = 'the worker that sent this call stopped before it '
                                      || 'answered; its reserved worst-case cost is booked'
                WHERE job_id = $1 AND item_index = $2 AND status = 'in_flight'
                  AND lease_id IS DISTINCT FROM $3
            RETURNING reserved_cost_usd)
           SELECT coalesce(sum(reserved_cost_usd), 0) FROM lost""",
        batch_id,
        item_index,
        keep_lease,
    )
    if lost > 0:
        await conn.execute(
            "UPDATE batch_jobs SET cost_so_far_usd = cost_so_far_usd + $2 WHERE id = $1",
            batch_id,
            lost,
        )
        await conn.execute(
            """UPDATE generation_items SET cost_usd = cost_usd + $3
                WHERE batch_id = $1 AND item_index = $2""",
            batch_id,
            item_index,
            lost,
        )
    return lost
