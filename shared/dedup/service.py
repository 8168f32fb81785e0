"""Near-duplicate check of conversations as they land, and their removal from the index.

A landing (API import, batch import, generated conversation) goes:

    check = await dedup.check(owner_id, drafts)   # signatures + Redis candidates, before writing
    async with tenant_transaction(...) as conn:
        await check.load(conn)                    # candidates' stored signatures
        for i, draft in enumerate(drafts):
            row = insert(check.mark(i, draft))    # duplicate_of / duplicate_similarity set
            check.accept(i, row.id, row.created_at)
        await check.save(conn)                    # conversation_minhash rows
    await check.publish()                         # Redis bands, after the commit

A conversation is a near-duplicate of the earliest earlier conversation (of the same tenant)
whose similarity (`signature.similarity`: both user and assistant sides) is at least
DEDUP_THRESHOLD. Earlier items of the same batch count, in batch order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

import asyncpg
import redis.exceptions
from redis.asyncio import Redis

from shared.db.pool import tenant_transaction
from shared.db.repositories import minhash
from shared.dedup.index import MAX_CANDIDATES, BandIndex, Entry
from shared.dedup.signature import Signature, signature, similarities
from shared.logging import get_logger
from shared.models.conversation import ConversationDraft
from shared.settings import Settings

log = get_logger(__name__)


@dataclass(frozen=True)
class Match:
    """The earlier conversation a new one nearly copies."""

    id: UUID
    similarity: float


def draft_signature(draft: ConversationDraft) -> Signature:
    """The signature of a draft's user and assistant turns."""
    return signature((turn.role, turn.content) for turn in draft.turns)


class Deduplicator:
    """The near-duplicate index of every tenant: signatures in PostgreSQL, bands in Redis."""

    def __init__(self, pool: asyncpg.Pool, redis: Redis, settings: Settings) -> None:
        self.pool = pool
        self.threshold = settings.dedup_threshold
        self.index = BandIndex(redis, settings.queue_prefix, settings.dedup_threshold)

    async def check(self, owner_id: UUID, drafts: Sequence[ConversationDraft]) -> Check:
        """Signatures and their Redis candidates (rebuilding a missing index first)."""
        return await self.check_signatures(owner_id, [draft_signature(d) for d in drafts])

    async def check_signatures(self, owner_id: UUID, signatures: list[Signature]) -> Check:
        """`check` for signatures already computed (an edited conversation's new text)."""
        candidates = await self.index.candidates(owner_id, signatures, self._stored)
        return Check(self, owner_id, signatures, candidates)

    @asynccontextmanager
    async def _stored(self, owner_id: UUID) -> AsyncIterator[AsyncIterator[Sequence[Entry]]]:
        async with tenant_transaction(self.pool, owner_id) as conn:
            yield _entries(minhash.stream(conn))

    async def publish(
        self, owner_id: UUID, *, removed: Sequence[Entry], added: Sequence[Entry]
    ) -> None:
        """After a commit: take entries out of the bands and put entries in. When Redis fails,
        the ready marker is dropped (when it can be) so the next landing rebuilds from
        PostgreSQL, which already has the rows."""
        try:
            await self.index.remove(owner_id, removed)
            await self.index.add(owner_id, added)
        except redis.exceptions.RedisError as exc:
            log.warning("dedup.index.update_failed", error=str(exc), count=len(added))
            try:
                await self.index.invalidate(owner_id)
            except redis.exceptions.RedisError:
                log.warning("dedup.index.invalidate_failed")

    async def forget(self, owner_id: UUID, removed: Sequence[minhash.Stored]) -> None:
        """Take deleted conversations out of the Redis bands (their rows are already gone)."""
        entries = [(stored.id, stored.signature, stored.created_at) for stored in removed]
        try:
            await self.index.remove(owner_id, entries)
        except redis.exceptions.RedisError as exc:
            # Harmless: candidates are checked against PostgreSQL, where the rows are gone.
            log.warning("dedup.index.remove_failed", error=str(exc), count=len(entries))


async def _entries(chunks: AsyncIterator[list[minhash.Stored]]) -> AsyncIterator[list[Entry]]:
    async for chunk in chunks:
        yield [(stored.id, stored.signature, stored.created_at) for stored in chunk]


async def detach(conn: asyncpg.Connection, ids: Sequence[UUID]) -> list[minhash.Stored]:
    """Before deleting conversations: drop their signatures and unlink their copies."""
    await conn.execute(
        "UPDATE conversations SET duplicate_of = NULL, duplicate_similarity = NULL "
        "WHERE duplicate_of = ANY($1::uuid[])",
        list(ids),
    )
    return await minhash.delete(conn, ids)


@dataclass
class Check:
    """One landing's near-duplicate decisions (see the module docstring for the order)."""

    dedup: Deduplicator
    owner_id: UUID
    signatures: list[Signature]
    candidates: list[list[UUID]]
    _known: dict[UUID, minhash.Stored] = field(default_factory=dict)
    _accepted: dict[int, tuple[UUID, datetime]] = field(default_factory=dict)
    _local: dict[tuple[int, bytes], list[int]] = field(default_factory=dict)

    async def load(self, conn: asyncpg.Connection) -> None:
        """Fetch the candidates' stored signatures (live conversations only)."""
        wanted = {id for ids in self.candidates for id in ids}
        self._known = {stored.id: stored for stored in await minhash.fetch(conn, list(wanted))}

    def only_earlier_than(self, created_at: datetime, itself: UUID) -> None:
        """Compare with conversations created before `created_at` only, never `itself` (a
        recheck of an edited conversation, whose old text is still indexed)."""
        self._known = {
            id: stored
            for id, stored in self._known.items()
            if id != itself and stored.created_at < created_at
        }

    def match(self, index: int) -> Match | None:
        """The earliest earlier conversation this one nearly copies, if any."""
        mine = self.signatures[index]
        stored = [self._known[id] for id in self.candidates[index] if id in self._known]
        local = self._local_candidates(index)
        others = [s.signature for s in stored] + [self.signatures[i] for i in local]
        scores = similarities(mine, others)
        found: list[tuple[datetime | None, int, UUID, float]] = [
            (s.created_at, 0, s.id, score)
            for s, score in zip(stored, scores[: len(stored)], strict=True)
        ]
        found += [
            (None, i, self._accepted[i][0], score)
            for i, score in zip(local, scores[len(stored) :], strict=True)
        ]
        hits = [hit for hit in found if hit[3] >= self.dedup.threshold]
        if not hits:
            return None
        # Committed conversations (created_at known) are earlier than any of this batch.
        first = min(hits, key=lambda hit: (hit[0] is None, hit[0] or datetime.min, hit[1], hit[2]))
        return Match(first[2], round(first[3], 4))

    def mark(self, index: int, draft: ConversationDraft) -> ConversationDraft:
        """The draft with its duplicate_of / duplicate_similarity."""
        found = self.match(index)
        if found is None:
            return draft
        return draft.model_copy(
            update={"duplicate_of": found.id, "duplicate_similarity": found.similarity}
        )

    def accept(self, index: int, conversation_id: UUID, created_at: datetime) -> None:
        """The item's row is inserted: later items of the batch are compared with it."""
        self._accepted[index] = (conversation_id, created_at)
        for band, digest in enumerate(self.dedup.index.digests(self.signatures[index])):
            if digest is not None:
                self._local.setdefault((band, digest), []).append(index)

    def _local_candidates(self, index: int) -> list[int]:
        """Earlier accepted items of this batch sharing a band, as bounded as Redis's."""
        hits: dict[int, int] = {}
        for band, digest in enumerate(self.dedup.index.digests(self.signatures[index])):
            if digest is not None:
                for earlier in self._local.get((band, digest), ()):
                    hits[earlier] = hits.get(earlier, 0) + 1
        return sorted(hits, key=lambda earlier: (-hits[earlier], earlier))[:MAX_CANDIDATES]

    def entries(self) -> list[Entry]:
        """(conversation id, signature, created_at) of every accepted item."""
        return [(id, self.signatures[i], at) for i, (id, at) in self._accepted.items()]

    async def save(self, conn: asyncpg.Connection) -> None:
        """Store the accepted items' signatures (in the landing's transaction)."""
        await minhash.insert(conn, self.owner_id, self.entries())

    async def publish(self) -> None:
        """Add the committed items to the Redis bands."""
        await self.dedup.publish(self.owner_id, removed=[], added=self.entries())
