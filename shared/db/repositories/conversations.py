"""SQL for conversations, their turns and review history (always inside a tenant transaction)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from shared.models.conversation import Conversation, ConversationDraft, Review, Turn

# Columns a draft fills, in insert order (the storage columns and ids are added by insert()).
_DRAFT_COLUMNS = (
    "conversation_id", "title", "description", "persona", "emotion", "topic", "intent", "tone",
    "emotional_arc", "tier", "status", "source", "category", "tags", "quality_score",
    "quality_metrics", "is_flagged", "flag_reason", "turn_count", "total_tokens",
    "system_prompt", "starting_emotion", "starting_intensity", "ending_emotion",
    "ending_intensity", "model", "temperature", "max_tokens", "parameters", "template_id",
    "scenario_id", "edge_case_id", "parent_id", "parent_type", "generation_job_id",
    "generation_item_index", "estimated_cost_usd", "actual_cost_usd", "generation_duration_ms",
    "empathy_score", "clarity_score", "appropriateness_score", "brand_voice_score",
    "quality_source",
    "duplicate_of", "duplicate_similarity",
)  # fmt: skip
_INSERT_COLUMNS = ("id", "owner_id", *_DRAFT_COLUMNS, "object_key", "byte_size", "sha256")
_INSERT_SQL = (
    f"INSERT INTO conversations ({', '.join(_INSERT_COLUMNS)}) "
    f"VALUES ({', '.join(f'${i}' for i in range(1, len(_INSERT_COLUMNS) + 1))}) "
    "RETURNING *"
)
# One round trip for every turn: arrays unnested server-side (COPY is refused under RLS).
_INSERT_TURNS_SQL = """
INSERT INTO conversation_turns (
    conversation_id, owner_id, turn_number, role, content, token_count, char_count, word_count,
    sentence_count, detected_emotion, emotion_confidence, emotion_intensity, strategy, tone,
    metadata)
SELECT $1, $2, * FROM unnest(
    $3::int[], $4::text[], $5::text[], $6::int[], $7::int[], $8::int[], $9::int[], $10::text[],
    $11::numeric[], $12::numeric[], $13::text[], $14::text[], $15::jsonb[])
"""
_TURN_FIELDS = (
    "turn_number", "role", "content", "token_count", "char_count", "word_count",
    "sentence_count", "detected_emotion", "emotion_confidence", "emotion_intensity", "strategy",
    "tone", "metadata",
)  # fmt: skip
CONVERSATION_COLUMNS = ", ".join(Conversation.model_fields)


def to_conversation(row: asyncpg.Record) -> Conversation:
    """A row (any superset of the model's columns) as a Conversation."""
    return Conversation.model_validate({name: row[name] for name in Conversation.model_fields})


async def insert(
    conn: asyncpg.Connection,
    *,
    id: UUID,
    owner_id: UUID,
    draft: ConversationDraft,
    object_key: str,
    byte_size: int,
    sha256: str,
    action: str,
) -> Conversation:
    """Insert the row, its turns and the first review entry (caller owns the transaction)."""
    values = [_column_value(draft, name) for name in _DRAFT_COLUMNS]
    row = await conn.fetchrow(_INSERT_SQL, id, owner_id, *values, object_key, byte_size, sha256)
    assert row is not None
    if draft.turns:
        columns = [[getattr(turn, field) for turn in draft.turns] for field in _TURN_FIELDS]
        columns[1] = [str(role) for role in columns[1]]
        await conn.execute(_INSERT_TURNS_SQL, id, owner_id, *columns)
    await add_review(
        conn,
        owner_id=owner_id,
        conversation_id=id,
        action=action,
        from_status=None,
        to_status=draft.status.value,
        reviewer_id=None,
        notes=None,
    )
    return to_conversation(row)


def _column_value(draft: ConversationDraft, name: str) -> Any:
    value = getattr(draft, name)
    return value.value if hasattr(value, "value") else value


async def add_review(
    conn: asyncpg.Connection,
    *,
    owner_id: UUID,
    conversation_id: UUID,
    action: str,
    from_status: str | None,
    to_status: str,
    reviewer_id: UUID | None,
    notes: str | None,
    diff: str | None = None,
    document_version: int | None = None,
) -> None:
    """Append to the review history (an edit also carries its diff and new version)."""
    await conn.execute(
        """INSERT INTO conversation_reviews
               (conversation_id, owner_id, action, from_status, to_status, reviewer_id, notes,
                diff, document_version)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
        conversation_id,
        owner_id,
        action,
        from_status,
        to_status,
        reviewer_id,
        notes,
        diff,
        document_version,
    )


async def get(
    conn: asyncpg.Connection, id: UUID, *, include_deleted: bool = False, for_update: bool = False
) -> Conversation | None:
    """One conversation visible to the current tenant."""
    sql = f"SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE id = $1"
    if not include_deleted:
        sql += " AND deleted_at IS NULL"
    if for_update:
        sql += " FOR UPDATE"
    row = await conn.fetchrow(sql, id)
    return to_conversation(row) if row else None


async def turns(conn: asyncpg.Connection, conversation_id: UUID) -> list[Turn]:
    """A conversation's turns in order."""
    rows = await conn.fetch(
        f"SELECT {', '.join(Turn.model_fields)} FROM conversation_turns "
        "WHERE conversation_id = $1 ORDER BY turn_number",
        conversation_id,
    )
    return [Turn.model_validate(dict(row)) for row in rows]


async def reviews(conn: asyncpg.Connection, conversation_id: UUID) -> list[Review]:
    """A conversation's review history, oldest first."""
    rows = await conn.fetch(
        f"SELECT {', '.join(Review.model_fields)} FROM conversation_reviews "
        "WHERE conversation_id = $1 ORDER BY created_at, id",
        conversation_id,
    )
    return [Review.model_validate(dict(row)) for row in rows]


async def delete_row(conn: asyncpg.Connection, id: UUID) -> list[str] | None:
    """Delete the row (turns, reviews and versions cascade); returns the object keys of every
    version of its document (the current one first), None if absent."""
    earlier = await conn.fetch(
        "SELECT object_key FROM conversation_versions WHERE conversation_id = $1", id
    )
    key: str | None = await conn.fetchval(
        "DELETE FROM conversations WHERE id = $1 RETURNING object_key", id
    )
    if key is None:
        return None
    return [key, *sorted({row["object_key"] for row in earlier} - {key})]
