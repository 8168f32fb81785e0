"""The console in a real Chromium: sign-in, list, review by keyboard, bulk, templates, generation,
export, hostile content, CSRF and tenant isolation; screenshots of every page for docs/console/."""

from __future__ import annotations

import gzip
import io
import json
import re
import zipfile
from pathlib import Path

import asyncpg
import httpx
import pytest
from playwright.async_api import Page, expect
from pyarrow import parquet

from shared.db.pool import acquire
from tests.console.conftest import Stack, screenshot
from tests.support.factories import Account, create_account
from tests.support.seed_files import seed_file

# Starting the API and two workers on a busy 2-core machine takes a while; set-up counts too.
pytestmark = pytest.mark.timeout(300)


async def _seed(web: Stack, account: Account, names: list[str], **kwargs: object) -> list[str]:
    files = [seed_file(name, **kwargs) for name in names]  # type: ignore[arg-type]
    async with httpx.AsyncClient(base_url=web.url, headers=account.headers) as api:
        result = await api.post("/v1/conversations/batch", json={"items": files})
    assert result.json()["created"] == len(names), result.text
    return [str(item["id"]) for item in result.json()["results"]]


async def _seed_in_order(web: Stack, account: Account, names: list[str]) -> list[str]:
    """One request each, so created_at (the queue's order) follows the list."""
    ids = []
    async with httpx.AsyncClient(base_url=web.url, headers=account.headers) as api:
        for name in names:
            created = await api.post("/v1/conversations", json=seed_file(name))
            assert created.status_code == 201, created.text
            ids.append(str(created.json()["id"]))
    return ids


async def _statuses(web: Stack, account: Account, ids: list[str]) -> list[str]:
    async with httpx.AsyncClient(base_url=web.url, headers=account.headers) as api:
        return [(await api.get(f"/v1/conversations/{id}")).json()["status"] for id in ids]


async def sign_in(page: Page, account: Account, path: str = "/console") -> None:
    """Through the sign-in form, as a person would."""
    await page.goto(path)
    await expect(page).to_have_url(re.compile(r"/console/login\?next="))
    await page.get_by_label("API key").fill(account.key)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(lambda url: "/console/login" not in url)


async def test_sign_in_filter_search_and_page(page: Page, web: Stack, account: Account) -> None:
    names = [f"browse-{i:02}" for i in range(30)]
    await _seed(web, account, names[:12], emotion="fear")
    await _seed(web, account, names[12:], emotion="hope", persona="Ana Ruiz, 34")
    await page.goto("/console/login")
    await screenshot(page, "login")
    await sign_in(page, account)
    await expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    await screenshot(page, "dashboard")
    await page.get_by_role("link", name="Conversations", exact=True).click()
    await expect(page.locator("#showing")).to_have_text("Showing 1–25 of 30")
    await page.get_by_label("Emotion").fill("hope")
    await page.get_by_role("button", name="Apply").click()
    await expect(page.locator("#showing")).to_have_text("Showing 1–18 of 18")
    assert "emotion=hope" in page.url
    await page.get_by_role("link", name="Remove filter Emotion hope").click()
    await expect(page.locator("#showing")).to_have_text("Showing 1–25 of 30")
    await page.get_by_label("Search").fill("browse 07")
    await page.get_by_label("Search").press("Enter")
    await expect(page.locator("#showing")).to_have_text("Showing 1–1 of 1")
    await page.go_back()
    await expect(page.locator("#showing")).to_have_text("Showing 1–25 of 30")
    await page.get_by_role("link", name="Title").click()
    await page.get_by_role("link", name="Next page →").click()
    await expect(page.locator("#showing")).to_have_text("Showing 26–30 of 30")
    await expect(page.locator("#conversation-table tbody tr").first).to_contain_text("Browse 25")
    await page.goto("/console/conversations?sort=title&limit=10")
    await screenshot(page, "conversations")


async def test_review_five_by_keyboard_in_queue_mode(
    page: Page, web: Stack, account: Account
) -> None:
    ids = await _seed_in_order(web, account, [f"queue-{i}" for i in range(5)])
    await sign_in(page, account, "/console/review")
    await expect(page.get_by_role("heading", name="Queue 0")).to_be_visible()
    await page.keyboard.press("?")
    await expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
    await page.keyboard.press("Escape")
    await screenshot(page, "review")
    await page.keyboard.press("a")
    await expect(page.get_by_role("heading", name="Queue 1")).to_be_visible()
    await page.keyboard.press("j")  # skip Queue 1 for now
    await expect(page.get_by_role("heading", name="Queue 2")).to_be_visible()
    await page.keyboard.press("r")
    await page.keyboard.type("off-topic <script>")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Queue 3")).to_be_visible()
    await page.keyboard.press("n")
    await page.keyboard.type("turn 2 contradicts turn 1")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Queue 4")).to_be_visible()
    await page.keyboard.press("a")
    await expect(page.get_by_role("heading", name="Queue 1")).to_be_visible()  # the one skipped
    await page.keyboard.press("a")
    await expect(page.get_by_text("Nothing is waiting for review")).to_be_visible()
    statuses = await _statuses(web, account, ids)
    assert statuses == ["approved", "approved", "rejected", "needs_revision", "approved"]
    async with httpx.AsyncClient(base_url=web.url, headers=account.headers) as api:
        reviews = (await api.get(f"/v1/conversations/{ids[2]}/reviews")).json()["items"]
    assert reviews[-1]["notes"] == "off-topic <script>"


async def test_bulk_approve_selected_rows(page: Page, web: Stack, account: Account) -> None:
    ids = await _seed(web, account, [f"bulk-{i}" for i in range(4)])
    await sign_in(page, account, "/console/conversations?sort=title")
    await page.get_by_label("Select Bulk 0").check()
    await page.get_by_label("Select Bulk 2").check()
    await page.get_by_role("button", name="Approve").click()
    await expect(page.locator(".flash")).to_have_text("Approved 2 conversation(s).")
    assert await _statuses(web, account, ids) == [
        "approved",
        "pending_review",
        "approved",
        "pending_review",
    ]
    await page.get_by_label("Select every row on this page").check()
    await page.get_by_role("button", name="Delete…").click()
    await expect(page.get_by_role("heading", name="Delete 4 conversation(s)?")).to_be_visible()
    await page.get_by_role("link", name="Cancel").click()
    assert await _statuses(web, account, ids) == [
        "approved",
        "pending_review",
        "approved",
        "pending_review",
    ]


async def test_create_a_template_and_watch_the_preview(
    page: Page, web: Stack, account: Account
) -> None:
    await sign_in(page, account, "/console/templates/new")
    await page.get_by_label("Name").fill("Anxious saver")
    await page.get_by_label("User prompt template").fill("Talk {{client}} through {{topic}}.")
    await expect(page.locator("#preview-problems")).to_be_visible()
    await page.get_by_label("Variables").fill("client=Marcus | Marcus, Ana")
    await page.get_by_label("Sample topic").fill("an emergency fund")
    await expect(page.locator("#preview-user")).to_have_text(
        "Talk Marcus through an emergency fund."
    )
    await screenshot(page, "template-editor")
    await page.get_by_label("Quality threshold (0–10)").fill("11")
    await page.get_by_role("button", name="Create").click()
    await expect(page.locator("#e-quality_threshold")).to_be_visible()
    await page.get_by_label("Quality threshold (0–10)").fill("6")
    await page.get_by_role("button", name="Create").click()
    await expect(page.locator(".flash")).to_contain_text("created")
    await page.goto("/console/templates")
    await expect(page.get_by_role("link", name="Anxious saver")).to_be_visible()
    await screenshot(page, "templates")


async def test_generation_bar_reaches_100_without_reloading(
    page: Page, web: Stack, account: Account
) -> None:
    async with httpx.AsyncClient(base_url=web.url, headers=account.headers) as api:
        made = await api.post(
            "/v1/templates", json={"name": "Plain", "user_prompt_template": "Help with budgeting."}
        )
    assert made.status_code == 201
    await sign_in(page, account, "/console/generate")
    await page.get_by_label("Template tier").fill("4")
    await expect(page.locator("[data-estimate=requests]")).to_have_text("4")
    await page.get_by_label("Concurrency").fill("4")
    await screenshot(page, "generate")
    await page.get_by_role("button", name="Start generation").click()
    await page.wait_for_url("**/console/jobs/*")
    await page.evaluate("window.__sameDocument = true")
    await expect(page.locator("progress")).to_have_attribute("value", "100.0", timeout=45_000)
    await expect(page.locator("#job-status")).to_have_text("completed", timeout=15_000)
    await expect(page.locator("#job-completed")).to_have_text("4")
    assert await page.evaluate("window.__sameDocument") is True  # no reload happened
    await screenshot(page, "job")


async def test_export_dialog_preview_export_and_download(
    page: Page, web: Stack, account: Account
) -> None:
    ids = await _seed(web, account, ["export-a", "export-b", "export-c", "export-d"])
    async with httpx.AsyncClient(base_url=web.url, headers=account.headers) as api:
        await api.post("/v1/conversations/bulk-action", json={"action": "approve", "ids": ids[:3]})
    await sign_in(page, account, "/console/exports/new")
    await expect(page.get_by_text("All approved (3)")).to_be_visible()
    await expect(page.locator("#preview-total")).to_have_text("3")
    await expect(page.locator("#preview-content")).to_contain_text('"messages"')
    await screenshot(page, "export-dialog")
    await page.get_by_role("button", name="Export", exact=True).click()
    await page.wait_for_url("**/console/exports/*")
    download_button = page.locator("#download")
    await expect(download_button).to_be_visible(timeout=30_000)
    async with page.expect_download() as info:
        await download_button.click()
    download = await info.value
    data = Path(await download.path()).read_bytes()  # noqa: ASYNC240
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    lines = [json.loads(line) for line in data.decode().splitlines()]
    assert len(lines) == 3
    assert all(line["messages"][0]["role"] == "system" for line in lines)
    await page.goto("/console/exports")
    await expect(page.locator("#export-history tbody tr")).to_have_count(1)


async def test_export_a_split_parquet_with_card_through_the_dialog(
    page: Page, web: Stack, account: Account
) -> None:
    ids = await _seed(web, account, [f"split-{i}" for i in range(8)], user_text='Émoji 💸 "q"')
    async with httpx.AsyncClient(base_url=web.url, headers=account.headers) as api:
        await api.post("/v1/conversations/bulk-action", json={"action": "approve", "ids": ids})
    await sign_in(page, account, "/console/exports/new")
    await page.get_by_label("Parquet").check()
    await page.get_by_label("Split into train and validation").check()
    await page.get_by_label("Validation share").fill("0.25")
    await page.get_by_label("Seed").fill("7")
    await page.get_by_label("Stratify by").select_option("tier")
    await page.get_by_label("Add a dataset card").check()
    await page.get_by_label("Licence (in the card)").fill("cc-by-4.0")
    await page.get_by_label("Licence (in the card)").press("Tab")
    # One preview request per change (htmx queues the last): on a busy machine that takes a while.
    await expect(page.locator("#preview-split")).to_contain_text("train.parquet", timeout=30_000)
    await expect(page.locator("#preview-content")).to_contain_text("# messages: list<")
    await expect(page.locator("#format-recommendation")).to_contain_text("Parquet: a split")
    await page.evaluate("document.activeElement.blur(); window.scrollTo(0, 0)")
    await screenshot(page, "export-dialog-split", full_page=True)
    await page.get_by_label("Preset name").fill("Parquet split + card")
    await page.get_by_role("button", name="Save as preset").click()
    await expect(page.locator("#dialog-notice")).to_have_text(
        "Saved preset “Parquet split + card”."
    )
    await expect(page.get_by_label("Parquet")).to_be_checked()
    await page.get_by_role("button", name="Export", exact=True).click()
    await page.wait_for_url("**/console/exports/*")
    await expect(page.locator("#download")).to_be_visible(timeout=45_000)
    await expect(page.locator("#export-split")).to_have_text("train 6 · validation 2")
    await screenshot(page, "export-progress")
    async with page.expect_download() as info:
        await page.locator("#download").click()
    data = Path(await (await info.value).path()).read_bytes()  # noqa: ASYNC240
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = set(archive.namelist())
        assert {"train.parquet", "validation.parquet", "README.md"} <= names, names
        tables = {part: parquet.read_table(io.BytesIO(archive.read(f"{part}.parquet")))
                  for part in ("train", "validation")}  # fmt: skip
        card = archive.read("README.md").decode()
    assert tables["train"].num_rows == 6
    assert tables["validation"].num_rows == 2
    rows = tables["train"].to_pylist() + tables["validation"].to_pylist()
    assert {row["messages"][1]["content"] for row in rows} == {'Émoji 💸 "q"'}
    assert "cc-by-4.0" in card
    await page.goto("/console/exports/new")  # the dialog opens with the last-used config
    await expect(page.locator("#last-used")).to_be_visible()
    await expect(page.get_by_label("Parquet")).to_be_checked()
    await expect(page.get_by_label("Split into train and validation")).to_be_checked()
    await page.get_by_label("Preset", exact=True).select_option(
        label="Parquet split + card (parquet)"
    )
    await page.get_by_role("button", name="Load preset").click()
    await expect(page.locator("#dialog-notice")).to_have_text(
        "Loaded preset “Parquet split + card”."
    )
    await expect(page.get_by_label("Licence (in the card)")).to_have_value("cc-by-4.0")
    await page.goto("/console/exports")
    await expect(page.locator("#export-history tbody tr").first).to_contain_text("split 6/2")
    await screenshot(page, "exports")


async def test_hostile_content_runs_no_script(page: Page, web: Stack, account: Account) -> None:
    hostile = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2"></div>'
    [id] = await _seed(web, account, ["<img src=x onerror=window.__pwned=3>"], user_text=hostile)
    await sign_in(page, account, f"/console/conversations/{id}")
    await expect(page.locator(".turn.role-user").first).to_contain_text(
        "<script>window.__pwned=1</script>"
    )
    await page.goto("/console/conversations")
    await expect(page.locator("#conversation-table")).to_contain_text("<img src=x")
    assert await page.evaluate("typeof window.__pwned") == "undefined"


async def test_csrf_and_other_tenants(
    page: Page, web: Stack, account: Account, db: asyncpg.Pool
) -> None:
    async with acquire(db) as conn:
        other = await create_account(conn)
    [theirs] = await _seed(web, other, ["someone-elses"])
    [mine] = await _seed(web, account, ["mine"])
    await sign_in(page, account, "/console/patterns")
    await screenshot(page, "patterns")
    status = await page.evaluate(
        """async (id) => (await fetch(`/console/conversations/${id}/status`, {
            method: "POST", body: "status=approved",
            headers: {"Content-Type": "application/x-www-form-urlencoded"}})).status""",
        mine,
    )
    assert status == 403
    assert await _statuses(web, account, [mine]) == ["pending_review"]
    response = await page.goto(f"/console/conversations/{theirs}")
    assert response is not None
    assert response.status == 404
    await expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    await screenshot(page, "not-found")
