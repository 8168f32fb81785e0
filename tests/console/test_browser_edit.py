"""The review page's edits in a real Chromium: inline turn edit, versions, regenerate options."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.console.conftest import SCREENSHOTS, Stack, screenshot
from tests.console.test_browser import sign_in
from tests.support.factories import Account
from tests.support.seed_files import seed_file

pytestmark = pytest.mark.timeout(300)
NEW_TEXT = (
    'That sounds frightening — "let\'s" look at it together.\n<script>window.__pwned=1</script> 🙂'
)


async def _import(web: Stack, account: Account, name: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=web.url, headers=account.headers) as api:
        created = await api.post("/v1/conversations", json=seed_file(name))
        assert created.status_code == 201, created.text
        body: dict[str, Any] = created.json()
        return body


async def test_edit_a_turn_inline_and_open_the_earlier_version(
    page: Page, web: Stack, account: Account
) -> None:
    created = await _import(web, account, "browser-edit")
    id = created["id"]
    await sign_in(page, account, f"/console/conversations/{id}")
    turn = page.locator("#turn-3")
    old_text = await turn.locator(".content").inner_text()
    await turn.get_by_text("Edit turn 3").click()
    field = turn.get_by_label("New text of turn 3")
    await field.fill("   ")
    await turn.get_by_role("button", name="Save as version 2").click()
    await expect(page.locator("#edit-3-error")).to_contain_text("must not be blank")
    await expect(page.locator("#turn-3 textarea")).to_have_attribute("aria-invalid", "true")

    await page.locator("#turn-3 textarea").fill(NEW_TEXT)
    await page.evaluate("window.__stayed = true")
    await page.locator("#turn-3").get_by_role("button", name="Save as version 2").click()
    await expect(page.locator("#turn-3 .content")).to_have_text(NEW_TEXT)
    assert await page.evaluate("window.__stayed") is True  # htmx swapped it in, no reload
    assert await page.evaluate("typeof window.__pwned") == "undefined"
    versions = page.locator("#versions")
    await expect(versions).to_contain_text("Version 2")
    await expect(versions).to_contain_text("edited turn 3")
    await expect(page.locator("#head-badges")).to_contain_text("v2")
    await expect(page.locator("#history pre.diff .add").first).to_contain_text("+That sounds")
    await page.locator("#turn-2").get_by_text("Edit turn 2").click()  # the next form is ready too
    await expect(
        page.locator("#turn-2").get_by_role("button", name="Save as version 3")
    ).to_be_visible()
    # The whole page: the edited turn and the open form beside the versions and the diff.
    await page.screenshot(path=str(SCREENSHOTS / "review-edit.png"), full_page=True)

    await versions.get_by_role("link", name="Version 1").click()
    await expect(page.get_by_role("heading", name="Version 1 of 2")).to_be_visible()
    await expect(page.get_by_label("Turn 3, assistant")).to_contain_text(old_text)
    await expect(page.get_by_text("earlier version, read only")).to_be_visible()
    await screenshot(page, "review-version")


async def test_regenerate_with_from_turn_and_instructions(
    page: Page, web: Stack, account: Account
) -> None:
    created = await _import(web, account, "browser-regenerate")
    id, count = created["id"], created["turn_count"]
    await sign_in(page, account, f"/console/conversations/{id}")
    card = page.locator("#regenerate")
    await card.get_by_label("Rewrite from turn").fill(str(count))
    await card.get_by_label("Instructions for Claude").fill("the client pushes back twice")
    await card.get_by_role("button", name="Regenerate").click()
    await page.wait_for_url("**/console/jobs/*")
    async with httpx.AsyncClient(base_url=web.url, headers=account.headers) as api:
        child = await _child(api, id)
        detail = (await api.get(f"/v1/conversations/{child}")).json()
        parent = (await api.get(f"/v1/conversations/{id}")).json()
    kept = [t["content"] for t in parent["turns"][: count - 1]]
    assert [t["content"] for t in detail["turns"][: count - 1]] == kept
    assert "revised: the client pushes back twice" in (detail["title"] or "")


async def _child(api: httpx.AsyncClient, parent_id: str, within: float = 60.0) -> str:
    """The regenerated conversation once the offline generator landed it."""
    async with asyncio.timeout(within):
        while True:
            listed = (await api.get("/v1/conversations", params={"limit": 10})).json()["items"]
            children = [c["id"] for c in listed if c["parent_id"] == parent_id]
            if children:
                return str(children[0])
            await asyncio.sleep(0.2)


async def test_regenerate_with_changed_template_parameters_and_temperature(
    page: Page, web: Stack, account: Account
) -> None:
    variables = [
        {"name": "client", "default": "Dana"},
        {"name": "tone", "default": "warm", "allowed_values": ["warm", "brisk"]},
    ]
    template_body = {
        "name": "browser-regen-params",
        "user_prompt_template": "Talk to {{client}} in a {{tone}} tone about rent.",
        "variables": variables,
    }
    async with httpx.AsyncClient(base_url=web.url, headers=account.headers) as api:
        template = await api.post("/v1/templates", json=template_body)
        assert template.status_code == 201, template.text
        item = {"template_id": template.json()["id"], "parameters": {"client": "Sam"}}
        job = await api.post("/v1/generation-jobs", json={"items": [item], "judge": False})
        assert job.status_code == 202, job.text
        original = await _landed(api, job.json()["id"])
    await sign_in(page, account, f"/console/conversations/{original}")
    card = page.locator("#regenerate")
    params = card.get_by_role("group", name="Template parameters")
    await expect(params.get_by_label("client")).to_have_value("Sam")  # what it was made with
    await expect(params.get_by_label("tone")).to_have_value("warm")  # the template's default
    ugly = 'O\'Brien, "Bo" <b>🙂</b>'
    await params.get_by_label("client").fill(ugly)
    await params.get_by_label("tone").select_option("brisk")
    await card.get_by_label("Temperature").fill("1.5")
    await card.get_by_role("button", name="Regenerate").click()
    await expect(page.locator("#regen-temperature-error")).to_contain_text("less than or equal")
    await expect(params.get_by_label("client")).to_have_value(ugly)  # nothing typed is lost
    await expect(params.get_by_label("tone")).to_have_value("brisk")
    await card.get_by_label("Temperature").fill("0.4")
    await card.scroll_into_view_if_needed()
    await screenshot(page, "review-regenerate-parameters")
    await card.get_by_role("button", name="Regenerate").click()
    await page.wait_for_url("**/console/jobs/*")
    async with httpx.AsyncClient(base_url=web.url, headers=account.headers) as api:
        child = (await api.get(f"/v1/conversations/{await _child(api, original)}")).json()
    assert child["parameters"]["client"] == ugly
    assert child["parameters"]["tone"] == "brisk"
    assert child["temperature"] == 0.4


async def _landed(api: httpx.AsyncClient, job_id: str, within: float = 60.0) -> str:
    """The id of the conversation a one-item job landed (offline generator)."""
    async with asyncio.timeout(within):
        while True:
            listed = await api.get("/v1/conversations", params={"limit": 100})
            landed = [c["id"] for c in listed.json()["items"] if c["generation_job_id"] == job_id]
            if landed:
                return str(landed[0])
            await asyncio.sleep(0.2)
