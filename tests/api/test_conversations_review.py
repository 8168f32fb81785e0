"""Review workflow, history, bulk actions, deletes, stats, download links, tenant isolation."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from shared.db.pool import acquire
from shared.storage import ObjectStore
from tests.support.factories import Account, create_account
from tests.support.seed_files import seed_file


async def _create(api: httpx.AsyncClient, account: Account, name: str, **kwargs: Any) -> str:
    response = await api.post(
        "/v1/conversations", json=seed_file(name, **kwargs), headers=account.headers
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _status(api: httpx.AsyncClient, account: Account, id: str, status: str) -> httpx.Response:
    return await api.post(
        f"/v1/conversations/{id}/status",
        json={"status": status, "notes": f"to {status}"},
        headers=account.headers,
    )


async def test_workflow_and_history(client: httpx.AsyncClient, account: Account) -> None:
    id = await _create(client, account, "flow")
    approved = await _status(client, account, id, "approved")
    assert approved.status_code == 200
    assert approved.json()["status"] == "approved"
    assert approved.json()["reviewed_by"] == str(account.user.id)
    assert (await _status(client, account, id, "archived")).status_code == 200
    history = (await client.get(f"/v1/conversations/{id}/reviews", headers=account.headers)).json()
    steps = [(h["action"], h["from_status"], h["to_status"]) for h in history["items"]]
    assert steps == [
        ("imported", None, "pending_review"),
        ("approve", "pending_review", "approved"),
        ("archive", "approved", "archived"),
    ]
    assert history["items"][1]["notes"] == "to approved"


async def test_reject_then_reopen(client: httpx.AsyncClient, account: Account) -> None:
    id = await _create(client, account, "reopen")
    assert (await _status(client, account, id, "rejected")).status_code == 200
    reopened = await _status(client, account, id, "pending_review")
    assert reopened.json()["status"] == "pending_review"


async def test_request_revision_needs_notes(client: httpx.AsyncClient, account: Account) -> None:
    id = await _create(client, account, "revise")
    for notes in (None, "", "   "):
        body = {"status": "needs_revision", "notes": notes}
        refused = await client.post(
            f"/v1/conversations/{id}/status", json=body, headers=account.headers
        )
        assert refused.status_code == 422
        assert refused.json()["error"]["details"][0]["path"] == "$.notes"
    asked = await client.post(
        f"/v1/conversations/{id}/status",
        json={"status": "needs_revision", "notes": "turn 3 <b>contradicts</b> turn 1"},
        headers=account.headers,
    )
    assert asked.status_code == 200
    assert asked.json()["status"] == "needs_revision"
    history = (await client.get(f"/v1/conversations/{id}/reviews", headers=account.headers)).json()
    last = history["items"][-1]
    assert (last["action"], last["from_status"], last["to_status"]) == (
        "request_revision", "pending_review", "needs_revision",
    )  # fmt: skip
    assert last["notes"] == "turn 3 <b>contradicts</b> turn 1"
    assert (await _status(client, account, id, "approved")).status_code == 200


@pytest.mark.parametrize(
    ("path", "target", "allowed"),
    [
        ([], "archived", ["approved", "needs_revision", "rejected"]),
        ([], "pending_review", ["approved", "needs_revision", "rejected"]),
        (["approved"], "rejected", ["archived"]),
        (["approved", "archived"], "approved", []),
    ],
)
async def test_forbidden_transition_is_409_naming_allowed(
    client: httpx.AsyncClient, account: Account, path: list[str], target: str, allowed: list[str]
) -> None:
    id = await _create(client, account, "bad-move")
    for step in path:
        assert (await _status(client, account, id, step)).status_code == 200
    response = await _status(client, account, id, target)
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "invalid_transition"
    assert error["details"]["allowed"] == allowed
    reviews = (await client.get(f"/v1/conversations/{id}/reviews", headers=account.headers)).json()
    assert len(reviews["items"]) == 1 + len(path)


async def test_bulk_actions_report_per_id(client: httpx.AsyncClient, account: Account) -> None:
    a = await _create(client, account, "bulk-a")
    b = await _create(client, account, "bulk-b")
    missing = str(uuid.uuid4())
    approve = await client.post(
        "/v1/conversations/bulk-action",
        json={"action": "approve", "ids": [a, missing, b]},
        headers=account.headers,
    )
    results = approve.json()["results"]
    assert [r["ok"] for r in results] == [True, False, True]
    assert results[1]["error"]["code"] == "not_found"
    reject = await client.post(
        "/v1/conversations/bulk-action",
        json={"action": "reject", "ids": [a], "reason": "tone is off"},
        headers=account.headers,
    )
    assert reject.json()["results"][0]["error"]["code"] == "invalid_transition"
    archive = await client.post(
        "/v1/conversations/bulk-action",
        json={"action": "archive", "ids": [a, b]},
        headers=account.headers,
    )
    assert archive.json()["succeeded"] == 2


async def test_bulk_reject_keeps_reason(client: httpx.AsyncClient, account: Account) -> None:
    a = await _create(client, account, "reject-me")
    await client.post(
        "/v1/conversations/bulk-action",
        json={"action": "reject", "ids": [a], "reason": 'too generic, "quoted" ✂️'},
        headers=account.headers,
    )
    reviews = (await client.get(f"/v1/conversations/{a}/reviews", headers=account.headers)).json()
    assert reviews["items"][-1]["notes"] == 'too generic, "quoted" ✂️'


async def test_patch_metadata(client: httpx.AsyncClient, account: Account) -> None:
    id = await _create(client, account, "patch-me")
    response = await client.patch(
        f"/v1/conversations/{id}",
        json={"title": "Calmer title", "tags": ["calm", "q4"], "category": ["retirement"]},
        headers=account.headers,
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["title"], body["tags"], body["category"]) == (
        "Calmer title",
        ["calm", "q4"],
        ["retirement"],
    )
    refused = await client.patch(
        f"/v1/conversations/{id}", json={"status": "approved", "owner_id": "x"},
        headers=account.headers,
    )  # fmt: skip
    assert refused.status_code == 422
    assert len(refused.json()["error"]["details"]) == 2


async def test_soft_and_hard_delete(
    api: httpx.AsyncClient, account: Account, objects: ObjectStore, db: asyncpg.Pool
) -> None:
    soft = await _create(api, account, "soft")
    hard = await _create(api, account, "hard")
    hard_key = (await api.get(f"/v1/conversations/{hard}", headers=account.headers)).json()[
        "object_key"
    ]
    assert (
        await api.delete(f"/v1/conversations/{soft}", headers=account.headers)
    ).status_code == 204
    assert (await api.get(f"/v1/conversations/{soft}", headers=account.headers)).status_code == 404
    listed = (await api.get("/v1/conversations", headers=account.headers)).json()
    assert [item["id"] for item in listed["items"]] == [hard]
    gone = await api.delete(f"/v1/conversations/{hard}?hard=true", headers=account.headers)
    assert gone.status_code == 204
    assert await objects.head(hard_key) is None
    async with acquire(db) as conn:
        assert await conn.fetchval("SELECT count(*) FROM conversation_turns") == 0
    # The soft-deleted one can still be purged for good.
    purge = await api.delete(f"/v1/conversations/{soft}?hard=true", headers=account.headers)
    assert purge.status_code == 204


async def test_stats(client: httpx.AsyncClient, account: Account) -> None:
    a = await _create(client, account, "s-a", quality=4.5)
    b = await _create(client, account, "s-b", quality=2.2, tier="scenario")
    await _create(client, account, "s-c", quality=5.0, tier="edge_case")
    await _status(client, account, a, "approved")
    await _status(client, account, b, "rejected")
    stats = (await client.get("/v1/conversations/stats", headers=account.headers)).json()
    assert stats["total"] == 3
    assert stats["by_status"]["approved"] == 1
    assert stats["by_status"]["pending_review"] == 1
    assert stats["by_tier"] == {"template": 1, "scenario": 1, "edge_case": 1}
    assert stats["quality_histogram"]["9"] == 2
    assert stats["quality_histogram"]["4"] == 1
    assert stats["approval_rate"] == 0.5


async def test_file_link_downloads_the_document(api: httpx.AsyncClient, account: Account) -> None:
    id = await _create(api, account, "linked")
    link = await api.get(f"/v1/conversations/{id}/file", headers=account.headers)
    assert link.status_code == 200
    url = link.json()["url"]
    parsed = httpx.URL(url)
    if parsed.path.startswith("/files/"):  # local backend: the API itself serves the link
        download = await api.get(parsed.raw_path.decode())
    else:
        async with httpx.AsyncClient() as http:
            download = await http.get(url)
    assert download.status_code == 200
    detail = (await api.get(f"/v1/conversations/{id}", headers=account.headers)).json()
    assert len(download.content) == detail["byte_size"]


async def test_every_route_hides_other_tenants(
    client: httpx.AsyncClient, account: Account, db: asyncpg.Pool
) -> None:
    id = await _create(client, account, "mine")
    async with acquire(db) as conn:
        intruder = await create_account(conn)
    h = intruder.headers
    calls = [
        client.get(f"/v1/conversations/{id}", headers=h),
        client.patch(f"/v1/conversations/{id}", json={"title": "x"}, headers=h),
        client.post(f"/v1/conversations/{id}/status", json={"status": "approved"}, headers=h),
        client.get(f"/v1/conversations/{id}/reviews", headers=h),
        client.get(f"/v1/conversations/{id}/file", headers=h),
        client.delete(f"/v1/conversations/{id}", headers=h),
        client.delete(f"/v1/conversations/{id}?hard=true", headers=h),
    ]
    for call in calls:
        response = await call
        assert response.status_code == 404, response.request.url
        assert response.json()["error"]["code"] == "not_found"
    bulk = await client.post(
        "/v1/conversations/bulk-action", json={"action": "delete", "ids": [id]}, headers=h
    )
    assert bulk.json()["results"][0]["error"]["code"] == "not_found"
    still = await client.get(f"/v1/conversations/{id}", headers=account.headers)
    assert still.status_code == 200
    assert still.json()["status"] == "pending_review"
