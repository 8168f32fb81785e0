"""The judge's scores in the list: `<score>_min/_max` and `quality_source` filters, sorts with
keyset paging (unscored rows as -1), stats distributions; scores set directly in the rows."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import orjson
import pytest

from shared.db.pool import acquire, tenant_transaction
from shared.db.repositories import score_queries
from shared.db.repositories.conversation_stats import read as counters_of
from shared.models.scores import SCORE_COLUMNS
from tests.support.factories import Account, set_scores
from tests.support.seed_files import seed_file

# slug -> judge columns (quality_score follows quality_overall); "plain" keeps its import score.
SCORED: dict[str, dict[str, Any]] = {
    "warm": {
        "coherence_score": 0.9, "relevance_score": 0.8, "completeness_score": 1.0,
        "quality_overall": 0.88, "empathy_score": 4.5, "clarity_score": 4.0,
        "appropriateness_score": 5.0, "brand_voice_score": 4.25, "quality_source": "judge",
    },
    "cold": {
        "coherence_score": 0.2, "relevance_score": 0.35, "completeness_score": 0.1,
        "quality_overall": 0.24, "empathy_score": 1.0, "clarity_score": 2.5,
        "appropriateness_score": 2.0, "brand_voice_score": 1.5, "quality_source": "judge",
    },
    "middling": {
        "coherence_score": 0.5, "relevance_score": 0.5, "completeness_score": 0.5,
        "quality_overall": 0.5, "empathy_score": 3.0, "clarity_score": 3.0,
        "appropriateness_score": 3.0, "brand_voice_score": 3.0, "quality_source": "judge",
    },
    "unjudged": {"quality_score": None, "quality_source": None},
}  # fmt: skip


async def _import(client: httpx.AsyncClient, account: Account, slugs: list[str]) -> dict[str, str]:
    files = [seed_file(slug) for slug in slugs]
    response = await client.post(
        "/v1/conversations/batch", json={"items": files}, headers=account.headers
    )
    assert response.json()["failed"] == 0, response.text
    ids = [result["id"] for result in response.json()["results"]]
    return dict(zip(slugs, ids, strict=True))


@pytest.fixture
async def scored(client: httpx.AsyncClient, account: Account, db: Any) -> dict[str, str]:
    """Five conversations: three judged, one without any score, one with its imported score."""
    ids = await _import(client, account, [*SCORED, "plain"])
    async with tenant_transaction(db, account.user.id) as conn:
        for slug, columns in SCORED.items():
            await set_scores(conn, ids[slug], **columns)
    return ids


async def _slugs(client: httpx.AsyncClient, account: Account, query: str) -> list[str]:
    response = await client.get(f"/v1/conversations?{query}", headers=account.headers)
    assert response.status_code == 200, response.text
    return [item["conversation_id"] for item in response.json()["items"]]


async def test_score_filters(
    client: httpx.AsyncClient, account: Account, scored: dict[str, str]
) -> None:
    async def found(query: str) -> list[str]:
        return sorted(await _slugs(client, account, query))

    assert await found("quality_overall_min=0.5") == ["middling", "warm"]
    # Bounds are inclusive, both ends.
    assert await found("quality_overall_min=0.24&quality_overall_max=0.5") == ["cold", "middling"]
    assert await found("empathy_score_max=3") == ["cold", "middling"]
    assert await found("brand_voice_score_min=4.25") == ["warm"]
    assert await found("coherence_score_max=0.2") == ["cold"]
    assert await found("relevance_score_min=0.4&clarity_score_max=3.5") == ["middling"]
    assert await found("completeness_score_min=0.0") == ["cold", "middling", "warm"]
    assert await found("appropriateness_score_min=1&appropriateness_score_max=5") == [
        "cold", "middling", "warm",
    ]  # fmt: skip
    assert await found("quality_source=judge&quality_overall_max=0.3") == ["cold"]
    assert await found("quality_source=imported") == ["plain"]
    assert await found("quality_source=imported&quality_source=judge") == [
        "cold", "middling", "plain", "warm",
    ]  # fmt: skip
    # A bound with no scored rows in range matches nothing; NULL never matches a bound.
    assert await found("quality_overall_min=0.95") == []
    page = await client.get(
        "/v1/conversations?quality_overall_min=0.3&limit=1", headers=account.headers
    )
    assert page.json()["total"] == 2


async def test_score_filters_reject_bad_values_naming_each(
    client: httpx.AsyncClient, account: Account
) -> None:
    response = await client.get(
        "/v1/conversations?quality_overall_max=1.5&empathy_score_min=0&clarity_score_max=9"
        "&coherence_score_min=abc&quality_source=oracle&brand_voice_score_min=nan",
        headers=account.headers,
    )
    assert response.status_code == 422, response.text
    paths = sorted(d["path"] for d in response.json()["error"]["details"])
    assert paths == [
        "query.brand_voice_score_min", "query.clarity_score_max", "query.coherence_score_min",
        "query.empathy_score_min", "query.quality_overall_max", "query.quality_source[0]",
    ]  # fmt: skip
    crossed = await client.get(
        "/v1/conversations?coherence_score_min=0.8&coherence_score_max=0.2"
        "&empathy_score_min=4&empathy_score_max=2&quality_min=8&quality_max=2",
        headers=account.headers,
    )
    assert crossed.status_code == 422, crossed.text
    details = {d["path"]: d["message"] for d in crossed.json()["error"]["details"]}
    assert details == {
        "query.quality_min": "quality_min must not be greater than quality_max",
        "query.coherence_score_min": "coherence_score_min must not be greater than "
        "coherence_score_max",
        "query.empathy_score_min": "empathy_score_min must not be greater than empathy_score_max",
    }


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("-coherence_score", ["warm", "middling", "cold"]),
        ("quality_overall", ["cold", "middling", "warm"]),
        ("-empathy_score", ["warm", "middling", "cold"]),
        ("brand_voice_score", ["cold", "middling", "warm"]),
        ("-relevance_score", ["warm", "middling", "cold"]),
        ("completeness_score", ["cold", "middling", "warm"]),
        ("-clarity_score", ["warm", "middling", "cold"]),
        ("appropriateness_score", ["cold", "middling", "warm"]),
    ],
)
async def test_score_sorts_page_every_row_once_unscored_as_lowest(
    client: httpx.AsyncClient,
    account: Account,
    scored: dict[str, str],
    sort: str,
    expected: list[str],
) -> None:
    seen: list[str] = []
    url = f"/v1/conversations?limit=2&sort={sort}"
    page = (await client.get(url, headers=account.headers)).json()
    while True:
        assert page["total"] == 5
        seen += [item["conversation_id"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        response = await client.get(f"{url}&cursor={page['next_cursor']}", headers=account.headers)
        assert response.status_code == 200, response.text
        page = response.json()
    assert len(seen) == len(set(seen)) == 5
    judged = [slug for slug in seen if slug in expected]
    assert judged == expected
    unscored = {seen.index("unjudged"), seen.index("plain")}
    # Not judged sorts as -1: last when descending, first when ascending.
    assert unscored == ({3, 4} if sort.startswith("-") else {0, 1})


async def test_scores_are_shown_as_stored(
    client: httpx.AsyncClient, account: Account, scored: dict[str, str]
) -> None:
    response = await client.get(f"/v1/conversations/{scored['warm']}", headers=account.headers)
    body = response.json()
    assert body["coherence_score"] == 0.9  # a real column, shown as written (not 0.899999976)
    assert body["quality_overall"] == 0.88
    assert body["quality_score"] == 8.8
    assert body["brand_voice_score"] == 4.25
    assert body["quality_source"] == "judge"
    assert body["judge_rationale"] is None


async def test_a_score_cursor_is_bound_to_its_sort_and_range(
    client: httpx.AsyncClient, account: Account, scored: dict[str, str]
) -> None:
    page = (
        await client.get("/v1/conversations?limit=1&sort=-quality_overall", headers=account.headers)
    ).json()
    other = await client.get(
        f"/v1/conversations?sort=quality_overall&cursor={page['next_cursor']}",
        headers=account.headers,
    )
    assert other.status_code == 422
    forged = base64.urlsafe_b64encode(orjson.dumps(["-quality_overall", "7e9", scored["warm"]]))
    bad = await client.get(
        f"/v1/conversations?sort=-quality_overall&cursor={forged.decode()}",
        headers=account.headers,
    )
    assert bad.status_code == 422
    assert "out of range" in bad.text


async def test_stats_show_each_score_distribution_and_sources(
    client: httpx.AsyncClient, account: Account, scored: dict[str, str]
) -> None:
    stats = (await client.get("/v1/conversations/stats", headers=account.headers)).json()
    overall = stats["scores"]["quality_overall"]
    assert overall["scored"] == 3
    assert overall["mean"] == pytest.approx((0.88 + 0.24 + 0.5) / 3, abs=1e-4)
    assert sum(overall["histogram"].values()) == 3
    assert overall["histogram"]["0.8"] == 1
    assert overall["histogram"]["0.2"] == 1
    assert overall["histogram"]["0.5"] == 1
    assert list(overall["histogram"]) == [f"0.{i}" for i in range(10)]
    # 0.9 as a real is 0.899999976: still the 0.9 bucket.
    assert stats["scores"]["coherence_score"]["histogram"]["0.9"] == 1
    # 1.0 falls in the last bucket, 5 in the last 1-5 bucket.
    assert stats["scores"]["completeness_score"]["histogram"]["0.9"] == 1
    appropriateness = stats["scores"]["appropriateness_score"]
    assert appropriateness["histogram"] == {"1": 0, "2": 1, "3": 1, "4": 1}
    assert stats["scores"]["empathy_score"]["histogram"] == {"1": 1, "2": 0, "3": 1, "4": 1}
    assert stats["scores"]["empathy_score"]["mean"] == pytest.approx(8.5 / 3, abs=1e-4)
    assert stats["by_quality_source"] == {"judge": 3, "structural": 0, "imported": 1, "none": 1}


async def test_stats_of_an_empty_tenant(client: httpx.AsyncClient, account: Account) -> None:
    stats = (await client.get("/v1/conversations/stats", headers=account.headers)).json()
    assert stats["scores"]["clarity_score"] == {
        "scored": 0, "mean": None, "histogram": {"1": 0, "2": 0, "3": 0, "4": 0},
    }  # fmt: skip
    assert stats["by_quality_source"] == {"judge": 0, "structural": 0, "imported": 0, "none": 0}


async def test_distributions_read_from_the_counters_match_a_scan(
    client: httpx.AsyncClient, account: Account, scored: dict[str, str], db: Any
) -> None:
    """Migration 0019 registers every score's histogram with the 0018 counters: the API reads
    them, and they agree with a one-pass scan, also after a rescore (rolled back)."""
    scan = (await client.get("/v1/conversations/stats", headers=account.headers)).json()
    owner = account.user.id
    async with acquire(db) as conn:
        await conn.execute("SELECT set_config('app.user_id', $1, false)", str(owner))
        tx = conn.transaction()
        await tx.start()
        try:
            names = await conn.fetch("SELECT name FROM conversation_stat_histograms ORDER BY name")
            assert {r["name"] for r in names} >= set(SCORE_COLUMNS)
            assert await score_queries.score_stats(conn, owner) == {
                "scores": scan["scores"], "by_quality_source": scan["by_quality_source"],
            }  # fmt: skip
            counted = await score_queries.score_stats(conn, owner, await counters_of(conn, owner))
            assert counted == await score_queries.score_stats(conn, owner)  # the one-pass scan
            assert counted["scores"]["quality_overall"]["histogram"]["0.8"] == 1
            # A write after registration moves the counters as the triggers see it.
            await set_scores(conn, scored["cold"], quality_overall=0.7, empathy_score=5.0)
            moved = await score_queries.score_stats(conn, owner, await counters_of(conn, owner))
            assert moved == await score_queries.score_stats(conn, owner)
            assert moved["scores"]["quality_overall"]["histogram"]["0.7"] == 1
            assert moved["scores"]["quality_overall"]["histogram"]["0.2"] == 0
            assert moved["scores"]["empathy_score"]["histogram"]["4"] == 2
        finally:
            await tx.rollback()
            await conn.execute("RESET app.user_id")
