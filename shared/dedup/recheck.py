"""Near-duplicate marks after an edit changes a conversation's text (a turn edit).

The edited conversation is checked again against the conversations created before it, its
stored signature and Redis bands are replaced, and the later conversations that named it as
their original keep that mark only while they are still near copies of its new text:

    async with tenant_transaction(...) as conn:        # the edit's, row locked
        ...                                            # the new text, read under the lock
        recheck = await prepare(dedup, owner_id, conversation_id, turns)   # Redis candidates
        ...
        await recheck.apply(conn, created_at)
    await recheck.publish()                            # Redis bands, after the commit

A copy unlinked this way is not compared with every other conversation again: it lost its
original, and it is marked again only if its own text is edited or it is imported anew.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

import asyncpg

from shared.db.repositories import minhash
from shared.dedup.index import Entry
from shared.dedup.service import Check, Deduplicator, Match
from shared.dedup.signature import Signature, signature, similarities


@dataclass
class Recheck:
    """One edited conversation's new signature, its candidates, and what `apply` changed."""

    dedup: Deduplicator
    owner_id: UUID
    conversation_id: UUID
    check: Check
    match: Match | None = None
    unlinked: list[UUID] = field(default_factory=list)
    _old: list[minhash.Stored] = field(default_factory=list)
    _new: list[Entry] = field(default_factory=list)

    @property
    def signature(self) -> Signature:
        return self.check.signatures[0]

    async def apply(self, conn: asyncpg.Connection, created_at: datetime) -> None:
        """Mark, re-sign and unlink copies, in the edit's transaction."""
        await self.check.load(conn)
        self.check.only_earlier_than(created_at, self.conversation_id)
        self.match = self.check.match(0)
        await conn.execute(
            "UPDATE conversations SET duplicate_of = $2, duplicate_similarity = $3 WHERE id = $1",
            self.conversation_id,
            self.match.id if self.match else None,
            self.match.similarity if self.match else None,
        )
        self._old = await minhash.delete(conn, [self.conversation_id])
        self._new = [(self.conversation_id, self.signature, created_at)]
        await minhash.insert(conn, self.owner_id, self._new)
        await self._recheck_copies(conn)

    async def _recheck_copies(self, conn: asyncpg.Connection) -> None:
        rows = await conn.fetch(
            "SELECT id FROM conversations WHERE duplicate_of = $1 AND deleted_at IS NULL",
            self.conversation_id,
        )
        copies = await minhash.fetch(conn, [row["id"] for row in rows])
        scores = similarities(self.signature, [copy.signature for copy in copies])
        kept = [
            (copy.id, round(score, 4))
            for copy, score in zip(copies, scores, strict=True)
            if score >= self.dedup.threshold
        ]
        self.unlinked = sorted({row["id"] for row in rows} - {id for id, _ in kept})
        await conn.execute(
            "UPDATE conversations c SET duplicate_similarity = k.similarity "
            "FROM unnest($1::uuid[], $2::real[]) AS k(id, similarity) WHERE c.id = k.id",
            [id for id, _ in kept],
            [score for _, score in kept],
        )
        await conn.execute(
            "UPDATE conversations SET duplicate_of = NULL, duplicate_similarity = NULL "
            "WHERE id = ANY($1::uuid[])",
            self.unlinked,
        )

    async def publish(self) -> None:
        """Swap the old bands for the new ones (after the commit)."""
        old = [(stored.id, stored.signature, stored.created_at) for stored in self._old]
        await self.dedup.publish(self.owner_id, removed=old, added=self._new)


async def prepare(
    dedup: Deduplicator, owner_id: UUID, conversation_id: UUID, turns: Iterable[tuple[str, object]]
) -> Recheck:
    """The new text's signature and its Redis candidates (before the edit's transaction)."""
    check = await dedup.check_signatures(owner_id, [signature(turns)])
    return Recheck(dedup, owner_id, conversation_id, check)
