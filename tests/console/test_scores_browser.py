"""The judge's scores in the console, in a real Chromium: the review page's breakdown (eight
scores, rationale, weakest turns, source, rubric, judge error) and the list's source badges,
judge filter and score sort. Screenshot: docs/console/review-scores.png."""

from __future__ import annotations

import json
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from playwright.async_api import Page, expect

from shared.db.pool import tenant_transaction
from tests.console.conftest import Stack, screenshot
from tests.console.test_browser import sign_in
from tests.support.factories import Account, set_scores
from tests.support.seed_files import fixture_bytes, seed_file

pytestmark = pytest.mark.timeout(300)

RATIONALE: dict[str, Any] = {
    "coherence": {"rationale": "Follows the client's fear through every turn.",
                  "weakest_turns": [4]},
    "relevance": {"rationale": "Stays on the market drop; one aside about taxes.",
                  "weakest_turns": [6]},
    "completeness": {"rationale": "Never names a next step <script>alert(1)</script>.",
                     "weakest_turns": [5, 7]},
    "empathy": {"rationale": "Validates before advising.", "weakest_turns": []},
    "clarity": {"rationale": "Plain words, short sentences.", "weakest_turns": [2]},
    "appropriateness": {"rationale": "No product push.", "weakest_turns": []},
    "brand_voice": {"rationale": "Warm but a little formal for the brand.",
                    "weakest_turns": [3]},
}  # fmt: skip
JUDGED = {
    "coherence_score": 0.9, "relevance_score": 0.75, "completeness_score": 0.4,
    "quality_overall": 0.74, "empathy_score": 4.5, "clarity_score": 4.0,
    "appropriateness_score": 5.0, "brand_voice_score": 2.5, "quality_source": "judge",
    "judge_rubric_version": 3, "judge_model": "claude-haiku-4-5",
}  # fmt: skip


async def _seed(web: Stack, db: asyncpg.Pool, account: Account) -> dict[str, str]:
    files = [seed_file("scored-warm-reply"), seed_file("judge-failed")]
    async with httpx.AsyncClient(base_url=web.url, headers=account.headers) as api:
        batch = await api.post("/v1/conversations/batch", json={"items": files})
        imported = await api.post("/v1/conversations", content=fixture_bytes(
            "fp-anxious-investor-001.json"))  # fmt: skip
    assert batch.json()["created"] == 2, batch.text
    assert imported.status_code == 201, imported.text
    judged, failed = (str(item["id"]) for item in batch.json()["results"])
    async with tenant_transaction(db, account.user.id) as conn:
        await set_scores(conn, judged, **JUDGED, judged_at=datetime(2026, 12, 7, 9, 30, tzinfo=UTC))
        await conn.execute(
            "UPDATE conversations SET judge_rationale = $2::text::jsonb WHERE id = $1::uuid",
            judged,
            json.dumps(RATIONALE),
        )
        await set_scores(
            conn, failed, quality_source="structural",
            judge_error="judge answered without a tool call (stop_reason: max_tokens)",
        )  # fmt: skip
    return {"judged": judged, "failed": failed, "imported": str(imported.json()["id"])}


async def test_review_page_shows_the_score_breakdown(
    page: Page, web: Stack, db: asyncpg.Pool, account: Account
) -> None:
    ids = await _seed(web, db, account)
    await sign_in(page, account, f"/console/conversations/{ids['judged']}")
    card = page.get_by_role("region", name="Scores")
    rows = card.locator(".score-row")
    await expect(rows).to_have_count(8)
    await expect(rows.first).to_contain_text("Coherence")
    await expect(card.locator('[data-score="quality_overall"]')).to_contain_text("0.74")
    await expect(card.locator('[data-score="brand_voice_score"]')).to_contain_text("2.5")
    await expect(card.locator('[data-score="brand_voice_score"] .badge')).to_have_class(
        re.compile(r"\bq-low\b")
    )
    # Rationale is text: the <script> shows as written and never runs.
    completeness = card.locator('[data-score="completeness_score"]')
    await expect(completeness).to_contain_text("<script>alert(1)</script>")
    await expect(completeness.get_by_role("link", name="#7")).to_have_attribute("href", "#turn-7")
    await expect(card.locator(".src-judge")).to_have_text("judge")
    await expect(card).to_contain_text("Rubric v3 · claude-haiku-4-5")
    await expect(card.locator(".judge-error")).to_have_count(0)
    await completeness.get_by_role("link", name="#5").click()
    await expect(page).to_have_url(re.compile(r"#turn-5$"))
    await card.scroll_into_view_if_needed()
    await card.locator("h2").evaluate("el => el.scrollIntoView({block: 'start'})")
    await screenshot(page, "review-scores")

    await page.goto(f"/console/conversations/{ids['failed']}")
    failed = page.get_by_role("region", name="Scores")
    await expect(failed.get_by_role("alert")).to_contain_text(
        "Judge failed: judge answered without a tool call (stop_reason: max_tokens)"
    )
    await expect(failed.locator(".score-row")).to_have_count(0)
    await expect(failed.locator(".src-structural")).to_have_text("structural")

    await page.goto(f"/console/conversations/{ids['imported']}")
    imported = page.get_by_role("region", name="Scores")
    # The seed file's 1-5 criteria, mean over its four pairs; no 0-1 judge scores.
    await expect(imported.locator(".score-row")).to_have_count(4)
    await expect(imported.locator('[data-score="empathy_score"]')).to_contain_text("4.6")
    await expect(imported.locator(".src-imported")).to_have_text("imported")


async def test_list_shows_sources_filters_and_sorts_by_judge_score(
    page: Page, web: Stack, db: asyncpg.Pool, account: Account
) -> None:
    await _seed(web, db, account)
    await sign_in(page, account, "/console/conversations")
    table = page.locator("#conversation-table")
    await expect(table.locator("tbody tr")).to_have_count(3)
    for source in ("judge", "structural", "imported"):
        await expect(table.locator(f".src-{source}")).to_have_count(1)
    judge_min = page.get_by_label("Judge ≥")
    await expect(judge_min).to_have_attribute("step", "0.05")
    await judge_min.fill("0.5")
    await page.get_by_role("button", name="Apply").click()
    await expect(page.locator("#showing")).to_have_text("Showing 1–1 of 1")
    assert "quality_overall_min=0.5" in page.url
    await expect(page.get_by_role("link", name="Remove filter Judge overall ≥ 0.5")).to_be_visible()
    await page.goto("/console/conversations")
    await page.get_by_label("Sort").select_option("-quality_overall")
    await page.wait_for_url(re.compile(r"sort=-quality_overall"))
    first = table.locator("tbody tr").first
    await expect(first).to_contain_text("Scored warm reply")
    await screenshot(page, "conversations-scores")
    await page.get_by_label("Scored by").select_option("imported")
    await page.wait_for_url(re.compile(r"quality_source=imported"))
    await expect(page.locator("#showing")).to_have_text("Showing 1–1 of 1")
    # Crossed judge bounds: the min is dropped and named, the page still answers.
    await page.goto("/console/conversations?quality_overall_min=0.9&quality_overall_max=0.2")
    await expect(page.get_by_role("alert")).to_contain_text("quality_overall_min")
    await expect(page.get_by_label("Judge ≤")).to_have_value("0.2")
    await expect(page.get_by_text("No conversation matches these filters.")).to_be_visible()


async def test_dashboard_charts_the_judge_scores(
    page: Page, web: Stack, db: asyncpg.Pool, account: Account
) -> None:
    await _seed(web, db, account)
    await sign_in(page, account, "/console")
    judged = page.get_by_role("img", name=re.compile(r"Judge overall .*1 judged"))
    await expect(judged).to_be_visible()
    # One judged conversation, overall 0.74: the 0.7 bucket.
    expected = [f"0.{i}: {1 if i == 7 else 0}" for i in range(10)]
    await expect(judged.locator("title")).to_have_text(expected)
    sources = page.get_by_role("img", name="Quality score by source")
    await expect(sources.locator("title")).to_have_text(
        ["judge: 1", "structural: 1", "imported: 1", "none: 0"]
    )
    await sources.scroll_into_view_if_needed()
    await page.screenshot(path=str(Path(tempfile.gettempdir()) / "dashboard-scores.png"))
