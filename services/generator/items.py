"""An item's state changes, each one tenant transaction that locks the batch row first.

A run holds an item under a lease (a fencing token): every write that depends on still owning
the item names the lease, so a run that lost it (killed worker, lapsed heartbeat) changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from uuid import UUID

import asyncpg

from shared.db.pool import acquire, tenant_transaction
from shared.db.repositories import attempts as attempts_repo
from shared.db.repositories import generation as repo
from shared.db.repositories import generation_logs as logs_repo
from shared.logging import get_logger
from shared.models.generation import (
    TERMINAL_BATCH,
    TERMINAL_ITEM,
    BatchJob,
    BatchStatus,
    GenerationItem,
    ItemStatus,
    NewLog,
    StopReason,
)

log = get_logger(__name__)
# A woken job usually claims its slot within a second or two; count it as taken meanwhile.
_WOKEN_GRACE_SECONDS = 10.0
# A batch's owner never changes: remember it (bounded) instead of asking for every job.
_OWNERS: dict[UUID, UUID] = {}
_OWNERS_MAX = 10_000


@dataclass(frozen=True)
class ItemRef:
    """Which item, for which tenant, under which lease."""

    owner_id: UUID
    batch_id: UUID
    index: int
    lease_id: UUID


class ClaimState(StrEnum):
    """What claiming an item found."""

    RUNNING = "running"
    DONE = "done"
    PARKED = "parked"
    BUSY = "busy"
    MISSING = "missing"


@dataclass(frozen=True)
class Claim:
    """The claim's outcome; `item`/`batch` are set when RUNNING, `wait_s` when BUSY."""

    state: ClaimState
    item: GenerationItem | None = None
    batch: BatchJob | None = None
    wait_s: float = 0.0


class Gate(StrEnum):
    """May the next call start?"""

    GO = "go"
    WAIT = "wait"
    STOP = "stop"
    LOST = "lost"


async def owner_of(pool: asyncpg.Pool, batch_id: UUID) -> UUID | None:
    """The tenant a batch belongs to."""
    owner = _OWNERS.get(batch_id)
    if owner is not None:
        return owner
    async with acquire(pool) as conn:
        owner = await repo.owner_of(conn, batch_id)
    if owner is not None:
        if len(_OWNERS) >= _OWNERS_MAX:
            _OWNERS.clear()
        _OWNERS[batch_id] = owner
    return owner


async def claim(pool: asyncpg.Pool, ref: ItemRef, lease_seconds: float) -> Claim:
    """Take the item under `ref.lease_id`, park it for a slot, or say why not."""
    async with tenant_transaction(pool, ref.owner_id) as conn:
        pair = await repo.load(conn, ref.batch_id, ref.index)
        if pair is None:
            return Claim(ClaimState.MISSING)
        batch, item = pair
        if item.status in TERMINAL_ITEM:
            return Claim(ClaimState.DONE, item)
        if item.status == ItemStatus.RUNNING:
            # Another run holds a live lease (a duplicate job): let it finish.
            left = await repo.lease_seconds_left(conn, ref.batch_id, ref.index)
            if left > 0:
                return Claim(ClaimState.BUSY, wait_s=left)
        if batch.status == BatchStatus.CANCELLED or batch.stop_reason:
            await _stop_item(conn, batch, item)
            return Claim(ClaimState.DONE, item)
        if batch.concurrency < batch.total_items and (
            await repo.running_count(conn, ref.batch_id, besides=ref.index) >= batch.concurrency
        ):
            await repo.park(conn, ref.batch_id, ref.index)
            return Claim(ClaimState.PARKED)
        # No live run holds the item now: calls still in flight belong to a dead (or given-up)
        # run and go on the books as lost, before this run may spend anything.
        await attempts_repo.mark_lost(conn, ref.batch_id, ref.index, keep_lease=ref.lease_id)
        taken = await repo.take_lease(conn, ref.batch_id, ref.index, ref.lease_id, lease_seconds)
        return Claim(ClaimState.RUNNING, taken, batch)


async def _stop_item(conn: asyncpg.Connection, batch: BatchJob, item: GenerationItem) -> None:
    """Finish an item of a cancelled or stopped batch without running it."""
    cancelled = batch.status == BatchStatus.CANCELLED
    status = ItemStatus.CANCELLED if cancelled else ItemStatus.SKIPPED
    code = StopReason.CANCELLED.value if cancelled else batch.stop_reason
    lease = item.lease_id if item.status == ItemStatus.RUNNING else None
    if lease is not None:
        await attempts_repo.mark_lost(conn, batch.id, item.item_index, keep_lease=None)
    await repo.finish_item(
        conn, batch.id, item.item_index, status=status, lease_id=lease,
        error_code=code, error=batch.error or f"batch stopped: {code}",
    )  # fmt: skip


async def heartbeat(pool: asyncpg.Pool, ref: ItemRef, lease_seconds: float) -> bool:
    """Keep the lease and the batch heartbeat fresh; False once the lease is lost."""
    async with tenant_transaction(pool, ref.owner_id) as conn:
        return await repo.heartbeat(conn, ref.batch_id, ref.index, ref.lease_id, lease_seconds)


async def gate(pool: asyncpg.Pool, ref: ItemRef, reservation: Decimal) -> Gate:
    """Before a call: stop for cancel/stop/cost cap, wait for cap room, or reserve and go."""
    async with tenant_transaction(pool, ref.owner_id) as conn:
        pair = await repo.load(conn, ref.batch_id, ref.index)
        if pair is None or not _ours(pair[1], ref):
            return Gate.LOST
        batch, item = pair
        if batch.status == BatchStatus.CANCELLED or batch.stop_reason:
            await _stop_item(conn, batch, item)
            return Gate.STOP
        cap = batch.cost_cap_usd
        if cap is not None and batch.cost_so_far_usd + reservation > cap:
            await _stop_batch(conn, ref, StopReason.COST_CAP, _cap_message(batch, reservation))
            return Gate.STOP
        if cap is not None:
            others = await repo.reserved_by_others(conn, ref.batch_id, ref.index)
            if batch.cost_so_far_usd + others + reservation > cap:
                return Gate.WAIT
        await repo.reserve(conn, ref.batch_id, ref.index, ref.lease_id, reservation)
        return Gate.GO


def _ours(item: GenerationItem, ref: ItemRef) -> bool:
    return item.status == ItemStatus.RUNNING and item.lease_id == ref.lease_id


def _cap_message(batch: BatchJob, reservation: Decimal) -> str:
    return (
        f"cost cap ${batch.cost_cap_usd} reached: ${batch.cost_so_far_usd} spent, the next call "
        f"may cost up to ${reservation}"
    )


async def _stop_batch(
    conn: asyncpg.Connection, ref: ItemRef, reason: StopReason, message: str
) -> None:
    """Stop the batch: this item and every queued one are skipped with the reason."""
    await repo.set_stop(conn, ref.batch_id, reason=reason.value, error=message, cancel=False)
    await repo.finish_item(
        conn, ref.batch_id, ref.index, status=ItemStatus.SKIPPED, lease_id=ref.lease_id,
        error_code=reason.value, error=message,
    )  # fmt: skip
    await repo.skip_queued(
        conn, ref.batch_id, status=ItemStatus.SKIPPED, code=reason.value, error=message
    )


async def open_attempt(
    pool: asyncpg.Pool, ref: ItemRef, template_id: UUID | None, log: NewLog, reserved: Decimal
) -> UUID | None:
    """Put the call about to leave on the books (in flight, worst-case cost); None if not ours."""
    async with tenant_transaction(pool, ref.owner_id) as conn:
        # The batch lock first: a takeover (claim) books lost calls and takes the lease under
        # it, so the lease check below sees its outcome, never a row it would miss.
        await repo.get_batch(conn, ref.batch_id, lock=True)
        return await attempts_repo.open_attempt(
            conn, owner_id=ref.owner_id, batch_id=ref.batch_id, item_index=ref.index,
            lease_id=ref.lease_id, template_id=template_id, log=log, reserved=reserved,
        )  # fmt: skip


async def discard_attempt(pool: asyncpg.Pool, ref: ItemRef, attempt_id: UUID) -> None:
    """Drop the row of a call that never left (no permit); if that fails, it is booked lost."""
    try:
        async with tenant_transaction(pool, ref.owner_id) as conn:
            await attempts_repo.discard(conn, attempt_id)
    except Exception as exc:  # database down: the next claim books it as lost (worst case)
        log.warning("generator.attempt.discard_failed", error=str(exc))


async def already_booked(conn: asyncpg.Connection, ref: ItemRef, log: NewLog) -> Decimal:
    """Lock the batch, then say what the books already hold for this call (lost: reserved)."""
    await repo.get_batch(conn, ref.batch_id, lock=True)
    if log.attempt_id is None:
        return Decimal(0)
    return await attempts_repo.counted(conn, log.attempt_id)


async def write_log(
    conn: asyncpg.Connection,
    ref: ItemRef,
    template_id: UUID | None,
    log: NewLog,
    conversation_id: UUID | None = None,
) -> UUID:
    """Settle the call's attempt row, or insert a row for a call that had none."""
    if log.attempt_id is not None:
        return await attempts_repo.settle(conn, log, conversation_id=conversation_id)
    return await logs_repo.insert(
        conn, owner_id=ref.owner_id, batch_id=ref.batch_id, item_index=ref.index,
        template_id=template_id, log=log, conversation_id=conversation_id,
    )  # fmt: skip


async def book(
    pool: asyncpg.Pool, ref: ItemRef, template_id: UUID | None, log: NewLog, *, consumed: bool
) -> tuple[int | None, UUID]:
    """Record one finished call: its log row, its cost, and (on our lease) the attempt."""
    async with tenant_transaction(pool, ref.owner_id) as conn:
        booked = await already_booked(conn, ref, log)
        attempts = await repo.add_attempt(
            conn, ref.batch_id, ref.index, ref.lease_id, cost=log.cost_usd - booked,
            consumed=consumed,
        )  # fmt: skip
        log_id = await write_log(conn, ref, template_id, log)
        return attempts, log_id


async def fail(
    pool: asyncpg.Pool, ref: ItemRef, code: str, message: str, *, stop: StopReason | None = None
) -> bool:
    """Fail the item (and with `stop`, skip the rest of the batch); False if not ours."""
    async with tenant_transaction(pool, ref.owner_id) as conn:
        await repo.get_batch(conn, ref.batch_id, lock=True)
        if stop is not None:
            await repo.set_stop(conn, ref.batch_id, reason=stop.value, error=message, cancel=False)
        item = await repo.finish_item(
            conn, ref.batch_id, ref.index, status=ItemStatus.FAILED, lease_id=ref.lease_id,
            error_code=code, error=message,
        )  # fmt: skip
        if stop is not None:
            await repo.skip_queued(
                conn, ref.batch_id, status=ItemStatus.SKIPPED, code=stop.value, error=message
            )
        return item is not None


async def release(pool: asyncpg.Pool, ref: ItemRef) -> bool:
    """Hand a running item back to the queue (its job will come back)."""
    async with tenant_transaction(pool, ref.owner_id) as conn:
        await repo.get_batch(conn, ref.batch_id, lock=True)
        return await repo.release(conn, ref.batch_id, ref.index, ref.lease_id)


async def adopt(pool: asyncpg.Pool, ref: ItemRef) -> UUID | None:
    """The item's conversation already exists (an earlier run landed it): complete the item."""
    async with tenant_transaction(pool, ref.owner_id) as conn:
        await repo.get_batch(conn, ref.batch_id, lock=True)
        found = await repo.conversation_for_item(conn, ref.batch_id, ref.index)
        if found is not None:
            await repo.finish_item(
                conn, ref.batch_id, ref.index, status=ItemStatus.COMPLETED,
                lease_id=ref.lease_id, conversation_id=found,
            )  # fmt: skip
        return found


async def slots_to_wake(pool: asyncpg.Pool, owner_id: UUID, batch_id: UUID) -> list[int]:
    """Parked items that may take a free concurrency slot now."""
    async with tenant_transaction(pool, owner_id) as conn:
        batch = await repo.get_batch(conn, batch_id, lock=True)
        if batch is None or batch.status in TERMINAL_BATCH or batch.stop_reason:
            return []
        running = await repo.running_count(conn, batch_id)
        woken = await repo.recently_woken(conn, batch_id, _WOKEN_GRACE_SECONDS)
        free = batch.concurrency - running - woken
        return await repo.wake_parked(conn, batch_id, free) if free > 0 else []


async def fail_unclaimed(
    pool: asyncpg.Pool, owner_id: UUID, batch_id: UUID, index: int, code: str, message: str
) -> bool:
    """Fail an item this run does not hold (queued, or running under a lapsed lease)."""
    async with tenant_transaction(pool, owner_id) as conn:
        await repo.get_batch(conn, batch_id, lock=True)
        item = await repo.get_item(conn, batch_id, index, lock=True)
        if item is None or item.status in TERMINAL_ITEM:
            return False
        lease = item.lease_id if item.status == ItemStatus.RUNNING else None
        if lease is not None:
            await attempts_repo.mark_lost(conn, batch_id, index, keep_lease=None)
        done = await repo.finish_item(
            conn, batch_id, index, status=ItemStatus.FAILED, lease_id=lease,
            error_code=code, error=message,
        )  # fmt: skip
        return done is not None
