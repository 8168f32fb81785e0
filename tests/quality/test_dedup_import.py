"""Near-duplicates through the API: imports, batches, tenants, deletes, a lost Redis index."""

from __future__ import annotations

import asyncpg
import httpx
import orjson
import redis.asyncio as redis_asyncio

from shared.db.pool import acquire
from tests.quality.dedup_support import (
    detail,
    drop_index,
    import_one,
    pairs,
    paraphrase,
    seed_document,
    tenant_keys,
)
from tests.support.factories import Account, create_account
from tests.support.seed_files import fixture_bytes


async def test_a_paraphrased_copy_points_at_the_original(
    client: httpx.AsyncClient, account: Account
) -> None:
    original = await import_one(client, account, seed_document("orig", pairs(1)))
    other = await import_one(client, account, seed_document("other", pairs(2)))
    copy = await import_one(client, account, seed_document("copy", paraphrase(pairs(1), 3)))

    assert (original["duplicate_of"], other["duplicate_of"]) == (None, None)
    assert copy["duplicate_of"] == original["id"]
    assert 0.8 <= copy["duplicate_similarity"] < 1.0
    shown = await detail(client, account, copy["id"])
    assert (shown["duplicate_of"], shown["duplicate_similarity"]) == (
        original["id"],
        copy["duplicate_similarity"],
    )


async def test_the_earliest_earlier_match_wins(client: httpx.AsyncClient, account: Account) -> None:
    first = await import_one(client, account, seed_document("first", pairs(1)))
    second = await import_one(client, account, seed_document("second", paraphrase(pairs(1), 4)))
    third = await import_one(client, account, seed_document("third", paraphrase(pairs(1), 5)))
    assert second["duplicate_of"] == first["id"]
    assert third["duplicate_of"] == first["id"]


async def test_the_two_seed_fixtures_are_not_duplicates_of_each_other(
    client: httpx.AsyncClient, account: Account
) -> None:
    names = ("fp-anxious-investor-001.json", "fp-edge-crisis-002.json")
    created = []
    for name in names:
        response = await client.post(
            "/v1/conversations", content=fixture_bytes(name), headers=account.headers
        )
        assert response.status_code == 201, response.text
        created.append(response.json())
    assert [c["duplicate_of"] for c in created] == [None, None]
    # ...while a lightly edited copy of one of them is caught.
    document = orjson.loads(fixture_bytes(names[0]))
    document["dataset_metadata"]["dataset_name"] = "fp_anxious_investor_copy"
    for pair in document["training_pairs"]:
        pair["conversation_id"] = "fp_anxious_investor_copy"
        pair["target_response"] = pair["target_response"].replace(" the ", " this ", 1)
    copy = await import_one(client, account, document)
    assert copy["duplicate_of"] == created[0]["id"]


async def test_other_tenants_never_match(
    client: httpx.AsyncClient, account: Account, db: asyncpg.Pool
) -> None:
    async with acquire(db) as conn:
        neighbour = await create_account(conn)
    theirs = await import_one(client, neighbour, seed_document("same", pairs(1)))
    mine = await import_one(client, account, seed_document("same", pairs(1)))
    assert (theirs["duplicate_of"], mine["duplicate_of"]) == (None, None)
    again = await import_one(client, account, seed_document("same-2", pairs(1)))
    assert again["duplicate_of"] == mine["id"]


async def test_a_shared_system_prompt_alone_does_not_match(
    client: httpx.AsyncClient, account: Account
) -> None:
    prompt = "You are Elena Morales, a fee-only CFP who answers warmly and precisely. " * 40
    await import_one(client, account, seed_document("a", pairs(1), system_prompt=prompt))
    b = await import_one(client, account, seed_document("b", pairs(2), system_prompt=prompt))
    assert b["duplicate_of"] is None


async def test_a_batch_marks_copies_of_earlier_items_and_of_stored_ones(
    client: httpx.AsyncClient, account: Account
) -> None:
    stored = await import_one(client, account, seed_document("stored", pairs(1)))
    items = [
        seed_document("fresh", pairs(2)),
        seed_document("copy-of-stored", paraphrase(pairs(1), 6)),
        seed_document("copy-of-fresh", paraphrase(pairs(2), 7)),
        {"not": "a seed file"},
        seed_document("other", pairs(3)),
    ]
    response = await client.post(
        "/v1/conversations/batch", json={"items": items}, headers=account.headers
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["ok"] for r in results] == [True, True, True, False, True]
    shown = [await detail(client, account, r["id"]) for r in results if r["ok"]]
    assert [s["duplicate_of"] for s in shown] == [None, stored["id"], results[0]["id"], None]


async def test_a_lost_redis_index_is_rebuilt_from_postgresql(
    client: httpx.AsyncClient, account: Account, redis_client: redis_asyncio.Redis
) -> None:
    original = await import_one(client, account, seed_document("orig", pairs(1)))
    assert await tenant_keys(redis_client, account)
    await drop_index(redis_client, account)
    assert await tenant_keys(redis_client, account) == []

    copy = await import_one(client, account, seed_document("copy", paraphrase(pairs(1), 8)))

    assert copy["duplicate_of"] == original["id"]
    keys = {key.decode().rsplit(":", 1)[1] for key in await tenant_keys(redis_client, account)}
    assert "ready" in keys
    assert "lock" not in keys


async def test_bands_without_the_ready_marker_are_rebuilt_too(
    client: httpx.AsyncClient, account: Account, redis_client: redis_asyncio.Redis
) -> None:
    original = await import_one(client, account, seed_document("orig", pairs(1)))
    keys = await tenant_keys(redis_client, account)
    bands = [key for key in keys if not key.endswith(b":ready")]
    await redis_client.delete(*bands[: len(bands) // 2 + 1])  # a half-emptied index
    await redis_client.delete(*[key for key in keys if key.endswith(b":ready")])
    copy = await import_one(client, account, seed_document("copy", paraphrase(pairs(1), 9)))
    assert copy["duplicate_of"] == original["id"]


async def test_deleting_a_conversation_takes_it_out_of_the_index(
    client: httpx.AsyncClient, account: Account, redis_client: redis_asyncio.Redis
) -> None:
    soft = await import_one(client, account, seed_document("soft", pairs(1)))
    hard = await import_one(client, account, seed_document("hard", pairs(2)))
    copy = await import_one(client, account, seed_document("copy", paraphrase(pairs(1), 1)))
    assert copy["duplicate_of"] == soft["id"]

    for id, query in ((soft["id"], ""), (hard["id"], "?hard=true"), (copy["id"], "")):
        response = await client.delete(f"/v1/conversations/{id}{query}", headers=account.headers)
        assert response.status_code == 204
    members = 0
    for key in await tenant_keys(redis_client, account):
        if not key.endswith(b":ready"):
            members += await redis_client.zcard(key)
    assert members == 0

    again = await import_one(client, account, seed_document("again", paraphrase(pairs(1), 2)))
    again_hard = await import_one(client, account, seed_document("h2", paraphrase(pairs(2), 2)))
    assert (again["duplicate_of"], again_hard["duplicate_of"]) == (None, None)


async def test_deleting_the_original_unlinks_its_copies(
    client: httpx.AsyncClient, account: Account
) -> None:
    for hard in (False, True):
        seed = 10 + hard
        original = await import_one(client, account, seed_document(f"o{hard}", pairs(seed)))
        copy = await import_one(
            client, account, seed_document(f"c{hard}", paraphrase(pairs(seed), 1))
        )
        assert copy["duplicate_of"] == original["id"]
        query = "?hard=true" if hard else ""
        deleted = await client.delete(
            f"/v1/conversations/{original['id']}{query}", headers=account.headers
        )
        assert deleted.status_code == 204
        shown = await detail(client, account, copy["id"])
        assert (shown["duplicate_of"], shown["duplicate_similarity"]) == (None, None)


async def test_bulk_delete_takes_conversations_out_of_the_index(
    client: httpx.AsyncClient, account: Account
) -> None:
    original = await import_one(client, account, seed_document("orig", pairs(1)))
    response = await client.post(
        "/v1/conversations/bulk-action",
        json={"action": "delete", "ids": [original["id"]]},
        headers=account.headers,
    )
    assert response.status_code == 200
    assert response.json()["succeeded"] == 1
    copy = await import_one(client, account, seed_document("copy", paraphrase(pairs(1), 3)))
    assert copy["duplicate_of"] is None


async def test_hostile_turns_import_and_are_compared(
    client: httpx.AsyncClient, account: Account
) -> None:
    texts = [
        ("<script>alert('x')</script> 🙂🙂 " * 30, "\u202e 'quoted', \"double\"\n" * 30),
        ("🙂", "…"),
    ]
    first = await import_one(client, account, seed_document("hostile", texts))
    second = await import_one(client, account, seed_document("hostile-2", texts))
    assert first["duplicate_of"] is None
    assert second["duplicate_of"] == first["id"]
    # Assistant turns with no words at all (the import refuses truly empty ones): the user
    # side decides between two such conversations, and a normal one never matches them.
    wordless = [(user, "🙂 … !!") for user, _ in pairs(20)]
    mute = await import_one(client, account, seed_document("mute", wordless))
    mute_copy = await import_one(client, account, seed_document("mute-2", wordless))
    spoken = await import_one(client, account, seed_document("spoken", pairs(20)))
    assert (mute["duplicate_of"], mute_copy["duplicate_of"]) == (None, mute["id"])
    assert spoken["duplicate_of"] is None
