"""SQL that resolves an export's scope and reads its conversations in keyset batches.

Scopes (docs/export.md): `all` = every conversation not soft-deleted; `all_approved` = those
with status approved; `filtered` = the conversation list's filters (shared WHERE builder);
`selected` = exactly the given ids, whatever their status. Soft-deleted rows never match.
Batches are ordered by (created_at, id), the order of `conversations_owner_*_created_idx`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from shared.db.repositories.conversation_queries import where_for
from shared.models.conversation import ConversationStatus
from shared.models.export import (
    ExportConversation,
    ExportScope,
    ExportTurn,
    MessageColumns,
    RenderedConversation,
    ReviewEntry,
)
from shared.models.query import ConversationFilters
from shared.models.scores import SCORE_COLUMNS

# What every file needs (identity, order, the summary's tier and quality) and what only the
# metadata adds: a file without metadata does not pay for decoding the rest.
_ESSENTIAL_FIELDS = (
    "id, conversation_id, title, status, tier, quality_score::float8 AS quality_score, "
    "created_at, updated_at, system_prompt"
)
_METADATA_FIELDS = (
    ", persona, emotion, topic, intent, tone, category, tags, quality_metrics, is_flagged, "
    "reviewed_at, reviewed_by, parent_id, parent_type, template_id, scenario_id, edge_case_id, "
    "model, quality_source, judge_rubric_version, judge_rationale, duplicate_of"
    # real -> numeric -> float8 writes a score as stored (0.9, not 0.8999999761581421).
    + "".join(
        f", {name}::numeric::float8 AS {name}" for name in (*SCORE_COLUMNS, "duplicate_similarity")
    )
)
# Turns come aggregated, one array per column in turn order: one row per conversation instead of
# one per turn (a tenth of the rows to decode, nothing to regroup), in the same statement.
_TURN_ARRAYS = {
    "turn_number": "array_agg(t.turn_number ORDER BY t.turn_number)",
    "role": "array_agg(t.role ORDER BY t.turn_number)",
    "content": "array_agg(t.content ORDER BY t.turn_number)",
}
_ANNOTATION_ARRAYS = {
    "detected_emotion": "array_agg(t.detected_emotion ORDER BY t.turn_number)",
    "emotion_confidence": "array_agg(t.emotion_confidence::float8 ORDER BY t.turn_number)",
    "emotion_intensity": "array_agg(t.emotion_intensity::float8 ORDER BY t.turn_number)",
    "strategy": "array_agg(t.strategy ORDER BY t.turn_number)",
    "tone": "array_agg(t.tone ORDER BY t.turn_number)",
}
_REVIEWS_SQL = (
    "SELECT conversation_id, action, from_status, to_status, reviewer_id, notes, created_at "
    "FROM conversation_reviews WHERE conversation_id = ANY($1::uuid[]) "
    "ORDER BY conversation_id, created_at, id"
)

# What a conversation rendered by PostgreSQL needs: keyset order, the tally, the system prompt.
_RENDERED_FIELDS = (
    "id, conversation_id, tier, quality_score::float8 AS quality_score, created_at, system_prompt"
)
Key = tuple[datetime, UUID]
_make_turn = ExportTurn._make
_make_rendered = RenderedConversation._make
_make_columns = MessageColumns._make
# What a conversation read as column pieces needs besides them (MessageColumns' field order).
_COLUMN_FIELDS = (
    "id, conversation_id, title, status, tier, quality_score::float8 AS quality_score, "
    "created_at, system_prompt"
)


@dataclass(frozen=True)
class Scope:
    """An export's WHERE clause over conversations, with its arguments."""

    where: str
    args: tuple[Any, ...]


def scope_for(
    owner_id: UUID,
    scope: ExportScope,
    *,
    filters: ConversationFilters | None = None,
    selected_ids: list[UUID] | None = None,
    exclude_near_duplicates: bool = False,
) -> Scope:
    """The WHERE clause that selects an export's conversations."""
    if scope is ExportScope.FILTERED:
        base = filters or ConversationFilters()
    elif scope is ExportScope.ALL_APPROVED:
        base = ConversationFilters(status=[ConversationStatus.APPROVED])
    else:
        base = ConversationFilters()
    where = where_for(owner_id, base)
    if scope is ExportScope.SELECTED:
        where.add("id = ANY({}::uuid[])", list(selected_ids or []))
    if exclude_near_duplicates:
        where.clauses.append("duplicate_of IS NULL")
    return Scope(where.sql, tuple(where.args))


async def count(conn: asyncpg.Connection, scope: Scope) -> int:
    """How many conversations the scope matches now (in the caller's snapshot)."""
    total: int = await conn.fetchval(
        f"SELECT count(*) FROM conversations WHERE {scope.where}", *scope.args
    )
    return total


async def any_match(conn: asyncpg.Connection, scope: Scope) -> bool:
    """Whether the scope matches at least one conversation now."""
    found: bool = await conn.fetchval(
        f"SELECT EXISTS (SELECT 1 FROM conversations WHERE {scope.where})", *scope.args
    )
    return found


async def missing_ids(conn: asyncpg.Connection, ids: list[UUID]) -> list[UUID]:
    """The ids that are not a visible, undeleted conversation of the current tenant."""
    rows = await conn.fetch(
        """SELECT wanted FROM unnest($1::uuid[]) AS wanted
            WHERE NOT EXISTS (SELECT 1 FROM conversations c
                               WHERE c.id = wanted AND c.deleted_at IS NULL)""",
        ids,
    )
    return [row["wanted"] for row in rows]


def _page_sql(scope: Scope, after: Key | None, fields: str) -> str:
    """One keyset page of the scope's conversations (the LIMIT is the last argument)."""
    where = scope.where
    if after is not None:
        n = len(scope.args)
        where += f" AND (created_at, id) > (${n + 1}::timestamptz, ${n + 2}::uuid)"
    limit_arg = len(scope.args) + (3 if after is not None else 1)
    return (
        f"SELECT {fields} FROM conversations WHERE {where} "
        f"ORDER BY created_at, id LIMIT ${limit_arg}"
    )


def _batch_sql(
    scope: Scope, after: Key | None, limit: int, *, metadata: bool, annotations: bool
) -> str:
    fields = _ESSENTIAL_FIELDS + (_METADATA_FIELDS if metadata else "")
    arrays = _TURN_ARRAYS | (_ANNOTATION_ARRAYS if annotations else {})
    turns = ", ".join(f"{sql} AS turn_{name}" for name, sql in arrays.items())
    return (
        f"SELECT c.*, {', '.join(f'tt.turn_{n}' for n in arrays)} "
        f"FROM ({_page_sql(scope, after, fields)}) AS c "
        f"CROSS JOIN LATERAL (SELECT {turns} FROM conversation_turns t "
        f"WHERE t.conversation_id = c.id) AS tt ORDER BY c.created_at, c.id"
    )


async def batch(
    conn: asyncpg.Connection,
    scope: Scope,
    *,
    after: Key | None,
    limit: int,
    metadata: bool = True,
    annotations: bool = False,
    reviews: bool = False,
) -> list[ExportConversation]:
    """Up to `limit` conversations after the key, each with its turns (and reviews).

    Without `metadata` only the columns every format prints are read; the other fields keep
    their model defaults.
    """
    args = [*scope.args, *(after or ()), limit]
    sql = _batch_sql(scope, after, limit, metadata=metadata, annotations=annotations)
    rows = await conn.fetch(sql, *args)
    history = await _reviews(conn, [row["id"] for row in rows]) if reviews and rows else {}
    return [_conversation(row, annotations, history.get(row["id"], ())) for row in rows]


async def rendered_batch(
    conn: asyncpg.Connection, scope: Scope, *, after: Key | None, limit: int, render_sql: str
) -> list[RenderedConversation]:
    """Up to `limit` conversations after the key, rendered by PostgreSQL.

    `render_sql` is a SELECT over `conversation_turns t WHERE t.conversation_id = c.id` (`c`
    has the columns of `_RENDERED_FIELDS`) returning one row: `turn_count` and `data` (bytea,
    NULL when the conversation cannot be rendered); the format module that owns it proves it
    byte-identical to its Python renderer.
    """
    sql = (
        f"SELECT c.id, c.conversation_id, c.tier, c.quality_score, c.created_at, r.turn_count, "
        f"r.data, r.failure, r.needs_check "
        f"FROM ({_page_sql(scope, after, _RENDERED_FIELDS)}) AS c "
        f"CROSS JOIN LATERAL ({render_sql}) AS r ORDER BY c.created_at, c.id"
    )
    rows = await conn.fetch(sql, *scope.args, *(after or ()), limit)
    return list(map(_make_rendered, rows))


async def column_batch(
    conn: asyncpg.Connection, scope: Scope, *, after: Key | None, limit: int, columns_sql: str
) -> list[MessageColumns]:
    """Up to `limit` conversations after the key, their turns read as column pieces.

    `columns_sql` is a SELECT over `conversation_turns t WHERE t.conversation_id = c.id`
    returning one row: `turn_count`, `trainable`, `roles`, `contents` and `lengths` (see
    `MessageColumns`); the format module that owns it proves the file it makes identical to
    its Python renderer's.
    """
    sql = (
        f"SELECT c.id, c.conversation_id, c.title, c.status, c.tier, c.quality_score, "
        f"c.created_at, r.turn_count, r.trainable, r.roles, r.contents, r.lengths "
        f"FROM ({_page_sql(scope, after, _COLUMN_FIELDS)}) AS c "
        f"CROSS JOIN LATERAL ({columns_sql}) AS r ORDER BY c.created_at, c.id"
    )
    rows = await conn.fetch(sql, *scope.args, *(after or ()), limit)
    return list(map(_make_columns, rows))


def _conversation(row: asyncpg.Record, annotations: bool, reviews: Any) -> ExportConversation:
    values = dict(row)
    columns = [values.pop(f"turn_{name}") or () for name in _TURN_ARRAYS]
    if annotations:
        columns += [values.pop(f"turn_{name}") or () for name in _ANNOTATION_ARRAYS]
    else:
        columns += [[None] * len(columns[0])] * len(_ANNOTATION_ARRAYS)
    # The hot path of every export: the turn arrays zipped straight into typed tuples (the
    # column order of _TURN_ARRAYS + _ANNOTATION_ARRAYS is ExportTurn's field order).
    values["turns"] = list(map(_make_turn, zip(*columns, strict=True)))
    values["reviews"] = [ReviewEntry(**entry) for entry in reviews]
    return ExportConversation(**values)


def last_key(
    conversations: list[ExportConversation] | list[RenderedConversation] | list[MessageColumns],
) -> Key:
    """The keyset position after a batch."""
    last = conversations[-1]
    return last.created_at, last.id


async def _reviews(conn: asyncpg.Connection, ids: list[UUID]) -> dict[UUID, list[dict[str, Any]]]:
    grouped: dict[UUID, list[dict[str, Any]]] = {}
    for row in await conn.fetch(_REVIEWS_SQL, ids):
        entry = dict(row)
        grouped.setdefault(entry.pop("conversation_id"), []).append(entry)
    return grouped


_STRATA = {"tier": "tier", "status": "status", None: "''"}


async def split_thresholds(
    conn: asyncpg.Connection, scope: Scope, *, fraction: float, seed: int, stratify: str | None
) -> dict[str, str]:
    """Per stratum, the largest `split_hash` that goes to validation (its share, rounded).

    A conversation is in validation when its hash is at most its stratum's threshold; a
    stratum too small for one validation row has none. Same snapshot, same seed: same split.
    """
    stratum = _STRATA[stratify]
    n = len(scope.args)
    rows = await conn.fetch(
        f"""SELECT s, h FROM (
                SELECT {stratum} AS s, md5(${n + 1}::text || ':' || id::text) AS h,
                       row_number() OVER (PARTITION BY {stratum}
                                          ORDER BY md5(${n + 1}::text || ':' || id::text)) AS r,
                       count(*) OVER (PARTITION BY {stratum}) AS total
                  FROM conversations WHERE {scope.where}) AS ranked
             WHERE r = round(total * ${n + 2}::float8)""",
        *scope.args,
        str(seed),
        fraction,
    )
    return {row["s"]: row["h"] for row in rows}
