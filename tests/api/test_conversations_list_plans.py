"""The list's filters and `q` use their indexes as the app role, under forced row-level security.

PostgreSQL only turns a condition into an index condition below the tenant policy when no
non-LEAKPROOF function is applied to a column in it: `lower(persona) = ...` or `@@` with a stock
ts_match_vq are evaluated row by row whatever indexes exist. These tests plan the real list and
count queries (`list_sql`, `where_for`) against 22,000 rows, with the planner's own statistics
(no enable_seqscan = off), both as custom plans (parameters folded in) and as the generic plans a
prepared statement switches to after five executions. The rows, the statistics and the tenant
setting live in one transaction that is rolled back at the end of the module.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from shared.db.bootstrap import search_is_indexable
from shared.db.pool import acquire, set_tenant
from shared.db.repositories import conversation_queries as queries
from shared.db.repositories.conversation_queries import list_sql, where_for
from shared.models.conversation import Conversation
from shared.models.query import ConversationFilters, SortKey

ROWS = 20_000
# 20 personas, 12 emotions, 15 topics in mixed case; "zebra" in 1 title of 1,000 (a rare word is
# what the search index is for: a common one is found sooner by walking the sort's own index).
_SEED = """
INSERT INTO conversations (owner_id, conversation_id, title, persona, emotion, topic, tier,
                           status, quality_score, object_key, byte_size, sha256, created_at,
                           coherence_score, quality_overall, brand_voice_score)
SELECT $1::uuid, 'plan-' || g,
       (ARRAY['Anxious', 'Calm', 'Hopeful', 'Angry'])[1 + g % 4] || ' '
           || CASE WHEN g % 1000 = 0 THEN 'zebra keeper' ELSE 'saver' END,
       'Persona ' || g % 20, 'Emotion ' || g % 12, 'Topic ' || g % 15,
       'template', 'pending_review', (g % 100) / 10.0, 'plans/' || g, 1, repeat('0', 64),
       now() - g * interval '1 minute',
       CASE WHEN g % 3 > 0 THEN (g % 101) / 100.0 END, CASE WHEN g % 3 > 0 THEN (g % 97) / 96.0 END,
       CASE WHEN g % 2 = 0 THEN 1 + g % 5 END
  FROM generate_series(1, $2) g
"""


@pytest.fixture(scope="module")
async def planner(pool: asyncpg.Pool) -> AsyncIterator[tuple[asyncpg.Connection, uuid.UUID]]:
    """An app-role connection inside a transaction holding 20,000 rows of one tenant (and 2,000
    of another), analyzed, with the first tenant set; rolled back afterwards."""
    async with acquire(pool) as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            owner, other = uuid.uuid4(), uuid.uuid4()
            for user in (owner, other):
                await conn.execute(
                    "INSERT INTO users (id, email) VALUES ($1, $2)", user, f"{user}@example.com"
                )
            await set_tenant(conn, other)
            await conn.execute(_SEED, other, ROWS // 10)
            await set_tenant(conn, owner)
            await conn.execute(_SEED, owner, ROWS)
            await conn.execute("ANALYZE conversations")
            yield conn, owner
        finally:
            await transaction.rollback()


CASES = [
    pytest.param({"persona": "PERSONA 7"}, "-created_at",
                 "conversations_owner_persona_idx", "persona_key", id="persona"),
    pytest.param({"emotion": "emotion 3", "quality_min": 5}, "created_at",
                 "conversations_owner_emotion_idx", "emotion_key", id="emotion+quality"),
    pytest.param({"topic": "Topic 4"}, "-created_at",
                 "conversations_owner_topic_idx", "topic_key", id="topic"),
    pytest.param({"q": "zebra"}, "-created_at",
                 "conversations_owner_search_idx", "search_vector @@", id="q"),
    pytest.param({"q": "zebra keeper", "status": ["pending_review"]}, "-created_at",
                 "conversations_owner_search_idx", "search_vector @@", id="q+status"),
    pytest.param({"quality_overall_max": 0.1}, "-quality_overall",
                 "conversations_owner_quality_overall_sort_idx", "quality_overall_key <=",
                 id="judge-max+sort"),
    pytest.param({"coherence_score_min": 0.95}, "coherence_score",
                 "conversations_owner_coherence_sort_idx", "coherence_key >=",
                 id="coherence-min+sort"),
]  # fmt: skip


def _literal(value: Any) -> str:
    """A SQL literal for the few argument types these queries take."""
    if isinstance(value, list):
        return "ARRAY[" + ", ".join(_literal(item) for item in value) + "]::text[]"
    if isinstance(value, int | float | Decimal):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


async def _plan(conn: asyncpg.Connection, mode: str, sql: str, args: list[Any]) -> str:
    """EXPLAIN of the statement as a prepared statement runs it. (EXPLAIN of a statement with
    bound parameters always plans with their values; EXPLAIN EXECUTE follows plan_cache_mode.)"""
    await conn.execute(f"SET LOCAL plan_cache_mode = {mode}")
    await conn.execute(f"PREPARE planned AS {sql}")
    try:
        values = ", ".join(_literal(arg) for arg in args)
        rows = await conn.fetch(f"EXPLAIN EXECUTE planned({values})")
    finally:
        await conn.execute("DEALLOCATE planned")
    return "\n".join(row[0] for row in rows)


def _assert_uses(plan: str, index: str, condition: str, generic: bool) -> None:
    assert "Seq Scan" not in plan, plan
    lines = plan.splitlines()
    scans = [
        i for i, line in enumerate(lines) if f" on {index}" in line or f"using {index}" in line
    ]
    assert scans, f"{index} not used:\n{plan}"
    # The filter is an index condition of that scan (not a Filter applied to what it returns).
    following = lines[scans[0] + 1 : scans[0] + 3]
    conds = [line for line in following if "Index Cond:" in line and condition in line]
    assert conds, f"{condition} is not an index condition of {index}:\n{plan}"
    if generic:
        assert "$" in conds[0], f"expected a generic plan (parameters, not constants):\n{plan}"


def _assert_bounded_count(plan: str) -> None:
    """A count under an open score bound, planned without its value: PostgreSQL assumes a third
    of the rows match, and for a third, reading the tenant's rows through an owner index and
    filtering is as good a plan as the score's own index (CI's planner statistics picked either).
    The page is what the score index must serve; the count must still stay within the tenant."""
    assert "Seq Scan" not in plan, plan
    assert "Index Cond: (owner_id = $1)" in plan or "Index Cond: ((owner_id = $1)" in plan, plan


# A search is always planned with its words (plan_per_search): a generic plan cannot know whether
# the search index or the sort's own index finds a page sooner, and was seen choosing the latter
# for a rare word. So searches are checked as custom plans only; the other filters as both.
PLAN_CASES = [
    pytest.param(*case.values, mode, id=f"{case.id}-{mode}")
    for case in CASES
    for mode in ("auto", "force_generic_plan")
    if mode == "auto" or case.values[2] != "conversations_owner_search_idx"
]


@pytest.mark.parametrize(("filters", "sort", "index", "condition", "mode"), PLAN_CASES)
async def test_filter_is_an_index_condition_of_its_index(
    planner: tuple[asyncpg.Connection, uuid.UUID],
    mode: str,
    filters: dict[str, Any],
    sort: SortKey,
    index: str,
    condition: str,
) -> None:
    conn, owner = planner
    parsed = ConversationFilters.model_validate(filters)
    generic = mode == "force_generic_plan"
    where = where_for(owner, parsed)
    count_plan = await _plan(
        conn, mode, f"SELECT count(*) FROM conversations WHERE {where.sql}", where.args
    )
    if generic and condition.endswith((">=", "<=")):
        _assert_bounded_count(count_plan)
    else:
        _assert_uses(count_plan, index, condition, generic)
    page_plan = await _plan(conn, mode, *list_sql(owner, parsed, sort, None, 25))
    _assert_uses(page_plan, index, condition, generic)


async def test_search_statements_are_never_planned_generically(
    planner: tuple[asyncpg.Connection, uuid.UUID],
) -> None:
    """Past the five executions after which PostgreSQL may switch a prepared statement to its
    generic plan, every execution of the list's search statement is still custom-planned."""
    conn, owner = planner
    await conn.execute("SAVEPOINT per_search")
    try:
        for word in ("zebra", "keeper", "saver", "calm", "angry", "hopeful", "anxious", "zebra"):
            filters = ConversationFilters(q=word)
            await queries.list_page(conn, owner, filters, "-created_at", None, 25, Conversation)
            await queries.count(conn, owner, filters)
        mode = await conn.fetchval("SELECT current_setting('plan_cache_mode')")
        plans = await conn.fetch(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
            "WHERE statement LIKE '%search_vector @@%' "
            "AND statement NOT LIKE '%pg_prepared_statements%'"
        )
    finally:
        await conn.execute("ROLLBACK TO SAVEPOINT per_search")
    assert mode == "force_custom_plan"
    assert len(plans) == 2  # the page and the count
    assert all(row["generic_plans"] == 0 and row["custom_plans"] >= 8 for row in plans), plans


@pytest.mark.parametrize("mode", ["auto", "force_generic_plan"])
@pytest.mark.parametrize(
    ("sort", "after", "index"),
    [
        ("-created_at", datetime.now(UTC) - timedelta(days=7), "conversations_owner_created_idx"),
        ("created_at", datetime.now(UTC) - timedelta(days=7), "conversations_owner_created_idx"),
        ("-quality_score", Decimal("5.0"), "conversations_owner_quality_sort_idx"),
        ("quality_score", Decimal("5.0"), "conversations_owner_quality_sort_idx"),
        ("title", "Calm", "conversations_owner_title_sort_idx"),
        ("-title", "Calm", "conversations_owner_title_sort_idx"),
        ("status", "approved", "conversations_owner_status_key_idx"),
        ("-coherence_score", 0.5, "conversations_owner_coherence_sort_idx"),
        ("coherence_score", 0.5, "conversations_owner_coherence_sort_idx"),
        ("-quality_overall", 0.25, "conversations_owner_quality_overall_sort_idx"),
        ("brand_voice_score", 3.0, "conversations_owner_brand_voice_sort_idx"),
    ],
)
async def test_next_page_starts_in_the_index(
    planner: tuple[asyncpg.Connection, uuid.UUID], mode: str, sort: SortKey, after: Any, index: str
) -> None:
    """The keyset condition is an index condition, so a page deep in the list costs what the
    first one does (as a Filter it read every row before the page)."""
    conn, owner = planner
    sql, args = list_sql(owner, ConversationFilters(), sort, (after, uuid.UUID(int=0)), 25)
    plan = await _plan(conn, mode, sql, args)
    _assert_uses(plan, index, "ROW(", mode == "force_generic_plan")


async def test_search_operator_is_leakproof_in_the_test_database(
    planner: tuple[asyncpg.Connection, uuid.UUID],
) -> None:
    conn, _ = planner
    assert await search_is_indexable(conn)


async def test_planned_queries_return_the_tenants_rows_only(
    planner: tuple[asyncpg.Connection, uuid.UUID],
) -> None:
    conn, owner = planner
    for filters, expected in (
        ({"persona": "persona 7"}, ROWS // 20),
        ({"topic": "TOPIC 4", "emotion": "Emotion 1"}, ROWS // 60),
        ({"q": "zebra"}, ROWS // 1000),
    ):
        where = where_for(owner, ConversationFilters.model_validate(filters))
        count = await conn.fetchval(
            f"SELECT count(*) FROM conversations WHERE {where.sql}", *where.args
        )
        assert count == expected, filters
