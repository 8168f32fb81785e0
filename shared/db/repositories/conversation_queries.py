"""Conversation list, search, counts and stats: the SQL behind GET /v1/conversations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from uuid import UUID

import asyncpg

from shared.db.repositories import score_queries
from shared.db.repositories.conversations import CONVERSATION_COLUMNS, to_conversation
from shared.models.conversation import Conversation
from shared.models.query import ConversationFilters, SortKey
from shared.models.scores import SCORE_COLUMNS


@dataclass(frozen=True)
class _SortKey:
    """How one sort field orders, pages and shows up in the cursor."""

    column: str  # non-null, with an index on (owner_id, column, id) (0001, 0007)
    value: str  # the key as the cursor carries it, in the field's own terms
    bound: str  # the cursor's value (parameter {}) in `column`'s terms


# Under the app role's forced row-level security the keyset condition `(column, id) > (...)` is
# only an index condition if its comparisons on columns are LEAKPROOF: plain columns compared
# as timestamptz, text, smallint and uuid are (numeric comparisons and coalesce() are not, hence
# the stored title_key and quality_key, 0007). Functions of the parameters alone do not matter.
SORT_KEYS: dict[str, _SortKey] = {
    "created_at": _SortKey("created_at", "created_at", "{}::timestamptz"),
    "quality_score": _SortKey(
        "quality_key", "coalesce(quality_score, -1)", "({}::numeric * 10)::smallint"
    ),
    "title": _SortKey("title_key", "title_key", "{}::text"),
    "status": _SortKey("status", "status", "{}::text"),
    # The judge's scores (0017): stored real keys, NULL as -1; float4 comparisons are leakproof.
    **{
        score: _SortKey(score_queries.sort_column(score), score_queries.sort_column(score),
                        "{}::real")
        for score in SCORE_COLUMNS
    },
}  # fmt: skip


@dataclass
class _Where:
    """WHERE clauses and their positional arguments, built up together."""

    clauses: list[str]
    args: list[Any]

    def add(self, template: str, value: Any) -> None:
        self.args.append(value)
        self.clauses.append(template.format(f"${len(self.args)}"))

    @property
    def sql(self) -> str:
        return " AND ".join(self.clauses)


def where_for(owner_id: UUID, filters: ConversationFilters) -> _Where:
    """The WHERE clause for the filters (owner scoping is explicit as well as enforced by RLS)."""
    where = _Where(["deleted_at IS NULL"], [])
    where.add("owner_id = {}", owner_id)
    # One value is a plain equality: PostgreSQL 15 can walk (owner_id, status, created_at, id)
    # in order for `status = x` but not for `status = ANY(array)`, which it must filter and sort.
    for name, chosen in (("status", filters.status), ("tier", filters.tier)):
        values = [value.value for value in chosen]
        if len(values) == 1:
            where.add(f"{name} = {{}}", values[0])
        elif values:
            where.add(f"{name} = ANY({{}}::text[])", values)
    # Under the app role's forced row-level security a condition can only be an index condition
    # if no non-LEAKPROOF function is applied to a column in it (lower() on the parameter alone
    # is fine). The stored lowercase `*_key` columns (0007) make these plain, leakproof texteq.
    for name in ("persona", "emotion", "topic"):
        value = getattr(filters, name)
        if value is not None:
            where.add(f"{name}_key = lower({{}})", value)
    if filters.quality_min is not None:
        where.add("quality_score >= {}", filters.quality_min)
    if filters.quality_max is not None:
        where.add("quality_score <= {}", filters.quality_max)
    if filters.created_from is not None:
        where.add("created_at >= {}", filters.created_from)
    if filters.created_to is not None:
        where.add("created_at <= {}", filters.created_to)
    if filters.flagged is not None:
        where.add("is_flagged = {}", filters.flagged)
    for template, value in score_queries.filter_clauses(filters):
        where.add(template, value)
    if filters.near_duplicates is not None:
        test = "IS NOT NULL" if filters.near_duplicates else "IS NULL"
        where.clauses.append(f"duplicate_of {test}")
    if filters.q:
        # Indexable (conversations_owner_search_idx) once ts_match_vq, the function of @@, is
        # LEAKPROOF: shared/db/bootstrap.py marks it when it runs as a superuser.
        where.add("search_vector @@ websearch_to_tsquery('simple', {})", filters.q)
    return where


ConversationT = TypeVar("ConversationT", bound=Conversation)


@dataclass(frozen=True)
class Page(Generic[ConversationT]):
    """One page of conversations and the key of its last row."""

    items: list[ConversationT]
    last_key: tuple[Any, UUID] | None
    has_more: bool


def list_sql(
    owner_id: UUID,
    filters: ConversationFilters,
    sort: SortKey,
    after: tuple[Any, UUID] | None,
    limit: int,
) -> tuple[str, list[Any]]:
    """The keyset-paginated SELECT (exposed for EXPLAIN tests and the benchmark baseline)."""
    key = SORT_KEYS[sort.lstrip("-")]
    descending = sort.startswith("-")
    where = where_for(owner_id, filters)
    if after is not None:
        op = "<" if descending else ">"
        where.args.extend(after)
        n = len(where.args)
        bound = key.bound.format(f"${n - 1}")
        where.clauses.append(f"({key.column}, id) {op} ({bound}, ${n}::uuid)")
    direction = "DESC" if descending else "ASC"
    where.args.append(limit + 1)
    sql = (
        f"SELECT {CONVERSATION_COLUMNS}, {key.value} AS sort_key FROM conversations "
        f"WHERE {where.sql} ORDER BY {key.column} {direction}, id {direction} "
        f"LIMIT ${len(where.args)}"
    )
    return sql, where.args


async def list_page(
    conn: asyncpg.Connection,
    owner_id: UUID,
    filters: ConversationFilters,
    sort: SortKey,
    after: tuple[Any, UUID] | None,
    limit: int,
    model: type[ConversationT],
) -> Page[ConversationT]:
    """Up to `limit` conversations after the cursor key, validated once, straight into `model`
    (the API's response class, so no second validation pass per row)."""
    await plan_per_search(conn, filters)
    sql, args = list_sql(owner_id, filters, sort, after, limit)
    rows = await conn.fetch(sql, *args)
    has_more = len(rows) > limit
    rows = rows[:limit]
    last = (rows[-1]["sort_key"], rows[-1]["id"]) if rows else None
    return Page([model.model_validate(dict(row)) for row in rows], last, has_more)


async def plan_per_search(conn: asyncpg.Connection, filters: ConversationFilters) -> None:
    """For a `q` search, plan this transaction's statements with their values.

    The best plan depends on the words: a rare one is found through the search index, a common
    one sooner by walking the sort's own index. A prepared statement's generic plan (which
    asyncpg's statement cache gets after five executions when PostgreSQL deems it no dearer)
    cannot tell them apart and was seen walking the whole tenant for a rare word.
    """
    if filters.q:
        await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")


async def count(conn: asyncpg.Connection, owner_id: UUID, filters: ConversationFilters) -> int:
    """How many conversations match the filters (call `plan_per_search` first in the
    transaction, as `list_page` does)."""
    where = where_for(owner_id, filters)
    total: int = await conn.fetchval(
        f"SELECT count(*) FROM conversations WHERE {where.sql}", *where.args
    )
    return total


UPDATABLE = (
    "title", "description", "persona", "emotion", "topic", "intent", "tone", "emotional_arc",
    "category", "tags", "is_flagged", "flag_reason",
)  # fmt: skip


async def update_fields(
    conn: asyncpg.Connection, id: UUID, changes: dict[str, Any]
) -> Conversation | None:
    """Set the given metadata columns; None when the row is not visible."""
    assignments = [f"{name} = ${i}" for i, name in enumerate(changes, start=2)]
    row = await conn.fetchrow(
        f"UPDATE conversations SET {', '.join(assignments)} "
        f"WHERE id = $1 AND deleted_at IS NULL RETURNING {CONVERSATION_COLUMNS}",
        id,
        *changes.values(),
    )
    return to_conversation(row) if row else None


async def set_status(
    conn: asyncpg.Connection, id: UUID, status: str, reviewer: UUID, notes: str | None
) -> Conversation:
    """Move to `status`, stamping the reviewer."""
    row = await conn.fetchrow(
        f"""UPDATE conversations
               SET status = $2, reviewed_by = $3, reviewed_at = now(), review_notes = $4
             WHERE id = $1 RETURNING {CONVERSATION_COLUMNS}""",
        id,
        status,
        reviewer,
        notes,
    )
    assert row is not None
    return to_conversation(row)


async def soft_delete(conn: asyncpg.Connection, id: UUID) -> bool:
    """Hide a conversation from lists and exports."""
    done = await conn.fetchval(
        "UPDATE conversations SET deleted_at = now() WHERE id = $1 AND deleted_at IS NULL "
        "RETURNING true",
        id,
    )
    return bool(done)
