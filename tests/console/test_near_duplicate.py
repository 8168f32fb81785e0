"""Near-duplicates in a real Chromium: the table's marker, the filter, the review page's badge."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.console.conftest import Stack, screenshot
from tests.console.test_browser import sign_in
from tests.quality.dedup_support import pairs, paraphrase, seed_document
from tests.support.factories import Account

pytestmark = pytest.mark.timeout(300)


async def _import(web: Stack, account: Account, documents: list[dict[str, object]]) -> list[str]:
    ids = []
    async with httpx.AsyncClient(base_url=web.url, headers=account.headers) as api:
        for document in documents:
            created = await api.post("/v1/conversations", json=document)
            assert created.status_code == 201, created.text
            ids.append(str(created.json()["id"]))
    return ids


async def test_near_duplicates_are_marked_filtered_and_linked(
    page: Page, web: Stack, account: Account
) -> None:
    original, copy, other = await _import(
        web,
        account,
        [
            seed_document("market-drop-original", pairs(1)),
            seed_document("market-drop-reworded", paraphrase(pairs(1), 3)),
            seed_document("emergency-fund", pairs(2)),
        ],
    )
    await sign_in(page, account, "/console/conversations")
    rows = page.locator("#conversation-table tbody tr")
    await expect(rows).to_have_count(3)
    marked = rows.filter(has=page.locator(".badge.dup"))
    await expect(marked).to_have_count(1)
    await expect(marked.get_by_role("link")).to_have_text("Market drop reworded")
    await screenshot(page, "near-duplicate-list")

    await page.get_by_label("Near-duplicates", exact=True).select_option("true")
    await expect(rows).to_have_count(1)
    assert "near_duplicates=true" in page.url
    await expect(page.locator(".chips")).to_contain_text("Near-duplicates: only")
    await page.get_by_label("Near-duplicates", exact=True).select_option("false")
    await expect(rows).to_have_count(2)
    await expect(page.locator("#conversation-table .badge.dup")).to_have_count(0)
    await page.get_by_label("Near-duplicates", exact=True).select_option("")
    await expect(rows).to_have_count(3)

    await page.goto(f"/console/conversations/{copy}")
    badge = page.locator("#near-duplicate")
    await expect(badge).to_contain_text("near-duplicate of Market drop original")
    await expect(badge).to_contain_text(re.compile(r"\(\d+% alike\)"))
    await screenshot(page, "near-duplicate")
    await badge.get_by_role("link").click()
    await expect(page).to_have_url(re.compile(f"/console/conversations/{original}$"))
    await expect(page.locator("#near-duplicate")).to_have_count(0)
    del other
