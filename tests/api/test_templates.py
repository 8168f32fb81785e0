"""Templates, scenarios and edge cases: CRUD, keyset lists, tenancy, placeholder resolution."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from shared.db.pool import acquire
from shared.settings import Settings
from tests.support.api import api_client
from tests.support.factories import Account, create_account

TEMPLATE: dict[str, Any] = {
    "name": "Anxious investor",
    "system_prompt": "You are a calm {{role}}.",
    "user_prompt_template": "Talk to {{persona}} about {{topic}} in a {{tone}} tone.",
    "variables": [
        {"name": "role", "default": "financial planner"},
        {"name": "persona", "required": True},
        {"name": "tone", "allowed_values": ["warm", "direct"], "default": "warm"},
    ],
    "applicable_personas": ["retiree", "new parent"],
}


# Every row here is tenant-scoped and each test has its own tenant, so no table is truncated.
@pytest.fixture
async def client(settings: Settings, pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    """The API on the session database, tables as they are."""
    async with api_client(settings) as api:
        yield api


@pytest.fixture
async def account(pool: asyncpg.Pool) -> Account:
    """A fresh tenant."""
    return await _other(pool)


async def _other(db: asyncpg.Pool) -> Account:
    async with acquire(db) as conn:
        return await create_account(conn)


async def _create(
    client: httpx.AsyncClient, account: Account, path: str, body: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post(path, json=body, headers=account.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_template_crud_with_version_and_stats(
    client: httpx.AsyncClient, account: Account
) -> None:
    created = await _create(client, account, "/v1/templates", TEMPLATE)
    assert created["placeholders"] == ["role", "persona", "topic", "tone"]
    assert created["stats"] == {"usage_count": 0, "completed": 0, "failed": 0,
                                "success_rate": None, "average_quality": None}  # fmt: skip
    assert (created["version"], created["is_active"], created["tier"]) == (1, True, "template")
    path = f"/v1/templates/{created['id']}"

    renamed = await client.patch(path, json={"name": "Investor"}, headers=account.headers)
    assert (renamed.status_code, renamed.json()["version"]) == (200, 1)
    reprompted = await client.patch(
        path, json={"user_prompt_template": "Hi {{persona}}"}, headers=account.headers
    )
    assert reprompted.json()["version"] == 2
    nulled = await client.patch(path, json={"name": None}, headers=account.headers)
    assert (nulled.status_code, nulled.json()["error"]["details"][0]["path"]) == (422, "$.name")

    assert (await client.get(path, headers=account.headers)).json()["name"] == "Investor"
    assert (await client.delete(path, headers=account.headers)).status_code == 204
    assert (await client.get(path, headers=account.headers)).status_code == 404


async def test_duplicate_names_conflict(client: httpx.AsyncClient, account: Account) -> None:
    await _create(client, account, "/v1/templates", TEMPLATE)
    again = await client.post("/v1/templates", json=TEMPLATE, headers=account.headers)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "duplicate_name")
    await _create(client, account, "/v1/scenarios", {"name": "Crash"})
    clash = await client.post("/v1/scenarios", json={"name": "Crash"}, headers=account.headers)
    assert clash.status_code == 409


async def test_invalid_template_bodies_are_refused(
    client: httpx.AsyncClient, account: Account
) -> None:
    twice = {**TEMPLATE, "variables": [{"name": "x"}, {"name": "x"}]}
    bad_default = {
        **TEMPLATE,
        "variables": [{"name": "x", "default": "a", "allowed_values": ["b"]}],
    }
    for body in (twice, bad_default, {"name": "no prompt"}):
        response = await client.post("/v1/templates", json=body, headers=account.headers)
        assert response.status_code == 422, body


async def test_lists_are_keyset_paginated(client: httpx.AsyncClient, account: Account) -> None:
    names = [f"template {n}" for n in range(5)]
    for name in names:
        await _create(client, account, "/v1/templates", {**TEMPLATE, "name": name})
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/v1/templates", params=params, headers=account.headers)).json()
        assert page["total"] == 5
        seen += [item["name"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(names))
    bad = await client.get("/v1/templates", params={"cursor": "nope"}, headers=account.headers)
    assert bad.status_code == 422
    big = await client.get("/v1/templates", params={"limit": 101}, headers=account.headers)
    assert big.status_code == 422


async def test_list_filters(client: httpx.AsyncClient, account: Account) -> None:
    await _create(client, account, "/v1/templates", {**TEMPLATE, "name": "on"})
    await _create(client, account, "/v1/templates", {**TEMPLATE, "name": "off", "is_active": False})
    active = await client.get(
        "/v1/templates", params={"is_active": "true"}, headers=account.headers
    )
    assert [t["name"] for t in active.json()["items"]] == ["on"]
    named = await client.get("/v1/templates", params={"q": "OF"}, headers=account.headers)
    assert [t["name"] for t in named.json()["items"]] == ["off"]


async def test_resolve_substitutes_defaults_and_given_values(
    client: httpx.AsyncClient, account: Account
) -> None:
    template = await _create(client, account, "/v1/templates", TEMPLATE)
    response = await client.post(
        f"/v1/templates/{template['id']}/resolve",
        json={"parameters": {"persona": "a retiree", "topic": "bonds", "extra": 1}},
        headers=account.headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["system_prompt"] == "You are a calm financial planner."
    assert body["user_prompt"] == "Talk to a retiree about bonds in a warm tone."
    assert body["unused_parameters"] == ["extra"]


async def test_resolve_names_every_missing_or_invalid_variable(
    client: httpx.AsyncClient, account: Account
) -> None:
    template = await _create(client, account, "/v1/templates", TEMPLATE)
    response = await client.post(
        f"/v1/templates/{template['id']}/resolve",
        json={"parameters": {"tone": "sarcastic"}},
        headers=account.headers,
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "unresolved_variables"
    problems = {(d["path"], d["type"]) for d in error["details"]}
    assert problems == {
        ("$.parameters.persona", "missing"),
        ("$.parameters.tone", "not_allowed"),
        ("$.parameters.topic", "missing"),
    }
    assert "persona" in error["message"]


@pytest.mark.parametrize("kind", ["templates", "scenarios", "edge-cases"])
async def test_another_tenants_rows_are_404(
    client: httpx.AsyncClient, account: Account, pool: asyncpg.Pool, kind: str
) -> None:
    body = TEMPLATE if kind == "templates" else {"name": "mine"}
    row = await _create(client, account, f"/v1/{kind}", body)
    stranger = await _other(pool)
    path = f"/v1/{kind}/{row['id']}"
    assert (await client.get(path, headers=stranger.headers)).status_code == 404
    patched = await client.patch(path, json={"name": "x"}, headers=stranger.headers)
    assert patched.status_code == 404
    assert (await client.delete(path, headers=stranger.headers)).status_code == 404
    listed = await client.get(f"/v1/{kind}", headers=stranger.headers)
    assert listed.json()["total"] == 0
    if kind == "templates":
        resolved = await client.post(f"{path}/resolve", json={}, headers=stranger.headers)
        assert resolved.status_code == 404


async def test_scenarios_and_edge_cases_reference_only_own_templates(
    client: httpx.AsyncClient, account: Account, pool: asyncpg.Pool
) -> None:
    template = await _create(client, account, "/v1/templates", TEMPLATE)
    scenario = await _create(client, account, "/v1/scenarios", {
        "name": "Market crash", "parent_template_id": template["id"], "persona": "retiree",
        "objectives": ["calm", "plan"], "parameter_values": {"tone": "direct"},
    })  # fmt: skip
    assert (scenario["status"], scenario["objectives"]) == ("active", ["calm", "plan"])
    edge = await _create(client, account, "/v1/edge-cases", {
        "name": "Mentions self-harm", "risk_level": "critical", "priority": 1,
        "parent_template_id": template["id"],
    })  # fmt: skip
    assert edge["risk_level"] == "critical"
    tested = await client.patch(
        f"/v1/edge-cases/{edge['id']}", json={"tested": True}, headers=account.headers
    )
    assert tested.json()["last_tested_at"] is not None

    stranger = await _other(pool)
    theft = await client.post(
        "/v1/scenarios",
        json={"name": "x", "parent_template_id": template["id"]},
        headers=stranger.headers,
    )
    assert (theft.status_code, theft.json()["error"]["details"][0]["path"]) == (
        422,
        "$.parent_template_id",
    )
    by_parent = await client.get(
        "/v1/edge-cases", params={"risk_level": "critical"}, headers=account.headers
    )
    assert [e["name"] for e in by_parent.json()["items"]] == ["Mentions self-harm"]
