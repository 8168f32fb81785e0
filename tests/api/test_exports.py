"""/v1/exports: request (with its audit row), scope errors, status, cancel, download, history,
history.csv and preview. Jobs go to a queue of this module's own and run in-process."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import asyncpg
import httpx
import pytest
import redis.asyncio as redis_asyncio

from shared.db.pool import acquire, tenant_transaction
from shared.models.conversation import Conversation
from shared.queue import create_redis, job_state
from shared.settings import Settings
from shared.storage import LocalObjectStore, open_storage
from tests.conftest import s3_settings
from tests.exporter import helpers
from tests.support.api import api_client
from tests.support.factories import Account, create_account

Json = dict[str, Any]


@pytest.fixture
async def api_settings(settings: Settings, redis_url: str) -> AsyncIterator[Settings]:
    """Session settings with a queue of this test's own (no worker of another test runs it)."""
    own = settings.model_copy(update={"queue_prefix": f"cfexp-{uuid.uuid4().hex[:8]}"})
    yield own
    client = redis_asyncio.Redis.from_url(redis_url)
    keys = [key async for key in client.scan_iter(f"{own.queue_prefix}*")]
    keys += [key async for key in client.scan_iter("arq:*export:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
async def api(api_settings: Settings, db: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    """The API (local storage backend) on empty tables."""
    async with api_client(api_settings) as client:
        yield client


@pytest.fixture
def files(api_settings: Settings) -> LocalObjectStore:
    """The local backend the API serves downloads from."""
    secret = api_settings.storage_signing_secret.get_secret_value().encode()
    return LocalObjectStore(
        api_settings.storage_local_dir, base_url=api_settings.public_base_url, signing_secret=secret
    )


@pytest.fixture
async def approved(
    db: asyncpg.Pool, files: LocalObjectStore, account: Account
) -> list[Conversation]:
    """The kit's seed conversations and a hostile one, approved."""
    owner = account.user.id
    stored = await helpers.store_fixtures(db, files, owner)
    return [*stored, await helpers.store_hostile(db, files, owner)]


async def run_job(
    settings: Settings, db: asyncpg.Pool, files: LocalObjectStore, body: Json
) -> Json:
    """What the exporter worker does with the job the API queued."""
    return await helpers.run(helpers.resources(settings, db, files), UUID(body["id"]))


async def post_export(api: httpx.AsyncClient, account: Account, body: Json) -> httpx.Response:
    return await api.post("/v1/exports", json=body, headers=account.headers)


async def test_request_records_and_queues_the_export(
    api: httpx.AsyncClient, account: Account, approved: list[Conversation], api_settings: Settings
) -> None:
    response = await post_export(api, account, {"config": {"scope": "all_approved"}})
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "queued"
    assert body["format"] == "jsonl"
    assert body["config"]["include_metadata"] is False
    assert body["download_url"] is None
    redis = create_redis(api_settings)
    state = await job_state(redis, api_settings, "exporter", f"export:{body['id']}")
    await redis.aclose()
    assert state.status == "queued"
    detail = (await api.get(f"/v1/exports/{body['id']}", headers=account.headers)).json()
    assert detail["status"] == "queued"
    assert detail["conversation_ids"] == []


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"config": {"scope": "selected"}}, "non-empty conversation_ids"),
        ({"config": {"scope": "selected"}, "conversation_ids": []}, "non-empty conversation_ids"),
        ({"config": {"scope": "all"}, "filters": {}}, "only accepted with scope 'filtered'"),
        ({"config": {"scope": "filtered"}}, "needs a filters object"),
        (
            {"config": {"scope": "all", "format": "xml"}},
            "'jsonl', 'json', 'csv', 'markdown', 'parquet' or 'txt'",
        ),
        ({"config": {"scope": "all", "include_everything": True}}, "Extra inputs"),
        ({"config": {"scope": "filtered"}, "filters": {"quality_min": 11}}, "less than or equal"),
    ],
)
async def test_malformed_requests_are_422_and_not_exports(
    api: httpx.AsyncClient, account: Account, body: Json, fragment: str
) -> None:
    response = await post_export(api, account, body)
    assert response.status_code == 422, response.text
    assert fragment in response.text
    history = (await api.get("/v1/exports", headers=account.headers)).json()
    assert history["total"] == 0


async def test_unknown_ids_and_empty_scopes_are_422_with_a_failed_audit_row(
    api: httpx.AsyncClient, account: Account, approved: list[Conversation], db: asyncpg.Pool,
    files: LocalObjectStore,
) -> None:  # fmt: skip
    async with acquire(db) as conn:
        stranger = await create_account(conn)
    theirs = await helpers.store_fixtures(db, files, stranger.user.id)
    unknown = [str(uuid.uuid4()), str(theirs[0].id)]
    selected = [str(approved[0].id), *unknown]
    response = await post_export(
        api, account, {"config": {"scope": "selected"}, "conversation_ids": selected}
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "unknown_conversations"
    assert sorted(error["details"]["unknown_ids"]) == sorted(unknown)
    for body in (
        {"config": {"scope": "filtered"}, "filters": {"tier": ["scenario"]}},
        {"config": {"scope": "filtered"}, "filters": {"q": "no-such-word-anywhere"}},
    ):
        response = await post_export(api, account, body)
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "nothing_to_export"
    await helpers.set_status(db, account.user.id, [c.id for c in approved], "rejected")
    response = await post_export(api, account, {"config": {"scope": "all_approved"}})
    assert response.json()["error"]["code"] == "nothing_to_export"
    export_id = response.json()["error"]["details"]["export_id"]
    history = (await api.get("/v1/exports", headers=account.headers)).json()
    assert history["total"] == 4
    assert {item["status"] for item in history["items"]} == {"failed"}
    failed = (await api.get(f"/v1/exports/{export_id}", headers=account.headers)).json()
    assert failed["error"].startswith("nothing_to_export: ")


async def test_export_completes_and_downloads_with_its_file_name(
    api: httpx.AsyncClient, account: Account, approved: list[Conversation], db: asyncpg.Pool,
    files: LocalObjectStore, api_settings: Settings,
) -> None:  # fmt: skip
    edge = [str(c.id) for c in approved if c.tier.value == "edge_case"]
    config = {"scope": "selected", "format": "csv", "compress": True, "include_metadata": True}
    body = (await post_export(api, account, {"config": config, "conversation_ids": edge})).json()
    not_yet = await api.get(f"/v1/exports/{body['id']}/download", headers=account.headers)
    assert not_yet.status_code == 409
    assert not_yet.json()["error"]["code"] == "export_not_ready"
    assert (await run_job(api_settings, db, files, body))["status"] == "completed"

    status = (await api.get(f"/v1/exports/{body['id']}", headers=account.headers)).json()
    assert status["status"] == "completed"
    assert status["progress_percent"] == 100
    assert status["conversation_count"] == 2
    assert status["tier_distribution"] == {"edge_case": 2}
    assert status["quality_stats"]["scored"] == 2
    today = datetime.fromisoformat(status["created_at"]).astimezone(UTC).date()
    name = f"training-data-edge_case-{today:%Y-%m-%d}-2.csv.gz"
    assert status["file_name"] == name
    assert status["download_url"] == f"/v1/exports/{body['id']}/download"

    redirect = await api.get(status["download_url"], headers=account.headers)
    assert redirect.status_code == 302
    assert redirect.headers["content-disposition"] == f'attachment; filename="{name}"'
    location = urlsplit(redirect.headers["location"])
    served = await api.get(f"{location.path}?{location.query}")
    assert served.status_code == 200
    assert served.headers["content-disposition"] == f'attachment; filename="{name}"'
    assert hashlib.sha256(served.content).hexdigest() == status["sha256"]
    link = await api.get(f"{status['download_url']}?redirect=false", headers=account.headers)
    assert link.json()["file_name"] == name
    after = (await api.get(f"/v1/exports/{body['id']}", headers=account.headers)).json()
    assert after["download_count"] == 2
    assert after["last_downloaded_at"] is not None


async def test_cancel_failed_and_expired_exports(
    api: httpx.AsyncClient, account: Account, approved: list[Conversation], db: asyncpg.Pool,
    files: LocalObjectStore, api_settings: Settings,
) -> None:  # fmt: skip
    queued = (await post_export(api, account, {"config": {"scope": "all"}})).json()
    cancelled = await api.post(f"/v1/exports/{queued['id']}/cancel", headers=account.headers)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    again = await api.post(f"/v1/exports/{queued['id']}/cancel", headers=account.headers)
    assert again.status_code == 409
    assert (await run_job(api_settings, db, files, queued))["status"] == "cancelled"
    assert [
        info async for info in files.list_prefix(f"exports/{account.user.id}/{queued['id']}")
    ] == []
    refused = await api.get(f"/v1/exports/{queued['id']}/download", headers=account.headers)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "export_cancelled"

    done = (await post_export(api, account, {"config": {"scope": "all"}})).json()
    await run_job(api_settings, db, files, done)
    async with tenant_transaction(db, account.user.id) as conn:
        await conn.execute(
            "UPDATE export_logs SET expires_at = now() - interval '1 second' WHERE id = $1",
            UUID(done["id"]),
        )
    gone = await api.get(f"/v1/exports/{done['id']}/download", headers=account.headers)
    assert gone.status_code == 410
    async with tenant_transaction(db, account.user.id) as conn:
        await conn.execute(
            "UPDATE export_logs SET status = 'expired' WHERE id = $1", UUID(done["id"])
        )
    gone = await api.get(f"/v1/exports/{done['id']}/download", headers=account.headers)
    assert gone.status_code == 410
    finished = await api.post(f"/v1/exports/{done['id']}/cancel", headers=account.headers)
    assert finished.status_code == 409


async def test_other_tenants_get_404_everywhere(
    api: httpx.AsyncClient, account: Account, approved: list[Conversation], db: asyncpg.Pool,
    files: LocalObjectStore, api_settings: Settings,
) -> None:  # fmt: skip
    mine = (await post_export(api, account, {"config": {"scope": "all"}})).json()
    await run_job(api_settings, db, files, mine)
    async with acquire(db) as conn:
        stranger = await create_account(conn)
    for method, path in (
        ("GET", f"/v1/exports/{mine['id']}"),
        ("GET", f"/v1/exports/{mine['id']}/download"),
        ("POST", f"/v1/exports/{mine['id']}/cancel"),
        ("GET", f"/v1/exports/{uuid.uuid4()}"),
    ):
        response = await api.request(method, path, headers=stranger.headers)
        assert response.status_code == 404, (method, path)
        assert response.json()["error"]["code"] == "not_found"
    assert (await api.get("/v1/exports", headers=stranger.headers)).json()["total"] == 0
    assert (await api.get("/v1/exports")).status_code == 401
    preview = await api.post(
        "/v1/exports/preview", json={"config": {"scope": "all"}}, headers=stranger.headers
    )
    assert preview.json()["total"] == 0


async def test_history_filters_and_keyset_pages(
    api: httpx.AsyncClient, account: Account, approved: list[Conversation], db: asyncpg.Pool
) -> None:
    owner = account.user.id
    for fmt in ("jsonl", "csv", "jsonl", "markdown", "json"):
        await helpers.new_export(db, owner, helpers.config(scope="all", format=fmt))
    async with tenant_transaction(db, owner) as conn:
        await conn.execute("UPDATE export_logs SET status = 'failed' WHERE format = 'csv'")
        await conn.execute(
            "UPDATE export_logs SET created_at = now() - interval '3 days' WHERE format = 'json'"
        )
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/v1/exports", params=params, headers=account.headers)).json()
        assert page["total"] == 5
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 5
    created = [
        (await api.get(f"/v1/exports/{i}", headers=account.headers)).json()["created_at"]
        for i in seen
    ]
    assert created == sorted(created, reverse=True)

    async def total(params: dict[str, Any]) -> int:
        response = await api.get("/v1/exports", params=params, headers=account.headers)
        assert response.status_code == 200, response.text
        return int(response.json()["total"])

    assert await total({"format": "jsonl"}) == 2
    assert await total({"format": ["jsonl", "csv"]}) == 3
    assert await total({"status": "failed"}) == 1
    yesterday = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    assert await total({"from": yesterday}) == 4
    assert await total({"to": yesterday}) == 1
    bad = await api.get("/v1/exports", params={"cursor": "nope"}, headers=account.headers)
    assert bad.status_code == 422
    assert (
        await api.get("/v1/exports", params={"limit": 101}, headers=account.headers)
    ).status_code == 422


async def test_history_csv_is_the_audit_log(
    api: httpx.AsyncClient, account: Account, approved: list[Conversation], db: asyncpg.Pool
) -> None:
    owner = account.user.id
    for fmt in ("jsonl", "markdown"):
        await helpers.new_export(db, owner, helpers.config(scope="all", format=fmt))
    async with tenant_transaction(db, owner) as conn:
        await conn.execute(
            "UPDATE export_logs SET status = 'failed', error = '=HYPERLINK(\"x\")' "
            "WHERE format = 'markdown'"
        )
    response = await api.get("/v1/exports/history.csv", headers=account.headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"].startswith(
        'attachment; filename="export-history-'
    )
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text[1:], newline="")))
    assert [row["format"] for row in rows] == ["markdown", "jsonl"]
    assert rows[0]["error"] == '\'=HYPERLINK("x")'
    only_failed = await api.get(
        "/v1/exports/history.csv", params={"status": "failed"}, headers=account.headers
    )
    assert len(list(csv.reader(io.StringIO(only_failed.text.lstrip("\ufeff"))))) == 2


async def test_preview_renders_the_first_three_with_the_exporter_code(
    api: httpx.AsyncClient, account: Account, approved: list[Conversation], db: asyncpg.Pool,
    files: LocalObjectStore,
) -> None:  # fmt: skip
    extra = await helpers.clone(db, account.user.id, approved[0].id, 2)
    body = {"config": {"scope": "all_approved", "format": "json", "include_metadata": True}}
    response = await api.post("/v1/exports/preview", json=body, headers=account.headers)
    assert response.status_code == 200, response.text
    preview = response.json()
    assert preview["total"] == 3 + len(extra)
    assert preview["conversation_count"] == 3
    assert preview["content_type"] == "application/json"
    doc = json.loads(preview["content"])
    assert [c["conversation_id"] for c in doc["conversations"]] == [
        c.conversation_id for c in approved
    ]
    md = {
        "config": {"scope": "selected", "format": "markdown"},
        "conversation_ids": [str(approved[2].id)],
    }
    text = (await api.post("/v1/exports/preview", json=md, headers=account.headers)).json()[
        "content"
    ]
    assert text.startswith("# Conversation: ")
    assert text.endswith("<!-- convoforge-export conversations=1 turns=13 -->\n")
    unknown = {"config": {"scope": "selected"}, "conversation_ids": [str(uuid.uuid4())]}
    refused = await api.post("/v1/exports/preview", json=unknown, headers=account.headers)
    assert refused.status_code == 422
    assert (await api.get("/v1/exports", headers=account.headers)).json()["total"] == 0


async def test_s3_download_redirects_to_a_presigned_url(
    api_settings: Settings, s3_config: dict[str, str], db: asyncpg.Pool, account: Account,
    files: LocalObjectStore,
) -> None:  # fmt: skip
    s3 = s3_settings(api_settings, s3_config)
    await helpers.store_fixtures(db, files, account.user.id)
    storage = await open_storage(s3)
    try:
        async with api_client(s3) as api:
            body = (await post_export(api, account, {"config": {"scope": "all"}})).json()
            await helpers.run(helpers.resources(s3, db, storage), UUID(body["id"]))
            status = (await api.get(f"/v1/exports/{body['id']}", headers=account.headers)).json()
            redirect = await api.get(status["download_url"], headers=account.headers)
    finally:
        await storage.close()
    assert redirect.status_code == 302
    location = redirect.headers["location"]
    assert location.startswith(s3_config["S3_ENDPOINT_URL"])
    assert "X-Amz-Signature=" in location
    async with httpx.AsyncClient() as http:
        served = await http.get(location)
    assert served.status_code == 200
    assert hashlib.sha256(served.content).hexdigest() == status["sha256"]
    name = status["file_name"]
    assert name.endswith("-2.jsonl")
    assert served.headers["content-disposition"] == f'attachment; filename="{name}"'


async def test_queue_down_is_503_and_the_row_says_why(
    api_settings: Settings, db: asyncpg.Pool, account: Account, approved: list[Conversation]
) -> None:
    dead = api_settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    async with api_client(dead) as api:
        response = await post_export(api, account, {"config": {"scope": "all"}})
        assert response.status_code == 503
        error = response.json()["error"]
        assert error["details"]["unavailable"] == ["redis"]
        export = await api.get(
            f"/v1/exports/{error['details']['export_id']}", headers=account.headers
        )
    assert export.json()["status"] == "failed"
    assert export.json()["error"].startswith("queue_unavailable: ")
