"""The Redis band index on its own: one rebuild at a time, lookups after it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import redis.asyncio as redis_asyncio

from shared.dedup.index import MAX_CANDIDATES, BandIndex, Entry, bands_for
from shared.dedup.signature import signature
from tests.quality.dedup_support import pairs, paraphrase


def _signed(seed: int, copy_of: int | None = None) -> Entry:
    texts = pairs(seed) if copy_of is None else paraphrase(pairs(copy_of), seed)
    turns = [
        turn for user, assistant in texts for turn in (("user", user), ("assistant", assistant))
    ]
    return uuid.uuid4(), signature(turns), datetime.now(UTC)


async def test_replicas_rebuild_a_missing_index_once(redis_url: str) -> None:
    owner = uuid.uuid4()
    stored = [_signed(seed) for seed in range(1, 6)]
    calls = 0

    @asynccontextmanager
    async def loader(owner_id: uuid.UUID) -> AsyncIterator[AsyncIterator[Sequence[Entry]]]:
        nonlocal calls
        calls += 1

        async def chunks() -> AsyncIterator[Sequence[Entry]]:
            await asyncio.sleep(0.3)  # a slow PostgreSQL read: the others must wait for it
            yield stored

        yield chunks()

    clients = [redis_asyncio.Redis.from_url(redis_url) for _ in range(3)]
    try:
        replicas = [BandIndex(client, f"t-{owner.hex[:8]}", 0.8) for client in clients]
        copy = _signed(99, copy_of=3)[1]
        found = await asyncio.gather(
            *(replica.candidates(owner, [copy], loader) for replica in replicas)
        )
    finally:
        for client in clients:
            await client.aclose()
    assert calls == 1
    assert all(stored[2][0] in each[0] for each in found)


async def test_candidates_stay_bounded_and_keep_the_oldest_look_alike(redis_url: str) -> None:
    owner = uuid.uuid4()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    family = [
        (uuid.uuid4(), _signed(seed, copy_of=1)[1], start + timedelta(seconds=seed))
        for seed in range(100, 0, -1)  # added newest first: the order must not matter
    ]
    client = redis_asyncio.Redis.from_url(redis_url)
    try:
        index = BandIndex(client, f"t-{owner.hex[:8]}", 0.8)
        await index.add(owner, family)
        await client.set(
            f"t-{owner.hex[:8]}:dedup:v1:{'x'.join(map(str, bands_for(0.8)))}:{owner}:ready", "1"
        )
        [found] = await index.candidates(owner, [_signed(500, copy_of=1)[1]], _no_loader)
    finally:
        await client.aclose()
    oldest = min(family, key=lambda entry: entry[2])[0]
    assert 0 < len(found) <= MAX_CANDIDATES
    assert oldest in found


@asynccontextmanager
async def _no_loader(owner_id: uuid.UUID) -> AsyncIterator[AsyncIterator[Sequence[Entry]]]:
    raise AssertionError("the index was marked ready; no rebuild expected")
    yield  # pragma: no cover
