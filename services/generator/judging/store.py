"""A judgement's writes: scores, status and flag with the item and its call in one transaction.

As with landing a generated conversation, the conversation's new columns, the item turning
`completed`, the batch counters and the call's attempt row commit together or not at all; a
run that lost its lease changes nothing (and its call is still booked).
"""

from __future__ import annotations

from uuid import UUID

import asyncpg

from services.generator.items import ItemRef, already_booked, write_log
from shared.db.pool import tenant_transaction
from shared.db.repositories import conversations as conversations_repo
from shared.db.repositories import generation as repo
from shared.db.repositories import quality as quality_repo
from shared.models.generation import ItemStatus, NewLog


class LeaseLost(Exception):
    """The item is no longer ours; roll the verdict back."""


async def land_verdict(
    pool: asyncpg.Pool,
    ref: ItemRef,
    conversation_id: UUID,
    verdict: quality_repo.Verdict,
    entry: NewLog,
    template_id: UUID | None,
) -> bool:
    """Write the verdict, complete the item, settle the call; False when the lease was lost."""
    try:
        async with tenant_transaction(pool, ref.owner_id) as conn:
            cost = entry.cost_usd - await already_booked(conn, ref, entry)
            await repo.settle(conn, ref.batch_id, cost=cost, completed=1)
            found = await quality_repo.subject(conn, conversation_id)
            if found is not None:
                await quality_repo.write_verdict(conn, conversation_id, verdict)
                await _review(conn, ref.owner_id, found, verdict)
            item = await repo.finish_item(
                conn, ref.batch_id, ref.index, status=ItemStatus.COMPLETED,
                lease_id=ref.lease_id, conversation_id=conversation_id if found else None,
                add_cost=cost, add_attempt=True, counted=True,
            )  # fmt: skip
            if item is None:
                raise LeaseLost
            await write_log(conn, ref, template_id, entry, conversation_id if found else None)
    except LeaseLost:
        return False
    return True


async def _review(
    conn: asyncpg.Connection,
    owner_id: UUID,
    found: quality_repo.Subject,
    verdict: quality_repo.Verdict,
) -> None:
    """A status the judgement changed goes into the review history (no reviewer)."""
    if found.status == verdict.status:
        return
    await conversations_repo.add_review(
        conn, owner_id=owner_id, conversation_id=found.id, action="judge",
        from_status=found.status, to_status=verdict.status, reviewer_id=None,
        notes=verdict.flag_reason or "judge: quality_overall at or above the flag threshold",
    )  # fmt: skip


async def record_failure(
    pool: asyncpg.Pool,
    owner_id: UUID,
    conversation_id: UUID,
    error: str,
    model: str | None,
    structural_score: float | None,
) -> None:
    """No judgement for this conversation: NULL judge columns and the reason in judge_error."""
    async with tenant_transaction(pool, owner_id) as conn:
        await quality_repo.write_failure(conn, conversation_id, error, model, structural_score)
