"""Listing: every filter, full-text search, sorting, keyset pagination, EXPLAIN uses indexes."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest

from shared.db.pool import acquire, tenant_transaction
from shared.db.repositories.conversation_queries import list_sql
from shared.models.query import ConversationFilters
from tests.support.factories import Account, create_account
from tests.support.seed_files import seed_file


async def _import(api: httpx.AsyncClient, account: Account, files: list[dict[str, Any]]) -> None:
    response = await api.post(
        "/v1/conversations/batch", json={"items": files}, headers=account.headers
    )
    assert response.json()["failed"] == 0, response.text


async def _ids(api: httpx.AsyncClient, account: Account, query: str) -> list[str]:
    response = await api.get(f"/v1/conversations?{query}", headers=account.headers)
    assert response.status_code == 200, response.text
    return [item["conversation_id"] for item in response.json()["items"]]


@pytest.fixture
async def catalogue(client: httpx.AsyncClient, account: Account) -> httpx.AsyncClient:
    """Five conversations with distinct metadata."""
    await _import(
        client,
        account,
        [
            seed_file("anxious-investor", persona="Marcus", emotion="fear", quality=4.5),
            seed_file(
                "grief-windfall",
                tier="edge_case",
                persona="Dana",
                emotion="grief",
                quality=2.0,
                topic="inheritance",
            ),
            seed_file("happy-saver", tier="scenario", persona="Marcus", emotion="joy", quality=3.0),
            seed_file("angry-client", persona="Priya", emotion="anger", quality=5.0),
            seed_file("calm-retiree", tier="scenario", persona="Lou", emotion="calm", quality=1.5),
        ],
    )
    return client


async def test_filters(catalogue: httpx.AsyncClient, account: Account) -> None:
    api = catalogue
    assert sorted(await _ids(api, account, "tier=scenario")) == ["calm-retiree", "happy-saver"]
    both = await _ids(api, account, "tier=scenario&tier=edge_case")
    assert sorted(both) == ["calm-retiree", "grief-windfall", "happy-saver"]
    assert sorted(await _ids(api, account, "persona=marcus")) == ["anxious-investor", "happy-saver"]
    assert await _ids(api, account, "emotion=grief") == ["grief-windfall"]
    assert await _ids(api, account, "topic=inheritance") == ["grief-windfall"]
    high = await _ids(api, account, "quality_min=9&quality_max=10")
    assert sorted(high) == ["angry-client", "anxious-investor"]
    assert await _ids(api, account, "status=approved") == []
    assert len(await _ids(api, account, "status=pending_review")) == 5
    assert await _ids(api, account, "flagged=true") == []


async def test_date_range(catalogue: httpx.AsyncClient, account: Account) -> None:
    assert len(await _ids(catalogue, account, "created_from=2000-01-01T00:00:00Z")) == 5
    assert await _ids(catalogue, account, "created_to=2000-01-01T00:00:00Z") == []


async def test_full_text_search(catalogue: httpx.AsyncClient, account: Account) -> None:
    assert await _ids(catalogue, account, "q=grief") == ["grief-windfall"]
    assert await _ids(catalogue, account, "q=windfall") == ["grief-windfall"]
    assert sorted(await _ids(catalogue, account, "q=marcus")) == ["anxious-investor", "happy-saver"]
    assert await _ids(catalogue, account, "q=nothing-like-this") == []


async def test_sorting(catalogue: httpx.AsyncClient, account: Account) -> None:
    by_quality = await _ids(catalogue, account, "sort=-quality_score")
    assert by_quality[0] == "angry-client"
    assert by_quality[-1] == "calm-retiree"
    by_title = await _ids(catalogue, account, "sort=title")
    assert by_title == sorted(by_title, key=str.lower)


async def test_bad_query_is_422_with_every_problem(
    client: httpx.AsyncClient, account: Account
) -> None:
    response = await client.get(
        "/v1/conversations?status=nope&tier=x&limit=500&sort=size", headers=account.headers
    )
    assert response.status_code == 422
    paths = sorted(d["path"] for d in response.json()["error"]["details"])
    assert paths == ["query.limit", "query.sort", "query.status[0]", "query.tier[0]"]
    crossed = await client.get(
        "/v1/conversations?quality_min=8&quality_max=2", headers=account.headers
    )
    assert crossed.status_code == 422
    cursor = await client.get("/v1/conversations?cursor=garbage!", headers=account.headers)
    assert cursor.status_code == 422


@pytest.mark.parametrize("sort", ["-created_at", "created_at", "-quality_score", "title", "status"])
async def test_pagination_visits_each_row_once_while_rows_are_added(
    client: httpx.AsyncClient, account: Account, sort: str
) -> None:
    await _import(
        client, account, [seed_file(f"page-{i:02}", quality=1 + i % 5) for i in range(23)]
    )
    seen: list[str] = []
    url = f"/v1/conversations?limit=5&sort={sort}"
    page = (await client.get(url, headers=account.headers)).json()
    assert page["total"] == 23
    added = 0
    while True:
        seen.extend(item["conversation_id"] for item in page["items"])
        if page["next_cursor"] is None:
            break
        await _import(client, account, [seed_file(f"late-{added}")])
        added += 1
        page = (
            await client.get(f"{url}&cursor={page['next_cursor']}", headers=account.headers)
        ).json()
    originals = [s for s in seen if s.startswith("page-")]
    assert sorted(originals) == [f"page-{i:02}" for i in range(23)]
    assert len(seen) == len(set(seen))


async def test_cursor_is_bound_to_its_sort(client: httpx.AsyncClient, account: Account) -> None:
    await _import(client, account, [seed_file(f"c-{i}") for i in range(3)])
    page = (await client.get("/v1/conversations?limit=1", headers=account.headers)).json()
    other = await client.get(
        f"/v1/conversations?limit=1&sort=title&cursor={page['next_cursor']}",
        headers=account.headers,
    )
    assert other.status_code == 422


@pytest.mark.parametrize(
    ("filters", "sort"),
    [
        ({}, "-created_at"),
        ({"status": ["pending_review"]}, "-created_at"),
        ({"tier": ["scenario"]}, "created_at"),
        ({}, "-quality_score"),
        ({}, "title"),
        ({}, "status"),
        ({"q": "grief"}, "-created_at"),
    ],
)
async def test_list_queries_use_an_index(
    db: asyncpg.Pool, account: Account, filters: dict[str, Any], sort: Any
) -> None:
    sql, args = list_sql(account.user.id, ConversationFilters(**filters), sort, None, 25)
    async with tenant_transaction(db, account.user.id) as conn:
        # A tiny table makes a sequential scan cheapest; disable it to see the planner's index.
        await conn.execute("SET LOCAL enable_seqscan = off")
        plan = "\n".join(row[0] for row in await conn.fetch(f"EXPLAIN {sql}", *args))
    assert "Index" in plan, plan
    assert "Seq Scan" not in plan, plan


async def test_other_tenants_rows_never_listed(
    catalogue: httpx.AsyncClient, account: Account, db: asyncpg.Pool
) -> None:

    async with acquire(db) as conn:
        other = await create_account(conn)
    listed = await catalogue.get("/v1/conversations", headers=other.headers)
    assert listed.json() == {"items": [], "next_cursor": None, "total": 0}
    stats = await catalogue.get("/v1/conversations/stats", headers=other.headers)
    assert stats.json()["total"] == 0
