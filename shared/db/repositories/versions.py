"""SQL for the versions of a conversation's stored document (0015) and the edit's row update."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from shared.db.repositories.conversations import CONVERSATION_COLUMNS, to_conversation
from shared.models.conversation import Conversation, ConversationVersion

_COLUMNS = ", ".join(ConversationVersion.model_fields)
# Judge scores describe the text they judged: an edit clears them until the judge runs again.
_JUDGED = (
    "coherence_score", "relevance_score", "completeness_score", "quality_overall",
    "empathy_score", "clarity_score", "appropriateness_score", "brand_voice_score",
    "judge_rationale", "judge_rubric_version", "judge_model", "judge_error", "judged_at",
)  # fmt: skip


async def listed(conn: asyncpg.Connection, conversation_id: UUID) -> list[ConversationVersion]:
    """The recorded versions, oldest first (none until the first edit)."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM conversation_versions WHERE conversation_id = $1 ORDER BY version",
        conversation_id,
    )
    return [ConversationVersion.model_validate(dict(row)) for row in rows]


async def get(
    conn: asyncpg.Connection, conversation_id: UUID, version: int
) -> ConversationVersion | None:
    """One recorded version."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM conversation_versions WHERE conversation_id = $1 AND version = $2",
        conversation_id,
        version,
    )
    return ConversationVersion.model_validate(dict(row)) if row else None


async def record_current(conn: asyncpg.Connection, current: Conversation) -> None:
    """Record the row's current document as its version (a no-op once it is recorded)."""
    await conn.execute(
        """INSERT INTO conversation_versions
               (conversation_id, owner_id, version, object_key, byte_size, sha256, turn_count,
                total_tokens, created_by, change_summary, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9, $10)
           ON CONFLICT (conversation_id, version) DO NOTHING""",
        current.id, current.owner_id, current.document_version, current.object_key,
        current.byte_size, current.sha256, current.turn_count, current.total_tokens,
        f"original ({current.source.value})", current.created_at,
    )  # fmt: skip


async def insert(
    conn: asyncpg.Connection, current: Conversation, version: ConversationVersion
) -> None:
    """Add a new version row (the unique (conversation, version) key refuses a duplicate)."""
    await conn.execute(
        """INSERT INTO conversation_versions
               (conversation_id, owner_id, version, object_key, byte_size, sha256, turn_count,
                total_tokens, created_by, change_summary, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)""",
        current.id, current.owner_id, version.version, version.object_key, version.byte_size,
        version.sha256, version.turn_count, version.total_tokens, version.created_by,
        version.change_summary, version.created_at,
    )  # fmt: skip


async def update_turn(
    conn: asyncpg.Connection, conversation_id: UUID, turn_number: int, fields: dict[str, Any]
) -> None:
    """Set an edited turn's content and text statistics."""
    assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(fields, start=3))
    await conn.execute(
        f"UPDATE conversation_turns SET {assignments} "
        "WHERE conversation_id = $1 AND turn_number = $2",
        conversation_id,
        turn_number,
        *fields.values(),
    )


async def point_at(
    conn: asyncpg.Connection, conversation_id: UUID, version: ConversationVersion,
    changes: dict[str, Any],
) -> Conversation:  # fmt: skip
    """Make `version` the row's current document; `changes` are further columns (score,
    status); judge scores are cleared."""
    fields: dict[str, Any] = {
        "document_version": version.version, "object_key": version.object_key,
        "byte_size": version.byte_size, "sha256": version.sha256,
        "turn_count": version.turn_count, "total_tokens": version.total_tokens, **changes,
    }  # fmt: skip
    assignments = [f"{name} = ${i}" for i, name in enumerate(fields, start=2)]
    assignments += [f"{name} = NULL" for name in _JUDGED]
    row = await conn.fetchrow(
        f"UPDATE conversations SET {', '.join(assignments)} WHERE id = $1 "
        f"RETURNING {CONVERSATION_COLUMNS}",
        conversation_id,
        *fields.values(),
    )
    assert row is not None
    return to_conversation(row)
