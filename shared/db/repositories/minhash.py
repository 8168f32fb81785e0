"""SQL for conversation_minhash: the near-duplicate signatures (inside a tenant transaction)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from shared.dedup.signature import NUM_PERM, Side, Signature

_COLUMNS = "m.conversation_id, m.user_signature, m.user_shingles, m.assistant_signature, "
_COLUMNS += "m.assistant_shingles, m.created_at"
# A row lives exactly as long as its conversation is live: written in the transaction that
# inserts the conversation (with its created_at), deleted in the one that soft-deletes it, and
# cascaded by a hard delete. So no join with conversations is needed (the rebuild reads a
# whole tenant, where a join cost a plan the planner could get badly wrong).
_LIVE = f"FROM conversation_minhash m WHERE m.num_perm = {NUM_PERM}"


@dataclass(frozen=True)
class Stored:
    """A stored signature with its conversation's id and creation time."""

    id: UUID
    signature: Signature
    created_at: datetime


def _stored(row: asyncpg.Record) -> Stored:
    user = Side.from_bytes(row["user_signature"], row["user_shingles"])
    assistant = Side.from_bytes(row["assistant_signature"], row["assistant_shingles"])
    return Stored(row["conversation_id"], Signature(user, assistant), row["created_at"])


async def insert(
    conn: asyncpg.Connection,
    owner_id: UUID,
    rows: Sequence[tuple[UUID, Signature, datetime | None]],
) -> None:
    """Store (id, signature, the conversation's created_at) rows, in one round trip."""
    if not rows:
        return
    await conn.execute(
        """INSERT INTO conversation_minhash (conversation_id, owner_id, num_perm, user_signature,
                  user_shingles, assistant_signature, assistant_shingles, created_at)
           SELECT id, $2, $3, us, un, asig, an, coalesce(at, now())
             FROM unnest($1::uuid[], $4::bytea[], $5::int[], $6::bytea[], $7::int[],
                         $8::timestamptz[]) AS t(id, us, un, asig, an, at)""",
        [row[0] for row in rows],
        owner_id,
        NUM_PERM,
        [row[1].user.to_bytes() for row in rows],
        [row[1].user.shingles for row in rows],
        [row[1].assistant.to_bytes() for row in rows],
        [row[1].assistant.shingles for row in rows],
        [row[2] for row in rows],
    )


async def fetch(conn: asyncpg.Connection, ids: Sequence[UUID]) -> list[Stored]:
    """The signatures of those ids that are live conversations of the current tenant."""
    if not ids:
        return []
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} {_LIVE} AND m.conversation_id = ANY($1::uuid[])", list(ids)
    )
    return [_stored(row) for row in rows]


async def stream(conn: asyncpg.Connection, batch: int = 1000) -> AsyncIterator[list[Stored]]:
    """Every live signature of the current tenant, in chunks (inside a transaction)."""
    chunk: list[Stored] = []
    async for row in conn.cursor(f"SELECT {_COLUMNS} {_LIVE}", prefetch=batch):
        chunk.append(_stored(row))
        if len(chunk) >= batch:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


async def delete(conn: asyncpg.Connection, ids: Sequence[UUID]) -> list[Stored]:
    """Remove signatures (a soft delete); returns what was removed, for the Redis index."""
    rows = await conn.fetch(
        f"DELETE FROM conversation_minhash m WHERE m.conversation_id = ANY($1::uuid[]) "
        f"RETURNING {_COLUMNS}",
        list(ids),
    )
    return [_stored(row) for row in rows]
