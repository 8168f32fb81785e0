"""Listing: every filter, full-text search, sorting, keyset pagination and its carried total,
EXPLAIN of each sort uses an index (filters and `q` under RLS: test_conversations_list_plans.py)."""

from __future__ import annotations

import base64
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from services.api import pagination
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


async def test_persona_filter_follows_an_edit(
    catalogue: httpx.AsyncClient, account: Account
) -> None:
    """persona/emotion/topic filter on stored lowercase copies, which every write keeps current."""
    api = catalogue
    listed = (await api.get("/v1/conversations?persona=LOU", headers=account.headers)).json()
    (row,) = listed["items"]
    patched = await api.patch(
        f"/v1/conversations/{row['id']}",
        json={"persona": "Louise", "emotion": "Relief", "topic": "Pension"},
        headers=account.headers,
    )
    assert patched.status_code == 200, patched.text
    assert await _ids(api, account, "persona=lou") == []
    found = "persona=LOUISE&emotion=relief&topic=PENSION"
    assert await _ids(api, account, found) == ["calm-retiree"]


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
        # The total is the first page's count, carried by the cursor, while rows are added.
        assert page["total"] == 23
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
    fresh = (await client.get(url, headers=account.headers)).json()
    assert fresh["total"] == 23 + added


@pytest.mark.parametrize("sort", ["-quality_score", "quality_score"])
async def test_quality_pages_put_unscored_rows_last_or_first(
    client: httpx.AsyncClient, account: Account, sort: str
) -> None:
    files = [seed_file(f"q-{i}", quality=1 + i) for i in range(3)]
    for i in range(3):
        unscored = seed_file(f"none-{i}")
        for pair in unscored["training_pairs"]:
            del pair["training_metadata"]["quality_score"]
        files.append(unscored)
    await _import(client, account, files)
    seen: list[tuple[str, Any]] = []
    url = f"/v1/conversations?limit=2&sort={sort}"
    page = (await client.get(url, headers=account.headers)).json()
    while True:
        seen.extend((item["conversation_id"], item["quality_score"]) for item in page["items"])
        if page["next_cursor"] is None:
            break
        page = (
            await client.get(f"{url}&cursor={page['next_cursor']}", headers=account.headers)
        ).json()
    assert len({slug for slug, _ in seen}) == len(seen) == 6
    scores = [score for _, score in seen]
    expected = sorted(scores, key=lambda score: -1 if score is None else score)
    assert scores == (expected[::-1] if sort.startswith("-") else expected)
    assert (scores[-1] if sort.startswith("-") else scores[0]) is None


async def test_total_is_counted_again_when_the_filters_change(
    client: httpx.AsyncClient, account: Account
) -> None:
    files = [seed_file(f"t-{i}", tier="scenario" if i < 4 else "template") for i in range(10)]
    await _import(client, account, files)
    first = (await client.get("/v1/conversations?limit=2", headers=account.headers)).json()
    assert first["total"] == 10
    cursor = first["next_cursor"]
    same = await client.get(f"/v1/conversations?limit=2&cursor={cursor}", headers=account.headers)
    assert same.json()["total"] == 10
    # The cursor's position still applies, but its total counted other filters.
    other = await client.get(
        f"/v1/conversations?limit=2&tier=scenario&cursor={cursor}", headers=account.headers
    )
    assert other.status_code == 200
    assert other.json()["total"] == 4


async def test_first_page_holding_every_match_is_its_own_total(
    client: httpx.AsyncClient, account: Account
) -> None:
    await _import(client, account, [seed_file(f"few-{i}") for i in range(3)])
    page = (await client.get("/v1/conversations?limit=3", headers=account.headers)).json()
    assert (len(page["items"]), page["next_cursor"], page["total"]) == (3, None, 3)
    page = (await client.get("/v1/conversations?limit=2", headers=account.headers)).json()
    assert (len(page["items"]), page["total"]) == (2, 3)


async def test_cursor_without_a_total_is_still_accepted(
    client: httpx.AsyncClient, account: Account
) -> None:
    """Cursors handed out before totals were carried keep working; the total is counted."""
    await _import(client, account, [seed_file(f"old-{i}") for i in range(4)])
    first = (await client.get("/v1/conversations?limit=1", headers=account.headers)).json()
    key = pagination.decode("-created_at", first["next_cursor"])
    legacy = pagination.encode("-created_at", key)
    page = await client.get(f"/v1/conversations?limit=1&cursor={legacy}", headers=account.headers)
    assert page.status_code == 200
    assert page.json()["total"] == 4
    assert page.json()["items"][0]["id"] != first["items"][0]["id"]


@pytest.mark.parametrize("total", [-1, "12", 1.5, True, None])
async def test_cursor_with_a_malformed_total_is_422(
    client: httpx.AsyncClient, account: Account, total: Any
) -> None:
    fields = ["-created_at", "2026-01-01T00:00:00+00:00", str(account.user.id), total, "x"]
    cursor = base64.urlsafe_b64encode(orjson.dumps(fields)).decode().rstrip("=")
    response = await client.get(f"/v1/conversations?cursor={cursor}", headers=account.headers)
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["path"] == "cursor"


# The longest titles PATCH accepts (500 characters), in the characters that grow most in a
# cursor: 3-byte CJK, 4-byte emoji, control characters escaped as \u00XX; plus two that share
# their first 200 characters (the sort key's length) so the id tie-break is crossed too.
LONG_TITLES = [
    "中" * 500,
    "😅" * 500,
    "".join(chr(1 + i % 31) for i in range(500)),
    "same start " * 20 + "A" * 280,
    "same start " * 20 + "B" * 280,
]


async def test_long_titles_page_by_title(client: httpx.AsyncClient, account: Account) -> None:
    """The title sort key travels in the cursor: no title may make it too long to send back."""
    await _import(client, account, [seed_file(f"{i}-{'very-long-name-' * 40}") for i in range(3)])
    await _import(client, account, [seed_file(f"titled-{i}") for i in range(len(LONG_TITLES))])
    listed = (await client.get("/v1/conversations?limit=100", headers=account.headers)).json()
    titled = [item for item in listed["items"] if item["conversation_id"].startswith("titled-")]
    for item, title in zip(
        sorted(titled, key=lambda i: i["conversation_id"]), LONG_TITLES, strict=True
    ):
        patched = await client.patch(
            f"/v1/conversations/{item['id']}", json={"title": title}, headers=account.headers
        )
        assert patched.status_code == 200, patched.text
    total = 3 + len(LONG_TITLES)
    for sort in ("title", "-title"):
        seen: list[str] = []
        url = f"/v1/conversations?limit=1&sort={sort}"
        page = (await client.get(url, headers=account.headers)).json()
        while True:
            seen.extend(item["id"] for item in page["items"])
            assert page["total"] == total
            if page["next_cursor"] is None:
                break
            response = await client.get(
                f"{url}&cursor={page['next_cursor']}", headers=account.headers
            )
            assert response.status_code == 200, response.text
            page = response.json()
        assert len(seen) == len(set(seen)) == total, sort


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
