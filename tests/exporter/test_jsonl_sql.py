"""The plain JSONL lines PostgreSQL renders are byte for byte what the Python renderer writes.

Both sides read the same rows: `export_source.batch` + `JsonlTransformer.render` (the reference,
also used with metadata and for previews) against `export_source.rendered_batch` with
`PLAIN_LINE_SQL` (what the exporter runs for jsonl without metadata).
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import asyncpg
import orjson
import pytest

from shared.db.pool import acquire, tenant_transaction
from shared.db.repositories import export_source
from shared.exports.formats import (
    NOT_TRAINABLE,
    ExportOptions,
    RenderError,
    database_render_sql,
    get_transformer,
)
from shared.exports.formats.base import rendered_turn_count
from shared.exports.formats.jsonl import PLAIN_LINE_SQL
from shared.models.export import ExportScope
from shared.storage import ObjectStore
from tests.exporter import helpers
from tests.support.factories import create_user

EXPORT_DATE = datetime(2026, 1, 2, tzinfo=UTC)
PLAIN = ExportOptions(format="jsonl", include_metadata=False, export_date=EXPORT_DATE)
# Every character JSON escapes (PostgreSQL text cannot hold NUL), and some it must not.
CONTROL = "".join(chr(code) for code in range(1, 32))
ODD = 'back\\slash "quoted" /slash/ \x7f del, \u2028\u2029 separators, \ufeff bom, 😅 中文 é'
Turns = list[tuple[int, str, str]]
# slug -> (system_prompt, turns as (turn_number, role, content)), inserted as they are.
EDGE_CASES: dict[str, tuple[str | None, Turns]] = {
    "control-characters": (None, [(1, "user", CONTROL), (2, "assistant", CONTROL[::-1])]),
    "odd-characters": (ODD, [(1, "user", ODD), (2, "assistant", ODD)]),
    "synthetic-system-turn": ("Be kind.\n", [(1, "user", "hi"), (2, "assistant", "hello")]),
    "empty-system-prompt": ("", [(1, "user", "hi"), (2, "assistant", "hello")]),
    "system-turn-kept": (
        "not repeated",
        [(1, "system", "the real one"), (2, "user", "u"), (3, "assistant", "a")],
    ),
    "out-of-order": (None, [(3, "user", "third"), (1, "user", "first"), (2, "assistant", "2nd")]),
    "empty-content": (None, [(1, "user", ""), (2, "assistant", " ")]),
    "no-assistant": ("prompt", [(1, "user", "only me")]),
    "no-turns": ("prompt", []),
}


@pytest.fixture
async def owner(db: asyncpg.Pool) -> UUID:
    """A tenant."""
    async with acquire(db) as conn:
        return (await create_user(conn)).id


async def insert_edge_cases(pool: asyncpg.Pool, owner: UUID) -> None:
    """EDGE_CASES as rows, bypassing the importer (which would refuse some of them)."""
    async with tenant_transaction(pool, owner) as conn:
        for n, (slug, (system_prompt, turns)) in enumerate(EDGE_CASES.items()):
            conv_id = await conn.fetchval(
                """INSERT INTO conversations (owner_id, conversation_id, title, tier, status,
                       source, quality_score, turn_count, system_prompt, object_key, byte_size,
                       sha256, created_at)
                   VALUES ($1, $2, $2, 'scenario', 'approved', 'import', 5 + $3 / 10.0, $4, $5,
                           'none', 0, repeat('0', 64), now() + make_interval(secs => $3))
                   RETURNING id""",
                owner, slug, n, len(turns), system_prompt,
            )  # fmt: skip
            await conn.executemany(
                """INSERT INTO conversation_turns (conversation_id, owner_id, turn_number, role,
                       content, char_count) VALUES ($1, $2, $3, $4, $5, length($5))""",
                [(conv_id, owner, number, role, content) for number, role, content in turns],
            )


async def test_only_plain_jsonl_is_rendered_by_the_database() -> None:
    assert database_render_sql(PLAIN) == PLAIN_LINE_SQL
    for fmt in ("json", "csv", "markdown"):
        assert database_render_sql(PLAIN.model_copy(update={"format": fmt})) is None
    assert database_render_sql(PLAIN.model_copy(update={"include_metadata": True})) is None


async def test_sql_lines_are_the_python_renderers_bytes(
    db: asyncpg.Pool, storage: ObjectStore, owner: UUID
) -> None:
    await helpers.store_fixtures(db, storage, owner)
    await helpers.store_hostile(db, storage, owner)
    await insert_edge_cases(db, owner)
    scope = export_source.scope_for(owner, ExportScope.ALL)
    async with tenant_transaction(db, owner, isolation="repeatable_read", readonly=True) as conn:
        reference = await export_source.batch(conn, scope, after=None, limit=100, metadata=False)
        rendered = await export_source.rendered_batch(
            conn, scope, after=None, limit=100, render_sql=PLAIN_LINE_SQL
        )
    assert len(reference) == len(rendered) == 3 + len(EDGE_CASES)
    transformer = get_transformer(PLAIN)
    unrenderable: set[tuple[str, str]] = set()
    for conv, row in zip(reference, rendered, strict=True):
        assert (row.id, row.conversation_id, row.tier) == (conv.id, conv.conversation_id, conv.tier)
        assert (row.created_at, row.quality_score) == (conv.created_at, conv.quality_score)
        try:
            expected: bytes | None = transformer.render(conv)
        except RenderError as exc:
            expected, reason = None, exc.reason
            unrenderable.add((conv.conversation_id, reason))
        assert row.data == expected, conv.conversation_id
        if expected is None:
            continue
        assert row.turn_count == rendered_turn_count(conv), conv.conversation_id
    assert unrenderable == {("no-assistant", NOT_TRAINABLE), ("no-turns", NOT_TRAINABLE)}


async def test_sql_lines_keep_order_roles_and_content(db: asyncpg.Pool, owner: UUID) -> None:
    """Independently of the Python renderer: what a fine-tuning reader gets from the lines."""
    await insert_edge_cases(db, owner)
    scope = export_source.scope_for(owner, ExportScope.ALL)
    async with tenant_transaction(db, owner) as conn:
        rows = await export_source.rendered_batch(
            conn, scope, after=None, limit=100, render_sql=PLAIN_LINE_SQL
        )
    lines = {row.conversation_id: row.data for row in rows}
    for slug, (system_prompt, turns) in EDGE_CASES.items():
        data = lines[slug]
        if slug in ("no-assistant", "no-turns"):
            assert data is None
            continue
        assert data is not None
        assert data.endswith(b"}\n")
        assert data.count(b"\n") == 1
        expected = [{"role": role, "content": text} for _, role, text in sorted(turns)]
        if system_prompt and all(role != "system" for _, role, _ in turns):
            expected.insert(0, {"role": "system", "content": system_prompt})
        assert orjson.loads(data) == {"messages": expected}, slug
