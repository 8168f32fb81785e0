"""The LSH band index in Redis, shared by every replica (signatures live in PostgreSQL).

Banding is done here over datasketch signatures (datasketch's own Redis storage is sync): a
side's 128 values are cut into `b` bands of `r` rows; two conversations are candidates when any
band of either side is identical. Per tenant and per (side, band) one sorted set holds members
`<8-byte band digest><8-byte created_at, µs, big-endian><16-byte conversation id>`, all at
score 0: the conversations sharing a band are one ZRANGEBYLEX away, oldest first, and a tenant's
whole index is 2·b keys. An empty side is not indexed (every empty side would share every band).

Candidates are bounded, so a tenant full of templated look-alikes cannot make each check
quadratic: per band only the oldest `_PER_BAND` (16) members are read, and per conversation the
`MAX_CANDIDATES` (32) sharing the most bands (oldest first among equals) are verified. A real copy
shares nearly every band with its original, so the earliest original stays among them.

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
from datetime import UTC, datetime, timedelta
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
_PER_BAND = 16
# KEYS: band keys; ARGV[k]: the 32-byte members for KEYS[k], concatenated.
_ADD = """
for k = 1, #KEYS do
  local blob, args = ARGV[k], {}
  for i = 1, #blob, 32 do
    args[#args + 1] = 0
    args[#args + 1] = string.sub(blob, i, i + 31)
    if #args >= 1000 then redis.call('ZADD', KEYS[k], unpack(args)); args = {} end
  end
  if #args > 0 then redis.call('ZADD', KEYS[k], unpack(args)) end
end
return 1
"""
# KEYS: the 2·b band keys, then the ready marker. ARGV[1]: members per band; then 2·b digests
# per signature ('' for an empty side). Returns, per signature, the members of its bands (a
# member once per band it shares), or false when the index is not marked ready.
_LOOKUP = """
local bands = #KEYS - 1
if redis.call('EXISTS', KEYS[#KEYS]) == 0 then return false end
local out = {}
for s = 0, (#ARGV - 1) / bands - 1 do
  local found = {}
  for k = 1, bands do
    local digest = ARGV[1 + s * bands + k]
    if digest ~= '' then
      local high = '[' .. digest .. string.rep('\\255', 24)
      local members = redis.call('ZRANGEBYLEX', KEYS[k], '[' .. digest, high, 'LIMIT', 0, ARGV[1])
      for _, member in ipairs(members) do found[#found + 1] = member end
    end
  end
  out[#out + 1] = found
end
return out
"""
MAX_CANDIDATES = 32
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

# A conversation in the index: id, signature, created_at.
Entry = tuple[UUID, Signature, datetime]
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
        cached = signature.bands.get((b, r))
        if cached is None:
            cached = _side_digests(signature.user, b, r) + _side_digests(signature.assistant, b, r)
            signature.bands[(b, r)] = cached
        return cached

    def _members(self, owner_id: UUID, entries: Sequence[Entry]) -> dict[str, list[bytes]]:
        keys = self._band_keys(owner_id)
        members: dict[str, list[bytes]] = {key: [] for key in keys}
        for id, signature, created_at in entries:
            suffix = _stamp(created_at) + id.bytes  # 8 + 8 + 16 = the _ADD script's 32 bytes
            for key, digest in zip(keys, self.digests(signature), strict=True):
                if digest is not None:
                    members[key].append(digest + suffix)
        return members

    async def add(self, owner_id: UUID, entries: Sequence[Entry]) -> None:
        """Put conversations into their bands (idempotent)."""
        members = {
            key: values for key, values in self._members(owner_id, entries).items() if values
        }
        if not members:
            return
        # One argument per band key (its members concatenated): the client's encoding work
        # stays small however many conversations a batch or a rebuild chunk holds.
        script = self.redis.register_script(_ADD)
        await script(keys=list(members), args=[b"".join(values) for values in members.values()])

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
    ) -> list[list[UUID]]:
        """For each signature, the indexed conversations most worth verifying (see above)."""
        found = await self._lookup(owner_id, signatures)
        if found is None:
            await self.ensure_ready(owner_id, loader)
            found = await self._lookup(owner_id, signatures)
        return found or [[] for _ in signatures]

    async def _lookup(
        self, owner_id: UUID, signatures: Sequence[Signature]
    ) -> list[list[UUID]] | None:
        """One script call for every signature's bands; None when the index is not ready.

        A script is atomic, so a rebuild starting in between cannot show a marker with emptied
        bands, and one command for a whole batch keeps the client's encoding work small.
        """
        keys = [*self._band_keys(owner_id), f"{self._base(owner_id)}:ready"]
        digests = [d or b"" for signature in signatures for d in self.digests(signature)]
        if not signatures:
            return []
        # EVALSHA (the script is sent once per Redis, and again after a restart).
        script = self.redis.register_script(_LOOKUP)
        reply: Any = await script(keys=keys, args=[_PER_BAND, *digests])
        if not reply:
            return None
        return [_ranked(members) for members in reply]

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
        count, writing = 0, 0.0
        async with loader(owner_id) as chunks:
            async for chunk in chunks:
                began = time.monotonic()
                await self.add(owner_id, chunk)
                await self.redis.expire(lock, _LOCK_SECONDS)
                writing += time.monotonic() - began
                count += len(chunk)
        await self.redis.set(f"{self._base(owner_id)}:ready", "1")
        log.info(
            "dedup.index.rebuilt",
            owner_id=str(owner_id),
            conversations=count,
            seconds=round(time.monotonic() - started, 3),
            redis_seconds=round(writing, 3),
        )

    async def invalidate(self, owner_id: UUID) -> None:
        """Drop the ready marker, so the next lookup rebuilds from PostgreSQL."""
        await self.redis.delete(f"{self._base(owner_id)}:ready")


def _stamp(created_at: datetime) -> bytes:
    """created_at as 8 big-endian bytes of microseconds, so members sort oldest first."""
    return ((created_at - _EPOCH) // _MICROSECOND).to_bytes(8, "big", signed=False)


def _ranked(members: Sequence[bytes]) -> list[UUID]:
    """The members sharing the most bands, oldest first among equals, at most MAX_CANDIDATES."""
    hits: dict[bytes, int] = {}
    for member in members:
        key = member[8:]  # stamp + id: oldest first when sorted
        hits[key] = hits.get(key, 0) + 1
    best = sorted(hits, key=lambda key: (-hits[key], key))[:MAX_CANDIDATES]
    return [UUID(bytes=key[8:]) for key in best]


def _side_digests(side: Side, b: int, r: int) -> list[bytes | None]:
    if side.empty:
        return [None] * b
    raw = side.to_bytes()
    width = 4 * r
    return [
        hashlib.blake2b(raw[band * width : (band + 1) * width], digest_size=8).digest()
        for band in range(b)
    ]
