"""An unknown query parameter is a 422 naming the allowed ones, on every documented route."""

from __future__ import annotations

import httpx

from tests.support.factories import Account


async def test_misspelled_filter_is_refused_with_the_allowed_names(
    client: httpx.AsyncClient, account: Account
) -> None:
    response = await client.get("/v1/conversations?staus=approved", headers=account.headers)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_failed"
    assert "staus" in error["message"]
    (problem,) = error["details"]
    assert problem["path"] == "query.staus"
    assert {"status", "tier", "q", "sort", "limit", "cursor", "quality_min"} <= set(
        problem["allowed"]
    )


async def test_every_unknown_name_is_listed_once(
    client: httpx.AsyncClient, account: Account
) -> None:
    url = "/v1/exports?format=jsonl&b=1&a=2&a=3&%3Cscript%3E=x"
    response = await client.get(url, headers=account.headers)
    assert response.status_code == 422
    paths = [problem["path"] for problem in response.json()["error"]["details"]]
    assert paths == ["query.<script>", "query.a", "query.b"]
    allowed = response.json()["error"]["details"][0]["allowed"]
    assert {"format", "status", "from", "to", "limit", "cursor"} <= set(allowed)


async def test_declared_names_and_aliases_still_work(
    client: httpx.AsyncClient, account: Account
) -> None:
    for url in (
        "/v1/conversations?status=approved&tier=template&limit=5",
        "/v1/exports?from=2026-01-01T00:00:00Z&format=jsonl",
        "/v1/me",
    ):
        response = await client.get(url, headers=account.headers)
        assert response.status_code == 200, (url, response.text)


async def test_routes_without_query_parameters_refuse_any(
    client: httpx.AsyncClient, account: Account
) -> None:
    response = await client.get("/v1/me?verbose=1", headers=account.headers)
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["allowed"] == []
    health = await client.get("/healthz?x=1")
    assert health.status_code == 422
    assert (await client.get("/healthz")).status_code == 200


async def test_patch_refuses_null_for_not_null_fields(
    client: httpx.AsyncClient, account: Account
) -> None:
    from services.api.openapi_examples import SEED_FILE

    created = await client.post("/v1/conversations", json=SEED_FILE, headers=account.headers)
    url = f"/v1/conversations/{created.json()['id']}"
    for field in ("tags", "category", "is_flagged"):
        response = await client.patch(url, json={field: None}, headers=account.headers)
        assert response.status_code == 422, (field, response.text)
        assert field in response.json()["error"]["details"][0]["message"]
    cleared = await client.patch(url, json={"emotion": None}, headers=account.headers)
    assert cleared.status_code == 200
