"""SQL for generation batches and their items (inside a tenant transaction, batch row first).

Lock order: every transaction that touches both locks the `batch_jobs` row before any of its
`generation_items` rows, so the API, the jobs and their heartbeats never deadlock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg

from shared.models.generation import BatchJob, GenerationItem, ItemRequest, ItemStatus

BATCH_COLUMNS = ", ".join(BatchJob.model_fields)
ITEM_COLUMNS = ", ".join(GenerationItem.model_fields)

# One statement moves cost and counters and finishes the batch when every item is terminal
# (SET expressions see the old row, so each adds the increments itself).
_DONE = "completed_items + failed_items + skipped_items + $3 + $4 + $5"
_SETTLE_SQL = f"""
UPDATE batch_jobs SET
    cost_so_far_usd = cost_so_far_usd + $2,
    completed_items = completed_items + $3,
    failed_items = failed_items + $4,
    skipped_items = skipped_items + $5,
    progress_percent = LEAST(100, round(100.0 * ({_DONE}) / GREATEST(total_items, 1), 2)),
    heartbeat_at = now(),
    status = CASE
        WHEN completed_at IS NOT NULL OR {_DONE} < total_items THEN status
        WHEN status = 'cancelled' THEN 'cancelled'
        WHEN completed_items + $3 = 0 AND total_items > 0 THEN 'failed'
        ELSE 'completed' END,
    estimated_completion_at = CASE WHEN {_DONE} >= total_items THEN NULL
                                   ELSE estimated_completion_at END,
    completed_at = CASE WHEN completed_at IS NULL AND {_DONE} >= total_items THEN now()
                        ELSE completed_at END
WHERE id = $1
"""
# Batch and item in one round trip; only the batch row is locked (it serializes item writers).
_PAIR_COLUMNS = ", ".join(
    [f"b.{name} AS b__{name}" for name in BatchJob.model_fields]
    + [f"i.{name} AS i__{name}" for name in GenerationItem.model_fields]
)


def _batch(row: asyncpg.Record) -> BatchJob:
    return BatchJob.model_validate(dict(row))


def _item(row: asyncpg.Record) -> GenerationItem:
    return GenerationItem.model_validate(dict(row))


async def load(
    conn: asyncpg.Connection, batch_id: UUID, item_index: int
) -> tuple[BatchJob, GenerationItem] | None:
    """A batch (locked FOR UPDATE) and one of its items, in one round trip."""
    row = await conn.fetchrow(
        f"""SELECT {_PAIR_COLUMNS} FROM batch_jobs b
              JOIN generation_items i ON i.batch_id = b.id AND i.item_index = $2
             WHERE b.id = $1 FOR UPDATE OF b""",
        batch_id,
        item_index,
    )
    if row is None:
        return None
    batch = {key[3:]: value for key, value in row.items() if key.startswith("b__")}
    item = {key[3:]: value for key, value in row.items() if key.startswith("i__")}
    return BatchJob.model_validate(batch), GenerationItem.model_validate(item)


async def owner_of(conn: asyncpg.Connection, batch_id: UUID) -> UUID | None:
    """The tenant a batch belongs to (job_owners is not a tenant table; ids only)."""
    owner: UUID | None = await conn.fetchval(
        "SELECT owner_id FROM job_owners WHERE job_id = $1", batch_id
    )
    return owner


async def insert_batch(
    conn: asyncpg.Connection,
    *,
    owner_id: UUID,
    total: int,
    concurrency: int,
    cost_cap_usd: Decimal | None,
    config: dict[str, Any],
    estimated_completion_at: datetime | None,
    job_type: str = "generation",
) -> BatchJob:
    """A queued generation batch (or quality_check job: items judged instead of written)."""
    row = await conn.fetchrow(
        f"""INSERT INTO batch_jobs (owner_id, job_type, total_items, concurrency, cost_cap_usd,
                                    config, estimated_completion_at, created_by)
            VALUES ($1, $7, $2, $3, $4, $5, $6, $1) RETURNING {BATCH_COLUMNS}""",
        owner_id,
        total,
        concurrency,
        cost_cap_usd,
        config,
        estimated_completion_at,
        job_type,
    )
    assert row is not None
    return _batch(row)


async def insert_items(
    conn: asyncpg.Connection,
    *,
    owner_id: UUID,
    batch_id: UUID,
    requests: Sequence[ItemRequest],
    dispatch_first: int,
) -> None:
    """One row per request; items past the first `dispatch_first` start parked."""
    count = len(requests)
    await conn.execute(
        """INSERT INTO generation_items (owner_id, batch_id, item_index, request, tier, template_id,
                                         parked, dispatched_at)
           SELECT $1, $2, idx, req, tier, tpl, idx >= $7,
                  CASE WHEN idx < $7 THEN now() END
             FROM unnest($3::int[], $4::jsonb[], $5::text[], $6::uuid[])
                  AS u(idx, req, tier, tpl)""",
        owner_id,
        batch_id,
        list(range(count)),
        [request.model_dump(mode="json") for request in requests],
        [request.tier.value for request in requests],
        [request.template_id for request in requests],
        dispatch_first,
    )


async def get_batch(
    conn: asyncpg.Connection, batch_id: UUID, *, owner_id: UUID | None = None, lock: bool = False
) -> BatchJob | None:
    """One generation or quality_check batch (locked FOR UPDATE when `lock`)."""
    sql = (
        f"SELECT {BATCH_COLUMNS} FROM batch_jobs WHERE id = $1 "
        "AND job_type IN ('generation', 'quality_check')"
    )
    args: list[Any] = [batch_id]
    if owner_id is not None:
        sql += " AND owner_id = $2"
        args.append(owner_id)
    row = await conn.fetchrow(sql + (" FOR UPDATE" if lock else ""), *args)
    return _batch(row) if row else None


async def page_batches(
    conn: asyncpg.Connection,
    *,
    owner_id: UUID,
    status: str | None,
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> tuple[list[BatchJob], int]:
    """Newest first; up to `limit + 1` rows and the filtered total."""
    where, args = ["owner_id = $1", "job_type = 'generation'"], list[Any]([owner_id])
    if status is not None:
        args.append(status)
        where.append(f"status = ${len(args)}")
    total: int = await conn.fetchval(
        f"SELECT count(*) FROM batch_jobs WHERE {' AND '.join(where)}", *args
    )
    if after is not None:
        args.extend(after)
        where.append(f"(created_at, id) < (${len(args) - 1}, ${len(args)})")
    args.append(limit + 1)
    rows = await conn.fetch(
        f"SELECT {BATCH_COLUMNS} FROM batch_jobs WHERE {' AND '.join(where)} "
        f"ORDER BY created_at DESC, id DESC LIMIT ${len(args)}",
        *args,
    )
    return [_batch(row) for row in rows], total


async def get_item(
    conn: asyncpg.Connection, batch_id: UUID, item_index: int, *, lock: bool = False
) -> GenerationItem | None:
    """One item of a batch."""
    row = await conn.fetchrow(
        f"SELECT {ITEM_COLUMNS} FROM generation_items WHERE batch_id = $1 AND item_index = $2"
        + (" FOR UPDATE" if lock else ""),
        batch_id,
        item_index,
    )
    return _item(row) if row else None


async def page_items(
    conn: asyncpg.Connection,
    batch_id: UUID,
    *,
    status: str | None,
    after_index: int | None,
    limit: int,
) -> list[GenerationItem]:
    """Items in index order; up to `limit + 1`."""
    rows = await conn.fetch(
        f"""SELECT {ITEM_COLUMNS} FROM generation_items
             WHERE batch_id = $1 AND ($2::text IS NULL OR status = $2) AND item_index > $3
             ORDER BY item_index LIMIT $4""",
        batch_id,
        status,
        -1 if after_index is None else after_index,
        limit + 1,
    )
    return [_item(row) for row in rows]


async def status_counts(conn: asyncpg.Connection, batch_id: UUID) -> dict[str, int]:
    """How many items are in each status."""
    rows = await conn.fetch(
        "SELECT status, count(*) AS n FROM generation_items WHERE batch_id = $1 GROUP BY status",
        batch_id,
    )
    return {row["status"]: row["n"] for row in rows}


async def recent_errors(
    conn: asyncpg.Connection, batch_id: UUID, *, limit: int = 20
) -> list[dict[str, Any]]:
    """The latest failed or skipped items with their reasons."""
    rows = await conn.fetch(
        """SELECT item_index, status, error_code, error, attempts FROM generation_items
            WHERE batch_id = $1 AND error_code IS NOT NULL
            ORDER BY finished_at DESC NULLS LAST, item_index LIMIT $2""",
        batch_id,
        limit,
    )
    return [dict(row) for row in rows]


async def running_count(conn: asyncpg.Connection, batch_id: UUID, *, besides: int = -1) -> int:
    """Items running under a live lease (a killed worker's items stop counting when it lapses)."""
    count: int = await conn.fetchval(
        """SELECT count(*) FROM generation_items
            WHERE batch_id = $1 AND status = 'running' AND lease_until > now()
              AND item_index <> $2""",
        batch_id,
        besides,
    )
    return count


async def take_lease(
    conn: asyncpg.Connection, batch_id: UUID, item_index: int, lease_id: UUID, seconds: float
) -> GenerationItem:
    """Mark the item running under `lease_id` and the batch running (batch already locked)."""
    row = await conn.fetchrow(
        f"""WITH batch AS (
                UPDATE batch_jobs
                   SET status = CASE WHEN status = 'queued' THEN 'running' ELSE status END,
                       started_at = coalesce(started_at, now()), heartbeat_at = now()
                 WHERE id = $1)
            UPDATE generation_items SET status = 'running', lease_id = $3,
                   lease_until = now() + make_interval(secs => $4), parked = false,
                   reserved_cost_usd = 0, started_at = coalesce(started_at, now())
             WHERE batch_id = $1 AND item_index = $2 RETURNING {ITEM_COLUMNS}""",
        batch_id,
        item_index,
        lease_id,
        seconds,
    )
    assert row is not None
    return _item(row)


async def park(conn: asyncpg.Connection, batch_id: UUID, item_index: int) -> None:
    """Wait for a concurrency slot without a queued job (a finishing item dispatches it)."""
    await conn.execute(
        """UPDATE generation_items SET status = 'queued', parked = true, lease_id = NULL,
                  lease_until = NULL, reserved_cost_usd = 0
            WHERE batch_id = $1 AND item_index = $2""",
        batch_id,
        item_index,
    )


async def heartbeat(
    conn: asyncpg.Connection, batch_id: UUID, item_index: int, lease_id: UUID, seconds: float
) -> bool:
    """Extend the lease and the batch heartbeat; False when the lease is no longer ours."""
    await conn.execute("UPDATE batch_jobs SET heartbeat_at = now() WHERE id = $1", batch_id)
    status: str = await conn.execute(
        """UPDATE generation_items SET lease_until = now() + make_interval(secs => $4)
            WHERE batch_id = $1 AND item_index = $2 AND lease_id = $3 AND status = 'running'""",
        batch_id,
        item_index,
        lease_id,
        seconds,
    )
    return status.endswith(" 1")


async def reserved_by_others(conn: asyncpg.Connection, batch_id: UUID, item_index: int) -> Decimal:
    """Worst-case cost of calls other running items have in flight (lapsed leases too)."""
    total: Decimal = await conn.fetchval(
        """SELECT coalesce(sum(reserved_cost_usd), 0) FROM generation_items
            WHERE batch_id = $1 AND item_index <> $2 AND status = 'running'""",
        batch_id,
        item_index,
    )
    return total


async def reserve(
    conn: asyncpg.Connection, batch_id: UUID, item_index: int, lease_id: UUID, amount: Decimal
) -> bool:
    """Hold `amount` against the cost cap for the call about to start; False if not our lease."""
    status: str = await conn.execute(
        """UPDATE generation_items SET reserved_cost_usd = $4
            WHERE batch_id = $1 AND item_index = $2 AND lease_id = $3 AND status = 'running'""",
        batch_id,
        item_index,
        lease_id,
        amount,
    )
    return status.endswith(" 1")


async def add_attempt(
    conn: asyncpg.Connection,
    batch_id: UUID,
    item_index: int,
    lease_id: UUID,
    *,
    cost: Decimal,
    consumed: bool,
) -> int | None:
    """Book a finished call: its cost always (it was spent); the attempt only on our lease.

    Returns the item's attempts, or None when the lease is no longer ours.
    """
    await settle(conn, batch_id, cost=cost)
    attempts: int | None = await conn.fetchval(
        """UPDATE generation_items SET cost_usd = cost_usd + $3,
                  attempts = attempts + CASE WHEN lease_id = $4 AND status = 'running'
                                             THEN $5 ELSE 0 END,
                  reserved_cost_usd = CASE WHEN lease_id = $4 AND status = 'running' THEN 0
                                           ELSE reserved_cost_usd END
            WHERE batch_id = $1 AND item_index = $2
            RETURNING CASE WHEN lease_id = $4 AND status = 'running' THEN attempts END""",
        batch_id,
        item_index,
        cost,
        lease_id,
        int(consumed),
    )
    return attempts


async def finish_item(
    conn: asyncpg.Connection,
    batch_id: UUID,
    item_index: int,
    *,
    status: ItemStatus,
    lease_id: UUID | None,
    conversation_id: UUID | None = None,
    error_code: str | None = None,
    error: str | None = None,
    add_cost: Decimal = Decimal(0),
    add_attempt: bool = False,
    counted: bool = False,
) -> GenerationItem | None:
    """Flip a running (our lease) or queued (lease_id None) item to a terminal status and count it.

    Returns None, changing nothing, when the item is not in that state: the flip and the
    counters move together exactly once, whatever runs twice. `counted` means the caller
    already moved the batch counters in this transaction (and rolls back if this returns None).
    """
    condition = "status = 'running' AND lease_id = $9" if lease_id else "status = 'queued'"
    row = await conn.fetchrow(
        f"""UPDATE generation_items SET status = $3, conversation_id = $4, error_code = $5,
                   error = $6, finished_at = now(), lease_id = NULL, lease_until = NULL,
                   reserved_cost_usd = 0, parked = false, cost_usd = cost_usd + $7,
                   attempts = attempts + $8
             WHERE batch_id = $1 AND item_index = $2 AND {condition}
             RETURNING {ITEM_COLUMNS}""",
        batch_id,
        item_index,
        status.value,
        conversation_id,
        error_code,
        (error or "")[:1000] or None,
        add_cost,
        int(add_attempt),
        *([lease_id] if lease_id else []),
    )
    if row is None:
        return None
    item = _item(row)
    if not counted:
        await count(conn, batch_id, status, 1)
    if item.template_id is not None and status in (ItemStatus.COMPLETED, ItemStatus.FAILED):
        await _touch_template(conn, item.template_id)
    return item


async def count(conn: asyncpg.Connection, batch_id: UUID, status: ItemStatus, n: int) -> None:
    """Add `n` items of `status` to the batch counters (finishing the batch if it is done)."""
    if n <= 0:
        return
    completed = n if status == ItemStatus.COMPLETED else 0
    failed = n if status == ItemStatus.FAILED else 0
    skipped = n if status in (ItemStatus.SKIPPED, ItemStatus.CANCELLED) else 0
    await settle(conn, batch_id, completed=completed, failed=failed, skipped=skipped)


async def settle(
    conn: asyncpg.Connection,
    batch_id: UUID,
    *,
    cost: Decimal = Decimal(0),
    completed: int = 0,
    failed: int = 0,
    skipped: int = 0,
) -> None:
    """Move cost and counters in one statement; the batch finishes when every item is done."""
    await conn.execute(_SETTLE_SQL, batch_id, cost, completed, failed, skipped)


async def _touch_template(conn: asyncpg.Connection, template_id: UUID) -> None:
    await conn.execute(
        """UPDATE templates t SET usage_count = s.used,
                  success_rate = CASE WHEN s.used > 0 THEN round(s.ok::numeric / s.used, 4) END
             FROM (SELECT count(*) FILTER (WHERE status IN ('completed', 'failed')) AS used,
                          count(*) FILTER (WHERE status = 'completed') AS ok
                     FROM generation_items WHERE template_id = $1) s
            WHERE t.id = $1""",
        template_id,
    )


async def release(
    conn: asyncpg.Connection, batch_id: UUID, item_index: int, lease_id: UUID
) -> bool:
    """Give a running item back to the queue (its job comes back later)."""
    status: str = await conn.execute(
        """UPDATE generation_items SET status = 'queued', lease_id = NULL, lease_until = NULL,
                  reserved_cost_usd = 0, parked = false, dispatched_at = now()
            WHERE batch_id = $1 AND item_index = $2 AND lease_id = $3 AND status = 'running'""",
        batch_id,
        item_index,
        lease_id,
    )
    return status.endswith(" 1")


async def skip_queued(
    conn: asyncpg.Connection, batch_id: UUID, *, status: ItemStatus, code: str, error: str
) -> int:
    """Every still-queued item of the batch becomes skipped/cancelled; returns how many."""
    rows = await conn.fetch(
        """UPDATE generation_items SET status = $2, error_code = $3, error = $4,
                  finished_at = now(), parked = false
            WHERE batch_id = $1 AND status = 'queued' RETURNING item_index""",
        batch_id,
        status.value,
        code,
        error,
    )
    await count(conn, batch_id, status, len(rows))
    return len(rows)


async def set_stop(
    conn: asyncpg.Connection, batch_id: UUID, *, reason: str, error: str | None, cancel: bool
) -> None:
    """Record why the batch stops (the first reason wins); `cancel` also marks it cancelled."""
    await conn.execute(
        """UPDATE batch_jobs SET stop_reason = coalesce(stop_reason, $2),
                  error = coalesce(error, $3),
                  status = CASE WHEN $4 THEN 'cancelled' ELSE status END,
                  estimated_completion_at = NULL
            WHERE id = $1""",
        batch_id,
        reason,
        error,
        cancel,
    )
    await settle(conn, batch_id)


async def requeue_failed(conn: asyncpg.Connection, batch_id: UUID) -> list[int]:
    """Failed items back to queued with fresh attempts; the batch reopens. Returns indexes."""
    rows = await conn.fetch(
        """UPDATE generation_items SET status = 'queued', attempts = 0, error_code = NULL,
                  error = NULL, finished_at = NULL, parked = false, dispatched_at = now()
            WHERE batch_id = $1 AND status = 'failed' RETURNING item_index""",
        batch_id,
    )
    indexes = sorted(row["item_index"] for row in rows)
    if indexes:
        await conn.execute(
            """UPDATE batch_jobs SET failed_items = failed_items - $2,
                      status = CASE WHEN started_at IS NULL THEN 'queued' ELSE 'running' END,
                      completed_at = NULL,
                      stop_reason = CASE WHEN stop_reason = 'cost_cap_reached'
                                         THEN stop_reason END,
                      error = NULL,
                      progress_percent = round(100.0 * (completed_items + failed_items - $2
                                                        + skipped_items)
                                               / GREATEST(total_items, 1), 2)
                WHERE id = $1""",
            batch_id,
            len(indexes),
        )
    return indexes


async def wake_parked(conn: asyncpg.Connection, batch_id: UUID, slots: int) -> list[int]:
    """Unpark up to `slots` waiting items, lowest index first; returns their indexes."""
    rows = await conn.fetch(
        """WITH picked AS (
               SELECT id FROM generation_items
                WHERE batch_id = $1 AND status = 'queued' AND parked
                ORDER BY item_index LIMIT $2 FOR UPDATE SKIP LOCKED)
           UPDATE generation_items i SET parked = false, dispatched_at = now()
             FROM picked WHERE i.id = picked.id RETURNING i.item_index""",
        batch_id,
        slots,
    )
    return sorted(row["item_index"] for row in rows)


async def recently_woken(conn: asyncpg.Connection, batch_id: UUID, seconds: float) -> int:
    """Queued items woken in the last `seconds`: their jobs are about to claim a slot."""
    pending: int = await conn.fetchval(
        """SELECT count(*) FROM generation_items
            WHERE batch_id = $1 AND status = 'queued' AND NOT parked
              AND dispatched_at >= now() - make_interval(secs => $2)""",
        batch_id,
        seconds,
    )
    return pending


async def link_log(conn: asyncpg.Connection, log_id: UUID, conversation_id: UUID) -> None:
    """Point the successful attempt's log row at the conversation it produced."""
    await conn.execute(
        "UPDATE generation_logs SET conversation_id = $2 WHERE id = $1", log_id, conversation_id
    )


async def conversation_for_item(
    conn: asyncpg.Connection, batch_id: UUID, item_index: int
) -> UUID | None:
    """The conversation an item already landed, if any."""
    found: UUID | None = await conn.fetchval(
        "SELECT id FROM conversations WHERE generation_job_id = $1 AND generation_item_index = $2",
        batch_id,
        item_index,
    )
    return found


async def lease_seconds_left(conn: asyncpg.Connection, batch_id: UUID, item_index: int) -> float:
    """Seconds until the item's lease lapses (0 when there is none or it already lapsed)."""
    left: float | None = await conn.fetchval(
        """SELECT GREATEST(0, extract(epoch FROM lease_until - now()))::float8
             FROM generation_items WHERE batch_id = $1 AND item_index = $2""",
        batch_id,
        item_index,
    )
    return left or 0.0
