"""Near-duplicates in the product: the list filter and the export option."""

from __future__ import annotations

import json
from uuid import UUID

import asyncpg
import httpx

from shared.db.pool import tenant_transaction
from shared.db.repositories import exports as exports_repo
from shared.settings import Settings
from shared.storage import LocalObjectStore
from tests.exporter import helpers
from tests.quality.dedup_support import import_one, pairs, paraphrase, seed_document
from tests.support.factories import Account


async def _three(client: httpx.AsyncClient, account: Account) -> tuple[str, str, str]:
    original = await import_one(client, account, seed_document("orig", pairs(1)))
    copy = await import_one(client, account, seed_document("copy", paraphrase(pairs(1), 2)))
    other = await import_one(client, account, seed_document("other", pairs(2)))
    assert copy["duplicate_of"] == original["id"]
    return original["id"], copy["id"], other["id"]


async def test_the_list_filters_near_duplicates(
    client: httpx.AsyncClient, account: Account
) -> None:
    original, copy, other = await _three(client, account)

    async def ids(**params: str) -> list[str]:
        response = await client.get("/v1/conversations", params=params, headers=account.headers)
        assert response.status_code == 200, response.text
        return sorted(item["id"] for item in response.json()["items"])

    assert await ids(near_duplicates="true") == [copy]
    assert await ids(near_duplicates="false") == sorted([original, other])
    assert await ids() == sorted([original, copy, other])
    listed = (await client.get("/v1/conversations", headers=account.headers)).json()["items"]
    marked = {item["id"]: item["duplicate_of"] for item in listed}
    assert marked == {original: None, copy: original, other: None}
    refused = await client.get(
        "/v1/conversations", params={"near_duplicates": "maybe"}, headers=account.headers
    )
    assert refused.status_code == 422
    assert refused.json()["error"]["details"][0]["path"] == "query.near_duplicates"


async def test_an_export_can_leave_near_duplicates_out(
    client: httpx.AsyncClient,
    account: Account,
    db: asyncpg.Pool,
    settings: Settings,
) -> None:
    await _three(client, account)

    async def preview(exclude: bool) -> set[str]:
        config = {"scope": "all", "format": "json", "exclude_near_duplicates": exclude}
        body = {"config": config}
        response = await client.post("/v1/exports/preview", json=body, headers=account.headers)
        assert response.status_code == 200, response.text
        shown = json.loads(response.json()["content"])["conversations"]
        assert response.json()["total"] == len(shown)
        return {c["conversation_id"] for c in shown}

    assert await preview(False) == {"orig", "copy", "other"}
    assert await preview(True) == {"orig", "other"}

    config = {"scope": "all", "format": "jsonl", "exclude_near_duplicates": True}
    created = await client.post("/v1/exports", json={"config": config}, headers=account.headers)
    assert created.status_code == 202, created.text
    assert created.json()["config"]["exclude_near_duplicates"] is True
    files = LocalObjectStore(
        settings.storage_local_dir, base_url="http://test", signing_secret=b"secret"
    )
    export_id = UUID(created.json()["id"])
    outcome = await helpers.run(helpers.resources(settings, db, files), export_id)
    assert outcome["status"] == "completed", outcome
    async with tenant_transaction(db, account.user.id) as conn:
        export = await exports_repo.get(conn, export_id)
    assert export is not None
    lines = (await helpers.read_file(files, export)).decode().splitlines()
    assert len(lines) == 2
    assert export.conversation_count == 2


async def test_an_unknown_export_option_is_still_refused(
    client: httpx.AsyncClient, account: Account
) -> None:
    config = {"scope": "all", "exclude_near_duplicate": True}
    response = await client.post(
        "/v1/exports/preview", json={"config": config}, headers=account.headers
    )
    assert response.status_code == 422
