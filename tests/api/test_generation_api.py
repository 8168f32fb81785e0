"""Generation jobs through the API (no worker): estimate, plans, validation, lists, tenancy."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest
from pydantic import SecretStr

from shared.db.pool import acquire
from shared.llm.pricing import Usage, build_table, cost_usd
from shared.settings import Settings
from tests.support.api import api_client
from tests.support.factories import Account, create_account

INVESTOR: dict[str, Any] = {
    "name": "Investor",
    "user_prompt_template": "Talk to {{persona}} about {{topic}}.",
    "variables": [{"name": "persona", "required": True}, {"name": "topic", "default": "savings"}],
    "applicable_personas": ["a retiree", "a new parent"],
}


SEED_PAIR = {"legacy_input_per_1k": Decimal("0.015"), "legacy_output_per_1k": Decimal("0.075")}


@pytest.fixture
def claude_settings(settings: Settings) -> Settings:
    """Priced like Claude (nothing is called here), with a queue of its own."""
    return settings.model_copy(
        update={
            "llm_provider": "anthropic",
            "anthropic_api_key": SecretStr("sk-ant-test"),
            "llm_count_tokens_sample": 0,  # no count_tokens call leaves the machine
            "queue_prefix": f"{settings.queue_prefix}-genapi-{uuid.uuid4().hex[:8]}",
        }
    )


# Every row is tenant-scoped and each test has its own tenant: no table is truncated.
@pytest.fixture
async def client(claude_settings: Settings, pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    """The API on the session database."""
    async with api_client(claude_settings) as api:
        yield api


@pytest.fixture
async def account(pool: asyncpg.Pool) -> Account:
    """A fresh tenant."""
    async with acquire(pool) as conn:
        return await create_account(conn)


async def _post(
    client: httpx.AsyncClient, account: Account, path: str, body: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post(path, json=body, headers=account.headers)
    assert response.status_code in (200, 201, 202), response.text
    result: dict[str, Any] = response.json()
    return result


async def _sources(client: httpx.AsyncClient, account: Account) -> dict[str, Any]:
    template = await _post(client, account, "/v1/templates", INVESTOR)
    await _post(
        client, account, "/v1/templates", {**INVESTOR, "name": "Retired", "is_active": False}
    )
    scenario = await _post(client, account, "/v1/scenarios", {
        "name": "Crash", "parent_template_id": template["id"], "persona": "a worried saver",
        "context": "The market fell 9% this week.", "objectives": ["calm them down"],
    })  # fmt: skip
    edge = await _post(client, account, "/v1/edge-cases", {
        "name": "Asks for a stock tip", "expected_behavior": "decline, explain why",
    })  # fmt: skip
    return {"template": template, "scenario": scenario, "edge": edge}


async def test_estimate_prices_each_request_and_enqueues_nothing(
    client: httpx.AsyncClient, account: Account
) -> None:
    body = {"items": [{"persona": "a nurse", "max_tokens": 3000}, {"topic": "debt"}]}
    estimate = await _post(client, account, "/v1/generation-jobs/estimate", body)

    assert estimate["requests"] == 2
    assert (estimate["model"], estimate["provider"]) == ("claude-sonnet-4-5-20250929", "anthropic")
    assert (estimate["input_price_per_1k"], estimate["output_price_per_1k"]) == (0.003, 0.015)
    assert estimate["price_entry"] == "claude-sonnet-4-5"
    assert estimate["token_count_method"] == "heuristic"
    assert "below claude-sonnet-4-5-20250929's minimum of 1024" in estimate["cache_warning"]
    assert estimate["output_tokens"] == 2000 * 2  # min(max_tokens, expected 2000)
    per_item = estimate["input_tokens"] / 2
    assert per_item > 50
    _, price = build_table(None, **SEED_PAIR).price_for(estimate["model"])
    expected = sum(
        (cost_usd(price, Usage(t["input_tokens"], t["output_tokens"]))
         for t in estimate["by_tier"].values()),
        Decimal(0),
    )  # fmt: skip
    assert Decimal(str(estimate["cost_usd"])) == expected
    assert estimate["max_cost_usd"] > estimate["cost_usd"]
    assert estimate["estimated_duration_seconds"] == pytest.approx(2 * 60 / 50)
    listed = await client.get("/v1/generation-jobs", headers=account.headers)
    assert listed.json()["total"] == 0


async def test_tier_plan_expands_over_active_sources(
    client: httpx.AsyncClient, account: Account
) -> None:
    sources = await _sources(client, account)
    body = {"plan": {"template": 4, "scenario": 2, "edge_case": 1}, "concurrency": 2}
    estimate = await _post(client, account, "/v1/generation-jobs/estimate", body)
    assert {tier: t["requests"] for tier, t in estimate["by_tier"].items()} == {
        "template": 4, "scenario": 2, "edge_case": 1,
    }  # fmt: skip

    job = await _post(client, account, "/v1/generation-jobs", body)
    assert (job["status"], job["total_items"], job["concurrency"]) == ("queued", 7, 2)
    assert job["estimate"]["requests"] == 7
    assert job["eta_seconds"] > 0
    page = await client.get(
        f"/v1/generation-jobs/{job['id']}/items", params={"limit": 10}, headers=account.headers
    )
    rows = page.json()["items"]
    assert [r["tier"] for r in rows] == ["template"] * 4 + ["scenario"] * 2 + ["edge_case"]
    # Only the active template is used; personas cycle through its applicable list.
    assert {r["template_id"] for r in rows[:6]} == {sources["template"]["id"]}
    assert [r["persona"] for r in rows[:4]] == ["a retiree", "a new parent"] * 2
    assert rows[4]["scenario_id"] == sources["scenario"]["id"]
    assert rows[4]["persona"] == "a worried saver"
    assert (rows[6]["edge_case_id"], rows[6]["template_id"]) == (sources["edge"]["id"], None)


async def test_plan_for_a_tier_without_sources_is_422(
    client: httpx.AsyncClient, account: Account
) -> None:
    await _post(client, account, "/v1/templates", INVESTOR)
    response = await client.post(
        "/v1/generation-jobs",
        json={"plan": {"template": 1, "scenario": 1, "edge_case": 2}},
        headers=account.headers,
    )
    assert response.status_code == 422
    paths = [d["path"] for d in response.json()["error"]["details"]]
    assert paths == ["$.plan.scenario", "$.plan.edge_case"]


async def test_items_name_every_bad_reference_and_unresolved_variable(
    client: httpx.AsyncClient, account: Account, pool: asyncpg.Pool
) -> None:
    template = await _post(client, account, "/v1/templates", INVESTOR)
    async with acquire(pool) as conn:
        stranger = await create_account(conn)
    foreign = await _post(client, stranger, "/v1/templates", INVESTOR)

    refs = await client.post("/v1/generation-jobs", json={"items": [
        {"template_id": foreign["id"]}, {"scenario_id": str(uuid.uuid4())},
    ]}, headers=account.headers)  # fmt: skip
    assert refs.status_code == 422
    assert [d["path"] for d in refs.json()["error"]["details"]] == [
        "$.items[0].template_id", "$.items[1].scenario_id",
    ]  # fmt: skip

    unresolved = await client.post("/v1/generation-jobs", json={"items": [
        {"template_id": template["id"], "parameters": {"topic": "bonds"}},
        {"template": {"user_prompt_template": "Hi {{who}}"}},
    ]}, headers=account.headers)  # fmt: skip
    assert unresolved.status_code == 422
    error = unresolved.json()["error"]
    assert error["code"] == "unresolved_variables"
    assert [d["path"] for d in error["details"]] == [
        "$.items[0].parameters.persona", "$.items[1].parameters.who",
    ]  # fmt: skip


async def test_body_shape_is_validated(client: httpx.AsyncClient, account: Account) -> None:
    for body in (
        {},
        {"items": [], "plan": {"template": 1}},
        {"plan": {"template": 0}},
        {"items": [{"template_id": str(uuid.uuid4()), "template": {"user_prompt_template": "x"}}]},
        {"items": [{"temperature": 2}]},
        {"items": [{}], "cost_cap_usd": 0},
        {"items": [{}], "defaults": {"temperature": 0.5}},
        {"items": [{}], "concurrency": 0},
    ):
        response = await client.post("/v1/generation-jobs", json=body, headers=account.headers)
        assert response.status_code == 422, body


async def test_jobs_list_get_and_cancel_are_per_tenant(
    client: httpx.AsyncClient, account: Account, pool: asyncpg.Pool
) -> None:
    ids = [
        (await _post(client, account, "/v1/generation-jobs", {"items": [{}]}))["id"]
        for _ in range(3)
    ]
    first = await client.get("/v1/generation-jobs", params={"limit": 2}, headers=account.headers)
    page = first.json()
    assert (page["total"], [j["id"] for j in page["items"]]) == (3, ids[::-1][:2])
    rest = await client.get(
        "/v1/generation-jobs", params={"cursor": page["next_cursor"]}, headers=account.headers
    )
    assert [j["id"] for j in rest.json()["items"]] == [ids[0]]

    detail = await client.get(f"/v1/generation-jobs/{ids[0]}", headers=account.headers)
    assert detail.json()["items_by_status"] == {"queued": 1}
    async with acquire(pool) as conn:
        stranger = await create_account(conn)
    for method, suffix in (("get", ""), ("post", "/cancel"), ("post", "/retry-failed"),
                           ("get", "/items")):  # fmt: skip
        response = await client.request(
            method, f"/v1/generation-jobs/{ids[0]}{suffix}", headers=stranger.headers
        )
        assert response.status_code == 404, suffix

    cancelled = await client.post(f"/v1/generation-jobs/{ids[0]}/cancel", headers=account.headers)
    body = cancelled.json()
    assert (body["status"], body["affected_items"], body["skipped_items"]) == ("cancelled", 1, 1)
    assert body["completed_at"] is not None
    retry = await client.post(f"/v1/generation-jobs/{ids[0]}/retry-failed", headers=account.headers)
    assert retry.status_code == 409


async def test_rate_limit_status_reports_the_shared_limiter(
    client: httpx.AsyncClient, account: Account
) -> None:
    response = await client.get("/v1/generation/rate-limit", headers=account.headers)
    assert response.status_code == 200
    body = response.json()
    assert (body["requests_per_minute"], body["used"], body["remaining"]) == (50, 0, 50)
    assert (body["paused_until"], body["waiting"], body["provider"]) == (None, 0, "anthropic")
    assert (await client.get("/v1/generation/rate-limit")).status_code == 401
