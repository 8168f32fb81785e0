"""Input that PostgreSQL cannot take is a 422 naming the field, never a 500."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import orjson

from tests.support.factories import Account
from tests.support.seed_files import seed_file


def _paths(response: httpx.Response) -> list[str]:
    assert response.status_code == 422, response.text
    return [problem["path"] for problem in response.json()["error"]["details"]]


async def _raw(
    client: httpx.AsyncClient, method: str, url: str, body: Any, account: Account
) -> httpx.Response:
    # json.dumps writes a lone surrogate as the escape "\ud800", as a careless client would.
    headers = {**account.headers, "content-type": "application/json"}
    return await client.request(method, url, content=json.dumps(body), headers=headers)


async def test_nul_and_surrogates_in_bodies_name_the_field(
    client: httpx.AsyncClient, account: Account
) -> None:
    body = {"name": "a\x00", "user_prompt_template": "Hi \ud800", "applicable_topics": ["\x00"]}
    response = await _raw(client, "POST", "/v1/templates", body, account)
    assert sorted(_paths(response)) == [
        "$.applicable_topics[0]", "$.name", "$.user_prompt_template"]  # fmt: skip
    scenario = {"name": "s", "parameter_values": {"k\x00": "v"}}
    assert _paths(await _raw(client, "POST", "/v1/scenarios", scenario, account)) == [
        "$.parameter_values.k\x00.[key]"
    ]


async def test_nul_in_query_strings_is_422(client: httpx.AsyncClient, account: Account) -> None:
    for params in ({"q": "a\x00b"}, {"persona": "\x00"}, {"topic": "x\x00"}):
        response = await client.get("/v1/conversations", params=params, headers=account.headers)
        assert _paths(response) == [f"query.{next(iter(params))}"]
    response = await client.get("/v1/templates", params={"category": "\x00"},
                                headers=account.headers)  # fmt: skip
    assert _paths(response) == ["query.category"]


async def test_cursor_hiding_nul_is_422(client: httpx.AsyncClient, account: Account) -> None:
    raw = orjson.dumps(["title", "a\x00", "00000000-0000-0000-0000-000000000000"])
    cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    params = {"sort": "title", "cursor": cursor}
    response = await client.get("/v1/conversations", params=params, headers=account.headers)
    assert _paths(response) == ["cursor"]


async def test_null_for_not_null_columns_is_422_and_changes_nothing(
    client: httpx.AsyncClient, account: Account
) -> None:
    created = await client.post("/v1/conversations", json=seed_file("nulls"),
                                headers=account.headers)  # fmt: skip
    path = f"/v1/conversations/{created.json()['id']}"
    body = {"is_flagged": None, "category": None, "tags": None, "title": "changed"}
    response = await client.patch(path, json=body, headers=account.headers)
    assert sorted(_paths(response)) == ["$.category", "$.is_flagged", "$.tags"]
    assert (await client.get(path, headers=account.headers)).json()["title"] != "changed"
    cleared = await client.patch(path, json={"title": None}, headers=account.headers)
    assert cleared.status_code == 200  # title is a nullable column


async def test_numbers_are_bounded_like_their_columns(
    client: httpx.AsyncClient, account: Account
) -> None:
    template = await client.post("/v1/templates", json={"name": "t", "user_prompt_template": "Hi"},
                                 headers=account.headers)  # fmt: skip
    item = {"template_id": template.json()["id"]}
    for cap in (5e-324, 0.0000004, 1_000_000, 999_999.9999995, -1):
        body = {"items": [item], "cost_cap_usd": cap}
        response = await client.post("/v1/generation-jobs", json=body, headers=account.headers)
        assert _paths(response) == ["$.cost_cap_usd"], cap
    for cap in (0.000001, 999_999.999999):
        body = {"items": [item], "cost_cap_usd": cap}
        response = await client.post("/v1/generation-jobs", json=body, headers=account.headers)
        assert response.status_code == 202, response.text
        assert response.json()["cost_cap_usd"] == cap
    logs = "/v1/generation-logs"
    too_big = await client.get(logs, params={"item_index": 2**31}, headers=account.headers)
    assert _paths(too_big) == ["query.item_index"]
    largest = await client.get(logs, params={"item_index": 2**31 - 1}, headers=account.headers)
    assert largest.status_code == 200


async def test_item_cursor_must_be_ascii_digits(
    client: httpx.AsyncClient, account: Account
) -> None:
    template = await client.post("/v1/templates", json={"name": "t", "user_prompt_template": "Hi"},
                                 headers=account.headers)  # fmt: skip
    job = await client.post("/v1/generation-jobs",
                            json={"items": [{"template_id": template.json()["id"]}]},
                            headers=account.headers)  # fmt: skip
    for cursor in ("²", "99999999999", "-1"):
        response = await client.get(f"/v1/generation-jobs/{job.json()['id']}/items",
                                    params={"cursor": cursor}, headers=account.headers)  # fmt: skip
        assert _paths(response) == ["cursor"], cursor
