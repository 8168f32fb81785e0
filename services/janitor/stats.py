"""roll-up-stats: fold each tenant's pending conversation-stat deltas into its summary.

Writers append deltas (migration 0018); a stats read sums summary + deltas, so the answer is
exact either way. This bounds the delta table for tenants whose stats nobody reads (reads roll
up a tenant themselves past ROLLUP_PENDING_ROWS).
"""

from __future__ import annotations

from uuid import UUID

from services.janitor.context import Counts, JanitorDeps, for_each_owner
from shared.db.pool import tenant_transaction
from shared.db.repositories import conversation_stats


async def roll_up_stats(deps: JanitorDeps, counts: Counts) -> None:
    """Every tenant in turn, one short transaction each; counts `delta_rows` moved."""
    counts.add("delta_rows", 0)

    async def one(owner: UUID) -> None:
        async with tenant_transaction(deps.pool, owner) as conn:
            counts.add("delta_rows", await conversation_stats.rollup(conn, owner))

    await for_each_owner(deps, counts, one)
