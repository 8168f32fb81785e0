"""roll-up-stats: every tenant's pending stat deltas move into its summary; stats unchanged."""

from __future__ import annotations

import asyncpg

from services.janitor.context import JanitorDeps
from services.janitor.runner import run_task
from shared.db.pool import tenant_transaction
from shared.db.repositories import conversation_stats
from shared.models.user import User
from tests.janitor.rows import conversation, update

TASK = "roll-up-stats"


async def _counters(pool: asyncpg.Pool, owner: User) -> conversation_stats.Counters:
    async with tenant_transaction(pool, owner.id, readonly=True) as conn:
        return await conversation_stats.read(conn, owner.id)


async def test_deltas_of_every_tenant_are_rolled_up(
    local_deps: JanitorDeps, db: asyncpg.Pool, owner: User, other_owner: User
) -> None:
    mine = [await conversation(db, local_deps.storage, owner.id) for _ in range(3)]
    await conversation(db, local_deps.storage, other_owner.id)
    await update(db, owner.id, "conversations", mine[0].id, status="approved")
    before = {user.id: await _counters(db, user) for user in (owner, other_owner)}
    assert all(counters.pending_rows > 0 for counters in before.values())

    report = await run_task(local_deps, TASK)

    assert report.outcome == "ok"
    assert report.counts["delta_rows"] == sum(c.pending_rows for c in before.values())
    for user in (owner, other_owner):
        after = await _counters(db, user)
        assert after.pending_rows == 0
        assert after.dimensions == before[user.id].dimensions
    assert (await _counters(db, owner)).counts("status") == {"approved": 1, "pending_review": 2}
    again = await run_task(local_deps, TASK)
    assert again.counts["delta_rows"] == 0
