"""Bedrock lines PostgreSQL renders and Parquet rows it reads as column pieces make exactly the
files the Python renderers make, with the same render failures and reasons.

Both sides read the same rows and go through `ExportStream` (what the exporter runs):
`export_source.batch` conversations (the reference: previews, splits and metadata use it)
against `export_source.rendered_batch` with `bedrock.LINE_SQL` and
`export_source.column_batch` with `parquet.COLUMNS_SQL`.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import pyarrow.parquet as pq
import pytest

from shared.db.pool import acquire, tenant_transaction
from shared.db.repositories import export_source
from shared.exports.formats import (
    NOT_TRAINABLE,
    ExportOptions,
    database_columns_sql,
    database_render_sql,
    get_validator,
)
from shared.exports.formats.parquet import COLUMNS_SQL
from shared.exports.formats.targets import bedrock
from shared.exports.stream import ExportStream
from shared.models.export import ExportScope
from shared.storage import ObjectStore
from tests.exporter import helpers
from tests.exporter.test_jsonl_sql import EDGE_CASES, Turns, insert_edge_cases
from tests.support.factories import create_user

EXPORT_DATE = datetime(2026, 1, 2, tzinfo=UTC)
BEDROCK = ExportOptions(format="jsonl", target="bedrock-claude", include_metadata=False,
                        export_date=EXPORT_DATE)  # fmt: skip
PARQUET = ExportOptions(format="parquet", include_metadata=False, export_date=EXPORT_DATE)
MISPLACED = bedrock.MISPLACED_SYSTEM
Batches = list[list[Any]]
# slug -> (system_prompt, turns, the reason Bedrock refuses it or None), beyond EDGE_CASES.
BEDROCK_CASES: dict[str, tuple[str | None, Turns, str | None]] = {
    "two-users": (None, [(1, "user", "a"), (2, "user", "b"), (3, "assistant", "c")],
                  "bedrock-claude: message 1 is 'user'; 'assistant' expected (strict alternation)"),
    "ends-with-user": (None, [(1, "user", "a"), (2, "assistant", "b"), (3, "user", "c")],
                       "bedrock-claude: the last message must be 'assistant'"),
    "assistant-first": (None, [(1, "assistant", "a"), (2, "user", "b"), (3, "assistant", "c")],
                        "bedrock-claude: message 0 is 'assistant'; 'user' expected "
                        "(strict alternation)"),
    "zero-width": (None, [(1, "user", "\u200b "), (2, "assistant", "b")],
                   "bedrock-claude: message 0 content is blank"),
    "blank-before-alternation": (None, [(1, "user", "a"), (2, "user", "\u3164"),
                                        (3, "assistant", "c")],
                                 "bedrock-claude: message 1 content is blank"),
    "system-in-the-middle": (None, [(1, "user", "a"), (2, "system", "s"), (3, "assistant", "b")],
                             MISPLACED),
    "two-system-turns": (None, [(1, "system", "s"), (2, "system", "t"), (3, "user", "u"),
                                (4, "assistant", "a")], MISPLACED),
    "blank-system-prompt": (" \u2028", [(1, "user", "a"), (2, "assistant", "b")],
                            "bedrock-claude: system is blank"),
    "blank-system-turn": (None, [(1, "system", "\t"), (2, "user", "a"), (3, "assistant", "b")],
                          "bedrock-claude: system is blank"),
    "visible-non-ascii": ("é prompt", [(1, "user", "😅 hi"), (2, "assistant", "\nok"),
                                       (3, "user", " spaced"), (4, "assistant", "中文")], None),
    "plain": ("Be kind.", [(1, "user", "hi"), (2, "assistant", "hello")], None),
}  # fmt: skip


@pytest.fixture
async def owner(db: asyncpg.Pool) -> UUID:
    """A tenant."""
    async with acquire(db) as conn:
        return (await create_user(conn)).id


async def insert_bedrock_cases(pool: asyncpg.Pool, owner: UUID) -> None:
    """BEDROCK_CASES as rows, after the edge cases (created later)."""
    async with tenant_transaction(pool, owner) as conn:
        for n, (slug, (system_prompt, turns, _)) in enumerate(BEDROCK_CASES.items()):
            conv_id = await conn.fetchval(
                """INSERT INTO conversations (owner_id, conversation_id, title, tier, status,
                       source, quality_score, turn_count, system_prompt, object_key, byte_size,
                       sha256, created_at)
                   VALUES ($1, $2, NULL, 'edge_case', 'approved', 'import', NULL, $4, $5,
                           'none', 0, repeat('0', 64), now() + make_interval(secs => 100 + $3))
                   RETURNING id""",
                owner, slug, n, len(turns), system_prompt,
            )  # fmt: skip
            await conn.executemany(
                """INSERT INTO conversation_turns (conversation_id, owner_id, turn_number, role,
                       content, char_count) VALUES ($1, $2, $3, $4, $5, length($5))""",
                [(conv_id, owner, number, role, content) for number, role, content in turns],
            )


async def everything(db: asyncpg.Pool, storage: ObjectStore, owner: UUID) -> None:
    """The kit's fixtures, the hostile conversation, the edge cases and the Bedrock cases."""
    await helpers.store_fixtures(db, storage, owner)
    await helpers.store_hostile(db, storage, owner)
    await insert_edge_cases(db, owner)
    await insert_bedrock_cases(db, owner)


def stream_file(options: ExportOptions, batches: Batches) -> tuple[bytes, ExportStream]:
    """The file an ExportStream makes of the batches, validated as the exporter does."""
    stream = ExportStream(options, compress=False)
    validator = get_validator(options)
    stream.header()
    for batch in batches:
        for conv in batch:
            stream.add(conv)
    data = stream.take() + stream.footer()
    validator.feed(data)
    stream.verify(validator.finish())
    return data, stream


async def read_both(
    db: asyncpg.Pool, owner: UUID, *, render_sql: str | None = None, columns_sql: str | None = None
) -> tuple[Batches, Batches]:
    """The reference conversations and the database's rows, in two batches each (keyset)."""
    scope = export_source.scope_for(owner, ExportScope.ALL)
    reference: Batches = []
    database: Batches = []
    async with tenant_transaction(db, owner, isolation="repeatable_read", readonly=True) as conn:
        for source in ("python", "database"):
            after = None
            while True:
                if source == "python":
                    batch: list[Any] = await export_source.batch(
                        conn, scope, after=after, limit=7, metadata=False
                    )
                elif render_sql is not None:
                    batch = await export_source.rendered_batch(
                        conn, scope, after=after, limit=7, render_sql=render_sql
                    )
                else:
                    assert columns_sql is not None
                    batch = await export_source.column_batch(
                        conn, scope, after=after, limit=7, columns_sql=columns_sql
                    )
                if not batch:
                    break
                (reference if source == "python" else database).append(batch)
                after = export_source.last_key(batch)
    return reference, database


def failures(stream: ExportStream) -> dict[str, str]:
    """conversation_id -> reason of the stream's render failures."""
    return {f["conversation_id"]: f["reason"] for f in stream.tally.failures}


async def test_only_rule_free_exports_have_database_sql() -> None:
    assert database_render_sql(BEDROCK) == bedrock.LINE_SQL
    assert database_columns_sql(PARQUET) == COLUMNS_SQL
    for target in ("sharegpt", "trl", "hf-chat"):
        assert database_render_sql(BEDROCK.model_copy(update={"target": target})) is None
    assert database_columns_sql(PARQUET.model_copy(update={"include_metadata": True})) is None
    assert database_render_sql(PARQUET) is None
    assert database_columns_sql(BEDROCK) is None


async def test_bedrock_sql_lines_and_failures_are_the_python_renderers(
    db: asyncpg.Pool, storage: ObjectStore, owner: UUID
) -> None:
    await everything(db, storage, owner)
    reference, database = await read_both(db, owner, render_sql=bedrock.LINE_SQL)
    want, python = stream_file(BEDROCK, reference)
    got, sql = stream_file(BEDROCK, database)
    assert got == want
    assert sql.tally.summary.to_dict() == python.tally.summary.to_dict()
    assert bytes(sql.tally.exported_ids) == bytes(python.tally.exported_ids)
    assert failures(sql) == failures(python)
    expected = {slug: reason for slug, (_, _, reason) in BEDROCK_CASES.items() if reason}
    expected |= {"no-assistant": NOT_TRAINABLE, "no-turns": NOT_TRAINABLE}
    expected |= {"out-of-order": "bedrock-claude: the last message must be 'assistant'",
                 "empty-content": "bedrock-claude: message 0 content is blank",
                 "control-characters": "bedrock-claude: message 0 content is blank"}  # fmt: skip
    assert failures(sql) == expected
    checked = {row.conversation_id for batch in database for row in batch if row.needs_check}
    # Lines whose roles and texts the database proved fine are not parsed again...
    assert {"plain", "system-turn-kept", "synthetic-system-turn"}.isdisjoint(checked)
    # ...the others are, in Python, whatever their verdict.
    assert {"visible-non-ascii", "two-users", "zero-width", "control-characters"} <= checked


async def test_parquet_from_column_pieces_is_the_python_renderers_file(
    db: asyncpg.Pool, storage: ObjectStore, owner: UUID
) -> None:
    await everything(db, storage, owner)
    reference, database = await read_both(db, owner, columns_sql=COLUMNS_SQL)
    want, python = stream_file(PARQUET, reference)
    got, sql = stream_file(PARQUET, database)
    assert got == want
    assert sql.tally.summary.to_dict() == python.tally.summary.to_dict()
    assert (
        failures(sql)
        == failures(python)
        == {
            "no-assistant": NOT_TRAINABLE,
            "no-turns": NOT_TRAINABLE,
        }
    )
    chunks = pq.read_metadata(io.BytesIO(got)).row_group(0)
    layout = {
        chunk.path_in_schema: (chunk.is_stats_set, any("DICT" in e for e in chunk.encodings))
        for chunk in map(chunks.column, range(chunks.num_columns))
    }
    # Turn text: no dictionary, no statistics; the other columns keep both.
    assert layout.pop("messages.list.element.content") == (False, False)
    assert set(layout.values()) == {(True, True)}
    rows = {row["conversation_id"]: row for row in pq.read_table(io.BytesIO(got)).to_pylist()}
    for slug, (system_prompt, turns) in EDGE_CASES.items():
        if slug in ("no-assistant", "no-turns"):
            assert slug not in rows
            continue
        expected = [{"role": role, "content": text} for _, role, text in sorted(turns)]
        if system_prompt and all(role != "system" for _, role, _ in turns):
            expected.insert(0, {"role": "system", "content": system_prompt})
        assert rows[slug]["messages"] == expected, slug
    assert rows["plain"]["title"] is None
    assert rows["visible-non-ascii"]["messages"][0] == {"role": "system", "content": "é prompt"}


async def test_parquet_row_groups_split_where_the_python_renderer_splits(
    db: asyncpg.Pool, storage: ObjectStore, owner: UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.exports.formats import parquet

    monkeypatch.setattr(parquet, "ROW_GROUP_ROWS", 4)
    await everything(db, storage, owner)
    reference, database = await read_both(db, owner, columns_sql=COLUMNS_SQL)
    want, _ = stream_file(PARQUET, reference)
    got, _ = stream_file(PARQUET, database)
    assert got == want
    metadata = pq.read_metadata(io.BytesIO(got))
    assert metadata.num_row_groups == -(-metadata.num_rows // 4) > 1
