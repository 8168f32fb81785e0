"""Importing conversation files: validation, atomic storage, ugly content, batches."""

from __future__ import annotations

import gzip
import hashlib

import httpx
import orjson

from shared.storage import ObjectStore
from tests.support.factories import Account
from tests.support.seed_files import fixture_bytes, seed_file


async def _objects_of(objects: ObjectStore, account: Account) -> list[str]:
    return [info.key async for info in objects.list_prefix(f"conversations/{account.user.id}/")]


async def test_import_fixture(
    api: httpx.AsyncClient, account: Account, objects: ObjectStore
) -> None:
    raw = fixture_bytes("fp-anxious-investor-001.json")
    response = await api.post("/v1/conversations", content=raw, headers=account.headers)
    assert response.status_code == 201, response.text
    body = response.json()
    source = orjson.loads(raw)
    pairs = source["training_pairs"]
    assert body["conversation_id"] == "fp_anxious_investor_market_drop"
    assert body["tier"] == "template"
    assert body["status"] == "pending_review"
    assert [t["role"] for t in body["turns"]] == ["system"] + ["user", "assistant"] * len(pairs)
    assert body["turns"][1]["content"] == pairs[0]["current_user_input"]
    assert body["turns"][2]["content"] == pairs[0]["target_response"]
    assert body["turns"][1]["detected_emotion"] == "fear"
    scores = [p["training_metadata"]["quality_score"] for p in pairs]
    assert body["quality_score"] == round(sum(scores) / len(scores) * 2, 1)
    stored = await objects.get(body["object_key"])
    assert (
        body["object_key"] == f"conversations/{account.user.id}/{body['id']}/conversation.json.gz"
    )
    assert (len(stored), hashlib.sha256(stored).hexdigest()) == (body["byte_size"], body["sha256"])
    document = orjson.loads(gzip.decompress(stored))
    assert document["source_file"] == source


async def test_edge_case_tier(api: httpx.AsyncClient, account: Account) -> None:
    raw = fixture_bytes("fp-edge-crisis-002.json")
    response = await api.post("/v1/conversations", content=raw, headers=account.headers)
    assert response.status_code == 201
    assert response.json()["tier"] == "edge_case"


async def test_invalid_file_lists_every_problem_and_stores_nothing(
    api: httpx.AsyncClient, account: Account, objects: ObjectStore
) -> None:
    raw = fixture_bytes("invalid-missing-fields.json")
    response = await api.post("/v1/conversations", content=raw, headers=account.headers)
    assert response.status_code == 422
    paths = {problem["path"] for problem in response.json()["error"]["details"]}
    assert {
        "$.dataset_metadata.dataset_name",
        "$.dataset_metadata.total_turns",
        "$.training_pairs[0].turn_number",
        "$.training_pairs[0].target_response",
    } <= paths
    listed = await api.get("/v1/conversations", headers=account.headers)
    assert listed.json()["total"] == 0
    assert await _objects_of(objects, account) == []


async def test_truncated_json_names_the_position(api: httpx.AsyncClient, account: Account) -> None:
    raw = fixture_bytes("invalid-truncated.json")
    response = await api.post("/v1/conversations", content=raw, headers=account.headers)
    assert response.status_code == 422
    problem = response.json()["error"]["details"][0]
    assert problem["code"] == "json_syntax"
    assert "line 1" in problem["message"]


async def test_duplicate_is_409_and_leaves_no_object(
    api: httpx.AsyncClient, account: Account, objects: ObjectStore
) -> None:
    raw = fixture_bytes("fp-anxious-investor-001.json")
    assert (await api.post("/v1/conversations", content=raw, headers=account.headers)).is_success
    again = await api.post("/v1/conversations", content=raw, headers=account.headers)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "duplicate_conversation"
    assert len(await _objects_of(objects, account)) == 1


async def test_ugly_content_round_trips(api: httpx.AsyncClient, account: Account) -> None:
    ugly_user = 'He said "sell, sell, SELL!"\nThen:\r\n\ttabs, commas, quotes \' and emoji 😱🔥'
    ugly_assistant = "=SUM(A1)+1, " + "long turn " * 1000
    file = seed_file("ugly", pairs=2, user_text=ugly_user, assistant_text=ugly_assistant)
    response = await api.post("/v1/conversations", json=file, headers=account.headers)
    assert response.status_code == 201, response.text
    fetched = await api.get(f"/v1/conversations/{response.json()['id']}", headers=account.headers)
    turns = fetched.json()["turns"]
    assert turns[1]["content"] == ugly_user
    assert turns[2]["content"] == ugly_assistant
    assert len(ugly_assistant) >= 10_000


async def test_large_files(api: httpx.AsyncClient, account: Account) -> None:
    two_hundred = seed_file("two-hundred", pairs=200)
    response = await api.post("/v1/conversations", json=two_hundred, headers=account.headers)
    assert response.status_code == 201
    assert response.json()["turn_count"] == 401
    big_text = "x" * 45_000
    big = seed_file("nine-mib", pairs=100, user_text=big_text, assistant_text=big_text)
    raw = orjson.dumps(big)
    assert 8.5 * 1024 * 1024 < len(raw) < 10 * 1024 * 1024
    response = await api.post("/v1/conversations", content=raw, headers=account.headers)
    assert response.status_code == 201, response.text[:300]


async def test_batch_reports_each_item(
    api: httpx.AsyncClient, account: Account, objects: ObjectStore
) -> None:
    items = [
        seed_file("batch-a"),
        {"dataset_metadata": {}},
        seed_file("batch-b"),
        seed_file("batch-a"),
        "not an object",
    ]
    response = await api.post(
        "/v1/conversations/batch", json={"items": items}, headers=account.headers
    )
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["ok"] for r in results] == [True, False, True, False, False]
    assert results[1]["error"]["code"] == "validation_failed"
    assert results[3]["error"]["code"] == "duplicate_conversation"
    assert len(await _objects_of(objects, account)) == 2


async def test_batch_of_a_thousand(api: httpx.AsyncClient, account: Account) -> None:
    items = [seed_file(f"bulk-{i}", pairs=1) for i in range(1000)]
    response = await api.post(
        "/v1/conversations/batch", json={"items": items}, headers=account.headers
    )
    assert response.status_code == 200
    assert response.json()["created"] == 1000
    listed = await api.get("/v1/conversations?limit=1", headers=account.headers)
    assert listed.json()["total"] == 1000


async def test_batch_shape_errors(api: httpx.AsyncClient, account: Account) -> None:
    empty = await api.post("/v1/conversations/batch", json={"items": []}, headers=account.headers)
    assert empty.status_code == 422
    too_many = await api.post(
        "/v1/conversations/batch", json={"items": [{}] * 1001}, headers=account.headers
    )
    assert too_many.status_code == 422
