"""Generated conversations are checked and indexed as they land (fake Claude, real worker)."""

from __future__ import annotations

import asyncpg
import httpx

from shared.db.pool import tenant_transaction
from shared.runtime import WorkerResources
from tests.fakes.anthropic import FakeAnthropic
from tests.generator.harness import conversations, plain_items, running_worker, wait_batch
from tests.support.factories import Account


async def _generate(
    api: httpx.AsyncClient, account: Account, resources: WorkerResources, count: int
) -> list[dict[str, object]]:
    created = await api.post(
        "/v1/generation-jobs", json=plain_items(count), headers=account.headers
    )
    assert created.status_code == 202, created.text
    async with running_worker(resources):
        done = await wait_batch(api, account.headers, created.json()["id"])
    assert done["completed_items"] == count, done
    return await conversations(resources.pool, account.user.id, created.json()["id"])


async def _marks(pool: asyncpg.Pool, account: Account) -> dict[object, object]:
    async with tenant_transaction(pool, account.user.id) as conn:
        rows = await conn.fetch("SELECT id, duplicate_of FROM conversations")
        signed = await conn.fetchval("SELECT count(*) FROM conversation_minhash")
    assert signed == len(rows)
    return {row["id"]: row["duplicate_of"] for row in rows}


async def test_a_regenerated_copy_is_marked_and_distinct_ones_are_not(
    gen_api: httpx.AsyncClient, account: Account, resources: WorkerResources, claude: FakeAnthropic
) -> None:
    first = await _generate(gen_api, account, resources, 3)
    assert set((await _marks(resources.pool, account)).values()) == {None}

    claude.reset()  # the fake answers its first request with the same conversation again
    again = await _generate(gen_api, account, resources, 1)

    marks = await _marks(resources.pool, account)
    # Items of a batch run concurrently: the copy is of whichever item was asked first.
    assert marks[again[0]["id"]] in {c["id"] for c in first}
    assert [marks[c["id"]] for c in first] == [None, None, None]
