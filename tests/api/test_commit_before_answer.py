"""A write is committed before its response leaves, and a COMMIT that fails is never a 2xx.

Served by real uvicorn on loopback: through ASGITransport the whole app finishes before the
client sees the response, which would hide a commit that runs after the response is sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from services.api.app import create_app
from shared.db.pool import acquire
from shared.settings import Settings
from tests.support.factories import Account
from tests.support.live import serve_in_process
from tests.support.seed_files import seed_file

REFUSED_TITLE = "refuse this commit"
# Deferred constraint triggers run inside COMMIT: one refuses a marker value, the other makes
# the caller's COMMIT slow, so an answer sent before its commit would be read stale.
_TRIGGERS = """
CREATE FUNCTION cf_test_refuse_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.title = '{title}' THEN RAISE EXCEPTION 'refused at commit'; END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER cf_test_refuse_commit AFTER UPDATE ON conversations
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION cf_test_refuse_commit();
CREATE FUNCTION cf_test_slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('app.user_id', true) = '{owner}'
       AND current_setting('cf_test.slept', true) IS DISTINCT FROM 'yes' THEN
        PERFORM set_config('cf_test.slept', 'yes', true);
        PERFORM pg_sleep(0.3);
    END IF;
    RETURN NULL;
END $$;
"""
_SLOW_TABLES = ("conversations", "templates", "scenarios", "edge_cases", "batch_jobs",
                "export_logs")  # fmt: skip


@pytest.fixture
async def commit_triggers(db: asyncpg.Pool, account: Account) -> AsyncIterator[None]:
    """The two triggers, on the session's own database only, dropped afterwards."""
    async with acquire(db) as conn:
        await conn.execute(_TRIGGERS.format(title=REFUSED_TITLE, owner=account.user.id))
        for table in _SLOW_TABLES:
            await conn.execute(
                f"CREATE CONSTRAINT TRIGGER cf_test_slow_commit AFTER INSERT OR UPDATE OR DELETE"
                f" ON {table} DEFERRABLE INITIALLY DEFERRED FOR EACH ROW"
                f" EXECUTE FUNCTION cf_test_slow_commit()"
            )
    try:
        yield
    finally:
        async with acquire(db) as conn:
            for table in (*_SLOW_TABLES, "conversations"):
                for name in ("cf_test_slow_commit", "cf_test_refuse_commit"):
                    await conn.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
            await conn.execute("DROP FUNCTION cf_test_slow_commit(), cf_test_refuse_commit()")


@pytest.fixture
async def live(settings: Settings, commit_triggers: None) -> AsyncIterator[str]:
    """The API on a real socket."""
    async with serve_in_process(create_app(settings)) as url:
        yield url


@pytest.fixture
async def writer(live: str, account: Account) -> AsyncIterator[httpx.AsyncClient]:
    """The client that writes."""
    async with httpx.AsyncClient(base_url=live, headers=account.headers, timeout=30) as client:
        yield client


@pytest.fixture
async def reader(live: str, account: Account) -> AsyncIterator[httpx.AsyncClient]:
    """Another client, on its own connection, that reads as soon as the writer has its answer."""
    async with httpx.AsyncClient(base_url=live, headers=account.headers, timeout=30) as client:
        yield client


async def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code < 300, response.text
    body: dict[str, Any] = response.json() if response.content else {}
    return body


async def test_refused_commit_is_a_5xx_and_changes_nothing(
    writer: httpx.AsyncClient, reader: httpx.AsyncClient
) -> None:
    created = await _ok(await writer.post("/v1/conversations", json=seed_file("refused")))
    response = await writer.patch(
        f"/v1/conversations/{created['id']}", json={"title": REFUSED_TITLE, "tags": ["x"]}
    )
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "commit_failed"
    assert error["details"]["request_id"] == response.headers["x-request-id"]
    after = await _ok(await reader.get(f"/v1/conversations/{created['id']}"))
    assert (after["title"], after["tags"]) == (created["title"], created["tags"])
    # The connection and the pool are fine afterwards.
    assert (await writer.get(f"/v1/conversations/{created['id']}")).status_code == 200


async def test_conversation_writes_are_visible_at_once(
    writer: httpx.AsyncClient, reader: httpx.AsyncClient
) -> None:
    created = await _ok(await writer.post("/v1/conversations", json=seed_file("visible")))
    path = f"/v1/conversations/{created['id']}"
    assert (await reader.get(path)).status_code == 200
    await _ok(await writer.patch(path, json={"title": "Renamed", "is_flagged": True}))
    seen = await _ok(await reader.get(path))
    assert (seen["title"], seen["is_flagged"]) == ("Renamed", True)
    await _ok(await writer.post(f"{path}/status", json={"status": "approved"}))
    assert (await _ok(await reader.get(path)))["status"] == "approved"
    bulk = {"action": "archive", "ids": [created["id"]]}
    await _ok(await writer.post("/v1/conversations/bulk-action", json=bulk))
    assert (await _ok(await reader.get(path)))["status"] == "archived"
    listed = await _ok(await reader.get("/v1/conversations", params={"status": "archived"}))
    assert [item["id"] for item in listed["items"]] == [created["id"]]
    await _ok(await writer.delete(path))
    assert (await reader.get(path)).status_code == 404


@pytest.mark.parametrize("kind", ["templates", "scenarios", "edge-cases"])
async def test_source_writes_are_visible_at_once(
    writer: httpx.AsyncClient, reader: httpx.AsyncClient, kind: str
) -> None:
    body = {"name": f"{kind} one"}
    if kind == "templates":
        body["user_prompt_template"] = "Hello {{name}}"
    created = await _ok(await writer.post(f"/v1/{kind}", json=body))
    path = f"/v1/{kind}/{created['id']}"
    assert (await _ok(await reader.get(path)))["name"] == body["name"]
    await _ok(await writer.patch(path, json={"name": f"{kind} two"}))
    assert (await _ok(await reader.get(path)))["name"] == f"{kind} two"
    await _ok(await writer.delete(path))
    assert (await reader.get(path)).status_code == 404


async def test_job_and_export_creation_are_visible_at_once(
    writer: httpx.AsyncClient, reader: httpx.AsyncClient
) -> None:
    template = await _ok(
        await writer.post("/v1/templates", json={"name": "t", "user_prompt_template": "Hi"})
    )
    job = await _ok(
        await writer.post("/v1/generation-jobs", json={"items": [{"template_id": template["id"]}]})
    )
    assert (await reader.get(f"/v1/generation-jobs/{job['id']}")).status_code == 200
    await _ok(await writer.post(f"/v1/generation-jobs/{job['id']}/cancel"))
    assert (await _ok(await reader.get(f"/v1/generation-jobs/{job['id']}")))["status"] == (
        "cancelled"
    )
    await _ok(await writer.post("/v1/conversations", json=seed_file("to_export")))
    export = await _ok(await writer.post("/v1/exports", json={"config": {"scope": "all"}}))
    assert (await reader.get(f"/v1/exports/{export['id']}")).status_code == 200
