"""Every console page renders from the same services as /v1 (HTTP level, no browser)."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.console.support import sign_in
from tests.support.factories import Account
from tests.support.seed_files import seed_file


async def _import(client: httpx.AsyncClient, account: Account, name: str, **kwargs: Any) -> str:
    created = await client.post(
        "/v1/conversations", json=seed_file(name, **kwargs), headers=account.headers
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def test_every_page_renders(client: httpx.AsyncClient, account: Account) -> None:
    ids = [
        await _import(client, account, f"page-{i}", emotion="fear" if i % 2 else "joy")
        for i in range(3)
    ]
    template = {"name": "T", "user_prompt_template": "Talk about money worries."}
    assert (
        await client.post("/v1/templates", json=template, headers=account.headers)
    ).status_code == 201
    csrf = await sign_in(client, account.key)
    pages = [
        "/console",
        "/console/conversations",
        "/console/conversations?status=pending_review&q=page&quality_min=1",
        f"/console/conversations/{ids[0]}",
        "/console/templates",
        "/console/templates/new",
        "/console/scenarios",
        "/console/scenarios/new",
        "/console/edge-cases",
        "/console/edge-cases/new",
        "/console/generate",
        "/console/exports",
        "/console/exports/new",
        "/console/patterns",
    ]
    for path in pages:
        page = await client.get(path)
        assert page.status_code == 200, (path, page.text[:2000])
        assert "<html" in page.text
    queue = await client.get("/console/review")
    assert queue.status_code == 303
    assert queue.headers["location"] == f"/console/conversations/{ids[0]}?queue=1"
    estimate = await client.post(
        "/console/generate/estimate",
        data={"csrf_token": csrf, "mode": "plan", "plan_template": "3"},
    )
    assert estimate.status_code == 200
    assert re.search(r'data-estimate="requests">3<', estimate.text), estimate.text


async def test_filters_chips_and_paging(client: httpx.AsyncClient, account: Account) -> None:
    files = [seed_file(f"list-{i:02}", emotion="fear" if i < 5 else "joy") for i in range(12)]
    batch = await client.post(
        "/v1/conversations/batch", json={"items": files}, headers=account.headers
    )
    assert batch.json()["created"] == 12
    await sign_in(client, account.key)
    page = await client.get("/console/conversations?emotion=fear&limit=10&sort=title")
    assert "Showing 1–5 of 5" in page.text
    assert "Emotion: <strong>fear</strong>" in page.text
    blanks = await client.get("/console/conversations?limit=25&sort=title&persona=&quality_min=")
    assert "Showing 1–12 of 12" in blanks.text
    assert blanks.text.index("List 00") < blanks.text.index("List 06")
    bad = await client.get("/console/conversations?quality_min=11&status=bogus")
    assert bad.status_code == 200
    assert "Some filters were ignored" in bad.text
    paged = await client.get("/console/conversations?sort=title&limit=10")
    assert "Showing 1–10 of 12" in paged.text
    next_link = re.search(r'rel="next" href="([^"]+)"', paged.text)
    assert next_link
    second = await client.get(next_link.group(1).replace("&amp;", "&"))
    assert "Showing 11–12 of 12" in second.text
    assert "List 11" in second.text
    assert "List 00" not in second.text
    partial = await client.get("/console/conversations?emotion=joy", headers={"HX-Request": "true"})
    assert "<html" not in partial.text
    assert "Showing 1–7 of 7" in partial.text


async def test_template_form_errors_and_preview(
    client: httpx.AsyncClient, account: Account
) -> None:
    csrf = await sign_in(client, account.key)
    bad = await client.post(
        "/console/templates",
        data={
            "csrf_token": csrf,
            "name": "",
            "user_prompt_template": "",
            "quality_threshold": "12",
            "variables": "1bad",
        },
    )
    assert bad.status_code == 422
    assert 'id="e-name"' in bad.text
    assert 'id="e-quality_threshold"' in bad.text
    assert 'id="e-variables"' in bad.text
    preview = await client.post(
        "/console/templates-preview",
        data={
            "csrf_token": csrf,
            "user_prompt_template": "Hi {{client}}, about {{topic}}",
            "variables": "client=Ana <b>",
            "sample_topic": "taxes",
        },
    )
    assert "Hi Ana &lt;b&gt;, about taxes" in preview.text
    missing = await client.post(
        "/console/templates-preview",
        data={"csrf_token": csrf, "user_prompt_template": "Hi {{client}}", "variables": "client*"},
    )
    assert "Not resolvable yet" in missing.text
    assert "client" in missing.text
    created = await client.post(
        "/console/templates",
        data={
            "csrf_token": csrf,
            "name": "Calm planner",
            "user_prompt_template": "Talk about {{topic}}",
            "tier": "template",
            "quality_threshold": "6",
            "is_active": "on",
        },
    )
    assert created.status_code == 303
    listed = await client.get("/v1/templates", headers=account.headers)
    assert [t["name"] for t in listed.json()["items"]] == ["Calm planner"]
