"""The LSH band index in Redis, shared by every replica (signatures live in PostgreSQL).

Banding is done here over datasketch signatures (datasketch's own Redis storage is sync): a
side's 128 values are cut into `b` bands of `r` rows; two conversations are candidates when any
band of either side is identical. Per tenant and per (side, band) one sorted set holds members
`<8-byte band digest><16-byte conversation id>`, all at score 0, so the conversations sharing a
band are one ZRANGEBYLEX away and a tenant's whole index is 2·b keys. An empty side is not
indexed (every empty side would share every band).

`<prefix>:dedup:v1:<b>x<r>:<owner>:ready` marks a complete index: without it (Redis restarted
empty, flushed, or the threshold changed, which changes the bands) the first lookup rebuilds the
tenant's index from PostgreSQL under a lock, so replicas do not all rebuild at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from uuid import UUID

from datasketch import MinHashLSH
from redis.asyncio import Redis

from shared.dedup.signature import NUM_PERM, Side, Signature
from shared.logging import get_logger

log = get_logger(__name__)
# Candidates are verified against their stored signatures, so a false positive only costs a
# comparison; a false negative is a missed duplicate. Hence the weight on recall.
_WEIGHTS = (0.1, 0.9)
_SIDES = ("u", "a")
# The rebuilder renews its lock after every chunk; a replica that died mid-rebuild loses it
# within this time and a waiting one takes over.
_LOCK_SECONDS = 30
_POLL_SECONDS = 0.05
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end"

Entry = tuple[UUID, Signature]
# Opens a tenant transaction and yields the tenant's stored signatures in chunks.
Loader = Callable[[UUID], AbstractAsyncContextManager[AsyncIterator[Sequence[Entry]]]]


@lru_cache(maxsize=8)
def bands_for(threshold: float) -> tuple[int, int]:
    """(bands, rows per band) that best separate Jaccard `threshold` with 128 permutations."""
    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM, weights=_WEIGHTS)
    return int(lsh.b), int(lsh.r)


@dataclass(frozen=True)
class BandIndex:
    """A tenant-scoped LSH index over one Redis client."""

    redis: Redis
    prefix: str
    threshold: float

    def _base(self, owner_id: UUID) -> str:
        b, r = bands_for(self.threshold)
        return f"{self.prefix}:dedup:v1:{b}x{r}:{owner_id}"

    def _band_keys(self, owner_id: UUID) -> list[str]:
        base, (b, _) = self._base(owner_id), bands_for(self.threshold)
        return [f"{base}:{side}{band}" for side in _SIDES for band in range(b)]

    def digests(self, signature: Signature) -> list[bytes | None]:
        """Per band key (same order as `_band_keys`), the band's digest; None for empty sides."""
        b, r = bands_for(self.threshold)
        out: list[bytes | None] = []
        for side in (signature.user, signature.assistant):
            out.extend(_side_digests(side, b, r))
        return out

    def _members(self, owner_id: UUID, entries: Sequence[Entry]) -> dict[str, list[bytes]]:
        keys = self._band_keys(owner_id)
        members: dict[str, list[bytes]] = {key: [] for key in keys}
        for id, signature in entries:
            for key, digest in zip(keys, self.digests(signature), strict=True):
                if digest is not None:
                    members[key].append(digest + id.bytes)
        return members

    async def add(self, owner_id: UUID, entries: Sequence[Entry]) -> None:
        """Put conversations into their bands (idempotent)."""
        members = {
            key: values for key, values in self._members(owner_id, entries).items() if values
        }
        if not members:
            return
        pipe = self.redis.pipeline(transaction=False)
        for key, values in members.items():
            pipe.zadd(key, dict.fromkeys(values, 0))
        await pipe.execute()

    async def remove(self, owner_id: UUID, entries: Sequence[Entry]) -> None:
        """Take conversations out of their bands."""
        members = {
            key: values for key, values in self._members(owner_id, entries).items() if values
        }
        if not members:
            return
        pipe = self.redis.pipeline(transaction=False)
        for key, values in members.items():
            pipe.zrem(key, *values)
        await pipe.execute()

    async def candidates(
        self, owner_id: UUID, signatures: Sequence[Signature], loader: Loader
    ) -> list[set[UUID]]:
        """For each signature, the indexed conversations sharing a band with it."""
        found = await self._lookup(owner_id, signatures)
        if found is None:
            await self.ensure_ready(owner_id, loader)
            found = await self._lookup(owner_id, signatures)
        return found or [set() for _ in signatures]

    async def _lookup(
        self, owner_id: UUID, signatures: Sequence[Signature]
    ) -> list[set[UUID]] | None:
        """One MULTI: the ready marker, then each band range; None when not ready."""
        keys = self._band_keys(owner_id)
        # Atomic, so a rebuild starting in between cannot show a marker with emptied bands.
        pipe = self.redis.pipeline(transaction=True)
        pipe.exists(f"{self._base(owner_id)}:ready")
        shape: list[int] = []
        for signature in signatures:
            asked = 0
            for key, digest in zip(keys, self.digests(signature), strict=True):
                if digest is not None:
                    pipe.zrangebylex(key, b"[" + digest, b"[" + digest + b"\xff" * 16)
                    asked += 1
            shape.append(asked)
        replies: list[Any] = await pipe.execute()
        if not replies[0]:
            return None
        out, at = [], 1
        for asked in shape:
            ids = {UUID(bytes=m[8:]) for reply in replies[at : at + asked] for m in reply}
            out.append(ids)
            at += asked
        return out

    async def ensure_ready(self, owner_id: UUID, loader: Loader) -> None:
        """Rebuild the tenant's index from PostgreSQL unless it is marked complete.

        One replica rebuilds (it holds the lock); the others wait for the marker, and take over
        if the lock lapses without one (the rebuilder died).
        """
        base = self._base(owner_id)
        while not await self.redis.exists(f"{base}:ready"):
            token = secrets.token_hex(8)
            if await self.redis.set(f"{base}:lock", token, nx=True, ex=_LOCK_SECONDS):
                try:
                    await self._rebuild(owner_id, loader, f"{base}:lock")
                finally:
                    await self.redis.eval(_RELEASE, 1, f"{base}:lock", token)  # type: ignore[misc]
                return
            await asyncio.sleep(_POLL_SECONDS)  # another replica is rebuilding

    async def _rebuild(self, owner_id: UUID, loader: Loader, lock: str) -> None:
        started = time.monotonic()
        # Cleared before the snapshot is read: a conversation committed after the snapshot
        # adds itself after its commit, so nothing committed is lost between the two.
        await self.redis.delete(*self._band_keys(owner_id))
        count = 0
        async with loader(owner_id) as chunks:
            async for chunk in chunks:
                await self.add(owner_id, chunk)
                await self.redis.expire(lock, _LOCK_SECONDS)
                count += len(chunk)
        await self.redis.set(f"{self._base(owner_id)}:ready", "1")
        log.info(
            "dedup.index.rebuilt",
            owner_id=str(owner_id),
            conversations=count,
            seconds=round(time.monotonic() - started, 3),
        )

    async def invalidate(self, owner_id: UUID) -> None:
        """Drop the ready marker, so the next lookup rebuilds from PostgreSQL."""
        await self.redis.delete(f"{self._base(owner_id)}:ready")


def _side_digests(side: Side, b: int, r: int) -> list[bytes | None]:
    if side.empty:
        return [None] * b
    raw = side.to_bytes()
    width = 4 * r
    return [
        hashlib.blake2b(raw[band * width : (band + 1) * width], digest_size=8).digest()
        for band in range(b)
    ]
