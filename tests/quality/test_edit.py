"""Turn edits: versions of the stored document, history with a diff, counts, atomicity."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import uuid
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from shared.db.pool import acquire
from shared.db.repositories import versions as versions_repo
from shared.settings import Settings
from shared.storage import open_storage
from shared.storage.local import LocalObjectStore
from tests.support.factories import Account, create_account
from tests.support.seed_files import seed_file

HOSTILE = 'She said "no, really", then:\n<script>alert(1)</script>\n🙂 commas, and ‘quotes’'


async def _create(api: httpx.AsyncClient, account: Account, name: str, **kw: Any) -> dict[str, Any]:
    response = await api.post(
        "/v1/conversations", json=seed_file(name, **kw), headers=account.headers
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def _edit(
    api: httpx.AsyncClient, account: Account, id: str, turn: int, content: str, **extra: Any
) -> httpx.Response:
    return await api.patch(
        f"/v1/conversations/{id}/turns/{turn}",
        json={"content": content, **extra},
        headers=account.headers,
    )


async def _document(api: httpx.AsyncClient, account: Account, id: str, query: str = "") -> Any:
    link = await api.get(f"/v1/conversations/{id}/file{query}", headers=account.headers)
    assert link.status_code == 200, link.text
    url = httpx.URL(link.json()["url"])
    assert url.path.startswith("/files/")  # the local backend: the API serves its own links
    download = await api.get(url.raw_path.decode())
    assert download.status_code == 200
    return download.content


async def test_edit_creates_version_two_and_keeps_version_one(
    client: httpx.AsyncClient, account: Account
) -> None:
    created = await _create(client, account, "edit-me")
    id, original_sha = created["id"], created["sha256"]
    turn = next(t for t in created["turns"] if t["role"] == "assistant")
    old_text = turn["content"]
    new_text = "A much longer, calmer answer. " * 10
    edited = await _edit(client, account, id, turn["turn_number"], new_text)
    assert edited.status_code == 200, edited.text
    body = edited.json()
    assert body["document_version"] == 2
    assert body["sha256"] != original_sha
    assert body["total_tokens"] > created["total_tokens"]
    assert body["turn_count"] == created["turn_count"]
    assert body["quality_score"] is not None
    changed = next(t for t in body["turns"] if t["turn_number"] == turn["turn_number"])
    assert changed["content"] == new_text
    assert changed["char_count"] == len(new_text)

    v2 = await _document(client, account, id)
    assert hashlib.sha256(v2).hexdigest() == body["sha256"]
    doc2 = orjson.loads(gzip.decompress(v2))
    assert doc2["turns"][turn["turn_number"] - 1]["content"] == new_text
    assert doc2["stats"]["total_tokens"] == body["total_tokens"]
    v1 = await _document(client, account, id, "?version=1")
    assert hashlib.sha256(v1).hexdigest() == original_sha
    doc1 = orjson.loads(gzip.decompress(v1))
    assert doc1["turns"][turn["turn_number"] - 1]["content"] == old_text
    assert doc1["source_file"] == doc2["source_file"]  # the import's original file travels on

    versions = (
        await client.get(f"/v1/conversations/{id}/versions", headers=account.headers)
    ).json()
    assert versions["current_version"] == 2
    rows = [(v["version"], v["current"], v["sha256"]) for v in versions["items"]]
    assert rows == [(1, False, original_sha), (2, True, body["sha256"])]
    assert versions["items"][1]["created_by"] == str(account.user.id)
    assert versions["items"][1]["summary"] == f"edited turn {turn['turn_number']}"

    history = (await client.get(f"/v1/conversations/{id}/reviews", headers=account.headers)).json()
    last = history["items"][-1]
    assert (last["action"], last["document_version"]) == ("edit", 2)
    assert f"-{old_text}" in last["diff"]
    assert f"+{new_text}" in last["diff"]
    assert last["diff"].startswith(f"--- turn {turn['turn_number']} (version 1)\n")


async def test_unknown_version_is_404(client: httpx.AsyncClient, account: Account) -> None:
    id = (await _create(client, account, "one-version"))["id"]
    versions = (
        await client.get(f"/v1/conversations/{id}/versions", headers=account.headers)
    ).json()
    assert [(v["version"], v["current"], v["summary"]) for v in versions["items"]] == [
        (1, True, "original (import)")
    ]
    assert len(await _document(client, account, id, "?version=1")) > 0
    missing = await client.get(f"/v1/conversations/{id}/file?version=2", headers=account.headers)
    assert missing.status_code == 404
    assert "versions 1 to 1" in missing.json()["error"]["message"]
    bad = await client.get(f"/v1/conversations/{id}/file?version=0", headers=account.headers)
    assert bad.status_code == 422


async def test_hostile_text_round_trips(client: httpx.AsyncClient, account: Account) -> None:
    created = await _create(client, account, "hostile")
    id = created["id"]
    edited = await _edit(client, account, id, 2, HOSTILE)
    assert edited.status_code == 200, edited.text
    stored = (await client.get(f"/v1/conversations/{id}", headers=account.headers)).json()
    assert stored["turns"][1]["content"] == HOSTILE
    doc = orjson.loads(gzip.decompress(await _document(client, account, id)))
    assert doc["turns"][1]["content"] == HOSTILE
    history = (await client.get(f"/v1/conversations/{id}/reviews", headers=account.headers)).json()
    diff = history["items"][-1]["diff"]
    assert "+<script>alert(1)</script>\n" in diff
    assert "+🙂 commas, and ‘quotes’\n" in diff


@pytest.mark.parametrize("content", ["", "   ", "\u200b\u200b", " \u3164\n\t"])
async def test_blank_content_is_422(
    client: httpx.AsyncClient, account: Account, content: str
) -> None:
    id = (await _create(client, account, f"blank-{len(content)}"))["id"]
    refused = await _edit(client, account, id, 2, content)
    assert refused.status_code == 422
    assert refused.json()["error"]["details"][0]["path"] == "$.content"
    assert (await client.get(f"/v1/conversations/{id}", headers=account.headers)).json()[
        "document_version"
    ] == 1


async def test_bad_input_lists_every_problem(client: httpx.AsyncClient, account: Account) -> None:
    id = (await _create(client, account, "bad-input"))["id"]
    refused = await client.patch(
        f"/v1/conversations/{id}/turns/2",
        json={"content": "x\u0000y", "expected_version": 0, "extra": 1},
        headers=account.headers,
    )
    assert refused.status_code == 422
    paths = {d["path"] for d in refused.json()["error"]["details"]}
    assert {"$.content", "$.expected_version", "$.extra"} <= paths
    huge = await _edit(client, account, id, 2, "y" * 100_001)
    assert huge.status_code == 422


async def test_turn_numbers_out_of_range(client: httpx.AsyncClient, account: Account) -> None:
    created = await _create(client, account, "range")
    id, count = created["id"], created["turn_count"]
    beyond = await _edit(client, account, id, count + 1, "hello")
    assert beyond.status_code == 404
    assert f"has {count} turns" in beyond.json()["error"]["message"]
    for turn in ("0", "-1", "x", "99999999999"):
        response = await client.patch(
            f"/v1/conversations/{id}/turns/{turn}", json={"content": "hi"}, headers=account.headers
        )
        assert response.status_code == 422, turn


async def test_other_tenant_gets_404(
    client: httpx.AsyncClient, account: Account, db: asyncpg.Pool
) -> None:
    id = (await _create(client, account, "private"))["id"]
    async with acquire(db) as conn:
        intruder = await create_account(conn)
    assert (await _edit(client, intruder, id, 2, "mine now")).status_code == 404
    h = intruder.headers
    assert (await client.get(f"/v1/conversations/{id}/versions", headers=h)).status_code == 404
    assert (
        await client.get(f"/v1/conversations/{id}/file?version=1", headers=h)
    ).status_code == 404
    assert (await _edit(client, account, str(uuid.uuid4()), 2, "x")).status_code == 404


async def test_needs_revision_goes_back_to_review(
    client: httpx.AsyncClient, account: Account
) -> None:
    id = (await _create(client, account, "revise"))["id"]
    asked = await client.post(
        f"/v1/conversations/{id}/status",
        json={"status": "needs_revision", "notes": "turn 2 is too curt"},
        headers=account.headers,
    )
    assert asked.status_code == 200
    edited = await _edit(client, account, id, 2, "A warmer, fuller answer.")
    assert edited.json()["status"] == "pending_review"
    history = (await client.get(f"/v1/conversations/{id}/reviews", headers=account.headers)).json()
    last = history["items"][-1]
    assert (last["action"], last["from_status"], last["to_status"]) == (
        "edit", "needs_revision", "pending_review",
    )  # fmt: skip


async def test_approved_is_not_editable(client: httpx.AsyncClient, account: Account) -> None:
    id = (await _create(client, account, "frozen"))["id"]
    await client.post(
        f"/v1/conversations/{id}/status", json={"status": "approved"}, headers=account.headers
    )
    refused = await _edit(client, account, id, 2, "changed after approval")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "not_editable"


async def test_same_text_creates_no_version(client: httpx.AsyncClient, account: Account) -> None:
    created = await _create(client, account, "same")
    again = await _edit(client, account, created["id"], 2, created["turns"][1]["content"])
    assert again.status_code == 200
    assert again.json()["document_version"] == 1


async def test_concurrent_edits_are_all_kept(client: httpx.AsyncClient, account: Account) -> None:
    created = await _create(client, account, "race", pairs=4)
    id = created["id"]
    turns = [t["turn_number"] for t in created["turns"] if t["role"] != "system"][:6]
    texts = {n: f"edited turn {n} concurrently" for n in turns}
    responses = await asyncio.gather(*(_edit(client, account, id, n, t) for n, t in texts.items()))
    assert [r.status_code for r in responses] == [200] * len(turns)
    final = (await client.get(f"/v1/conversations/{id}", headers=account.headers)).json()
    assert final["document_version"] == 1 + len(turns)
    for n, text in texts.items():
        assert final["turns"][n - 1]["content"] == text
    doc = orjson.loads(gzip.decompress(await _document(client, account, id)))
    assert [doc["turns"][n - 1]["content"] for n in turns] == list(texts.values())
    versions = (
        await client.get(f"/v1/conversations/{id}/versions", headers=account.headers)
    ).json()
    assert [v["version"] for v in versions["items"]] == list(range(1, len(turns) + 2))


async def test_stale_expected_version_is_409(client: httpx.AsyncClient, account: Account) -> None:
    id = (await _create(client, account, "stale"))["id"]
    first = await _edit(client, account, id, 2, "first edit", expected_version=1)
    assert first.status_code == 200
    stale = await _edit(client, account, id, 2, "second edit", expected_version=1)
    assert stale.status_code == 409
    assert stale.json()["error"]["details"]["current_version"] == 2


async def test_database_failure_leaves_old_version_current(
    client: httpx.AsyncClient, account: Account, settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    created = await _create(client, account, "atomic")
    id = created["id"]
    written: list[str] = []
    real_insert = versions_repo.insert

    async def failing_insert(conn: asyncpg.Connection, current: Any, version: Any) -> None:
        written.append(version.object_key)
        await real_insert(conn, current, version)
        raise asyncpg.exceptions.CheckViolationError("injected failure after the version row")

    monkeypatch.setattr(versions_repo, "insert", failing_insert)
    failed = await _edit(client, account, id, 2, "never lands")
    assert failed.status_code >= 500
    assert len(written) == 1
    storage = await open_storage(settings)
    try:
        assert await storage.head(written[0]) is None  # the new object was deleted again
        assert await storage.head(created["object_key"]) is not None
    finally:
        await storage.close()
    after = (await client.get(f"/v1/conversations/{id}", headers=account.headers)).json()
    assert (after["document_version"], after["sha256"]) == (1, created["sha256"])
    assert after["turns"][1]["content"] == created["turns"][1]["content"]
    versions = (
        await client.get(f"/v1/conversations/{id}/versions", headers=account.headers)
    ).json()
    assert [v["version"] for v in versions["items"]] == [1]
    history = (await client.get(f"/v1/conversations/{id}/reviews", headers=account.headers)).json()
    assert [h["action"] for h in history["items"]] == ["imported"]


async def test_storage_failure_changes_nothing(
    client: httpx.AsyncClient, account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = await _create(client, account, "storage-down")
    id = created["id"]

    async def refuse(*args: Any, **kwargs: Any) -> None:
        raise OSError("injected: storage is down")

    monkeypatch.setattr(LocalObjectStore, "put", refuse)
    failed = await _edit(client, account, id, 2, "never stored")
    assert failed.status_code >= 500
    monkeypatch.undo()
    after = (await client.get(f"/v1/conversations/{id}", headers=account.headers)).json()
    assert (after["document_version"], after["sha256"]) == (1, created["sha256"])
    assert after["turns"][1]["content"] == created["turns"][1]["content"]
    history = (await client.get(f"/v1/conversations/{id}/reviews", headers=account.headers)).json()
    assert [h["action"] for h in history["items"]] == ["imported"]


async def test_hard_delete_removes_every_version(
    client: httpx.AsyncClient, account: Account, settings: Settings
) -> None:
    created = await _create(client, account, "purge")
    id = created["id"]
    edited = (await _edit(client, account, id, 2, "second version")).json()
    third = (await _edit(client, account, id, 3, "third version")).json()
    keys = [created["object_key"], edited["object_key"], third["object_key"]]
    assert len(set(keys)) == 3
    storage = await open_storage(settings)
    try:
        assert all([await storage.head(key) is not None for key in keys])
        deleted = await client.delete(f"/v1/conversations/{id}?hard=true", headers=account.headers)
        assert deleted.status_code == 204
        assert [await storage.head(key) for key in keys] == [None, None, None]
    finally:
        await storage.close()


async def test_editing_the_system_turn_changes_the_system_prompt(
    client: httpx.AsyncClient, account: Account
) -> None:
    created = await _create(client, account, "system-edit")
    assert created["turns"][0]["role"] == "system"
    edited = await _edit(client, account, created["id"], 1, "You are a patient, plain-spoken CFP.")
    assert edited.status_code == 200, edited.text
    assert edited.json()["system_prompt"] == "You are a patient, plain-spoken CFP."
    doc = orjson.loads(gzip.decompress(await _document(client, account, created["id"])))
    assert doc["metadata"]["system_prompt"] == "You are a patient, plain-spoken CFP."
    assert doc["turns"][0]["content"] == "You are a patient, plain-spoken CFP."
