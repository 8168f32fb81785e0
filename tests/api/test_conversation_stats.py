"""GET /v1/conversations/stats from counters (migration 0018): exact after every kind of write.

Each step writes through the API (or the generator's and janitor's SQL paths), then compares
the stats call with a direct count over the conversations, before and after a rollup.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine
from typing import Any

import asyncpg
import httpx

from shared.db.pool import acquire, tenant_transaction
from shared.db.repositories import conversation_stats
from shared.models.scores import SCORE_COLUMNS
from tests.support.factories import Account, create_account
from tests.support.seed_files import seed_file

_VISIBLE = "owner_id = $1 AND deleted_at IS NULL"


async def _counts(conn: asyncpg.Connection, owner: uuid.UUID, key: str) -> dict[str, int]:
    rows = await conn.fetch(
        f"SELECT {key} AS key, count(*) AS n FROM conversations WHERE {_VISIBLE} "
        f"AND {key} IS NOT NULL GROUP BY 1",
        owner,
    )
    return {str(row["key"]): row["n"] for row in rows}


async def direct_stats(pool: asyncpg.Pool, owner: uuid.UUID) -> dict[str, Any]:
    """The stats computed the slow way, straight from the conversations."""
    async with tenant_transaction(pool, owner, readonly=True) as conn:
        by_status = await _counts(conn, owner, "status")
        by_tier = await _counts(conn, owner, "tier")
        buckets = await _counts(conn, owner, "least(floor(quality_score)::int, 9)")
        sql = f"SELECT avg(quality_score)::float8 FROM conversations WHERE {_VISIBLE}"
        mean = await conn.fetchval(sql, owner)
    approved, rejected = by_status.get("approved", 0), by_status.get("rejected", 0)
    reviewed = approved + rejected
    return {
        "total": sum(by_status.values()),
        "by_status": {s: by_status.get(s, 0) for s in
                      ("pending_review", "needs_revision", "approved", "rejected", "archived")},
        "by_tier": by_tier,
        "quality_histogram": {str(b): buckets.get(str(b), 0) for b in range(10)},
        "approval_rate": round(approved / reviewed, 4) if reviewed else None,
        "mean_quality": round(mean, 2) if mean is not None else None,
    }  # fmt: skip


async def api_stats(api: httpx.AsyncClient, account: Account) -> dict[str, Any]:
    response = await api.get("/v1/conversations/stats", headers=account.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    # The judge's score distributions and the counts by source are not counters (yet): checked
    # against hand-set scores in test_conversations_scores.py.
    assert set(body["scores"]) == set(SCORE_COLUMNS)
    assert set(body.pop("by_quality_source")) == {"judge", "structural", "imported", "none"}
    body.pop("scores")
    return body


async def assert_exact(
    api: httpx.AsyncClient, pool: asyncpg.Pool, account: Account, *, rollup: bool = True
) -> dict[str, Any]:
    """Stats match a direct count with deltas pending, and again after a rollup."""
    expected = await direct_stats(pool, account.user.id)
    assert await api_stats(api, account) == expected
    if rollup:
        async with tenant_transaction(pool, account.user.id) as conn:
            await conversation_stats.rollup(conn, account.user.id)
            assert (await conversation_stats.read(conn, account.user.id)).pending_rows == 0
        assert await api_stats(api, account) == expected
    return expected


async def _import(api: httpx.AsyncClient, account: Account, name: str, **kwargs: Any) -> str:
    response = await api.post(
        "/v1/conversations", json=seed_file(name, **kwargs), headers=account.headers
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _status(api: httpx.AsyncClient, account: Account, id: str, status: str) -> None:
    body = {"status": status, "notes": f"to {status}"}
    response = await api.post(f"/v1/conversations/{id}/status", json=body, headers=account.headers)
    assert response.status_code == 200, response.text


async def test_stats_exact_after_every_write(
    client: httpx.AsyncClient, account: Account, db: asyncpg.Pool
) -> None:
    empty = await assert_exact(client, db, account)
    assert empty["total"] == 0
    assert empty["mean_quality"] is None
    ids = [await _import(client, account, f"st-{i}", quality=q, tier=t)
           for i, (q, t) in enumerate([(4.5, "seed_dataset"), (2.2, "scenario"), (5.0, "edge_case"),
                                       (1.0, "seed_dataset"), (3.3, "scenario")])]  # fmt: skip
    batch = await client.post(
        "/v1/conversations/batch",
        json={"items": [seed_file(f"bt-{i}", quality=3.0 + i / 2) for i in range(3)] + [{"x": 1}]},
        headers=account.headers,
    )
    assert batch.json()["created"] == 3
    assert (await assert_exact(client, db, account, rollup=False))["total"] == 8
    await _status(client, account, ids[0], "approved")
    await _status(client, account, ids[1], "rejected")
    stats = await assert_exact(client, db, account)
    assert stats["approval_rate"] == 0.5
    patch = await client.patch(
        f"/v1/conversations/{ids[3]}", json={"title": "only a title"}, headers=account.headers
    )
    assert patch.status_code == 200
    await assert_exact(client, db, account, rollup=False)
    bulk = await client.post(
        "/v1/conversations/bulk-action",
        json={"action": "approve", "ids": [*ids[2:5], str(uuid.uuid4())]},
        headers=account.headers,
    )
    assert bulk.json()["succeeded"] == 3
    await assert_exact(client, db, account, rollup=False)
    removed = await client.post(
        "/v1/conversations/bulk-action", json={"action": "delete", "ids": ids[3:5]},
        headers=account.headers,
    )  # fmt: skip
    assert removed.json()["succeeded"] == 2
    assert (await assert_exact(client, db, account))["total"] == 6
    soft = await client.delete(f"/v1/conversations/{ids[0]}", headers=account.headers)
    assert soft.status_code == 204
    hard = await client.delete(f"/v1/conversations/{ids[1]}?hard=true", headers=account.headers)
    assert hard.status_code == 204
    purged = await client.delete(f"/v1/conversations/{ids[3]}?hard=true", headers=account.headers)
    assert purged.status_code == 204  # already soft-deleted: must not be subtracted twice
    final = await assert_exact(client, db, account)
    assert final["total"] == 4
    assert final["approval_rate"] == 1.0


async def test_stats_exact_under_concurrent_writes(
    client: httpx.AsyncClient, account: Account, db: asyncpg.Pool
) -> None:
    """Imports, reviews, stats reads (which roll up) and rollups racing: no deadlock, exact."""
    ids = await asyncio.gather(*(_import(client, account, f"cc-{i}") for i in range(12)))

    async def roll() -> None:
        async with tenant_transaction(db, account.user.id) as conn:
            await conversation_stats.rollup(conn, account.user.id)

    work: list[Coroutine[Any, Any, object]] = [
        _status(client, account, id, "approved" if i % 2 else "rejected")
        for i, id in enumerate(ids)
    ]
    work += [_import(client, account, f"cc-more-{i}") for i in range(6)]
    work += [roll() for _ in range(4)] + [api_stats(client, account) for _ in range(4)]
    await asyncio.gather(*work)
    stats = await assert_exact(client, db, account)
    assert stats["total"] == 18
    assert stats["by_status"]["approved"] == 6


async def test_reads_roll_up_piled_up_deltas(
    client: httpx.AsyncClient, account: Account, db: asyncpg.Pool
) -> None:
    id = await _import(client, account, "flip")
    async with tenant_transaction(db, account.user.id) as conn:
        for i in range(conversation_stats.ROLLUP_PENDING_ROWS // 2 + 2):  # two rows per flip
            status = "rejected" if i % 2 == 0 else "pending_review"
            await conn.execute("UPDATE conversations SET status = $2 WHERE id = $1", id, status)
        assert (await conversation_stats.read(conn, account.user.id)).pending_rows > (
            conversation_stats.ROLLUP_PENDING_ROWS
        )
    expected = await direct_stats(db, account.user.id)
    assert await api_stats(client, account) == expected  # this read rolls up
    async with tenant_transaction(db, account.user.id) as conn:
        assert (await conversation_stats.read(conn, account.user.id)).pending_rows == 0
        assert await conn.fetchval("SELECT count(*) FROM conversation_stats") > 0
    assert await api_stats(client, account) == expected


async def test_tenants_counted_apart_and_user_deletion(
    client: httpx.AsyncClient, account: Account, db: asyncpg.Pool
) -> None:
    async with acquire(db) as conn:
        other = await create_account(conn)
    await _import(client, account, "mine")
    theirs = await _import(client, other, "theirs")
    await _status(client, other, theirs, "approved")
    assert (await assert_exact(client, db, account))["total"] == 1
    assert (await assert_exact(client, db, other))["by_status"]["approved"] == 1
    async with acquire(db) as conn:  # a user deleted: their counters go with them (cascade)
        await conn.execute("DELETE FROM users WHERE id = $1", other.user.id)
    async with tenant_transaction(db, other.user.id) as conn:
        assert (await conversation_stats.read(conn, other.user.id)).dimensions == {}
    assert (await assert_exact(client, db, account))["total"] == 1


async def test_adding_a_histogram_is_one_call(
    client: httpx.AsyncClient, account: Account, db: asyncpg.Pool
) -> None:
    """What a migration like 0019 does, here on another numeric column; rolled back."""
    ids = [await _import(client, account, f"h-{i}") for i in range(4)]
    async with acquire(db) as conn:
        owner = str(account.user.id)
        await conn.execute("SELECT set_config('app.user_id', $1, false)", owner)
        set_one = "UPDATE conversations SET starting_intensity = $2 WHERE id = $1"
        await conn.execute(set_one, ids[0], 0.95)
        tx = conn.transaction()
        await tx.start()
        try:
            await conn.execute(
                "SELECT conversation_stats_add_histogram("
                "'intensity', 'starting_intensity', 0, 1, 10)"
            )
            await conn.execute(
                "UPDATE conversations SET starting_intensity = 0.31 WHERE id = ANY($1::uuid[])",
                ids[1:3],
            )
            await conn.execute(set_one, ids[3], 1)
            counters = await conversation_stats.read(conn, account.user.id)
            assert counters.histogram("intensity", 10) == {
                **{str(b): 0 for b in range(10)}, "3": 2, "9": 2}  # fmt: skip
            mean = counters.mean("intensity")
            assert mean is not None
            assert abs(mean - (0.95 + 0.31 * 2 + 1) / 4) < 1e-6
        finally:
            await tx.rollback()
            await conn.execute("RESET app.user_id")
    await assert_exact(client, db, account)
