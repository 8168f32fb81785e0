"""Every format and option combination over imported and generated conversations, read from
the database; outcomes of real runs: failed when nothing renders, partial, warnings, types."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import asyncpg
import pytest

from shared.db.pool import acquire, tenant_transaction
from shared.db.repositories import export_source
from shared.exports import content_types, plan
from shared.exports.formats import ExportOptions
from shared.exports.stream import render_small
from shared.models.conversation import Conversation
from shared.models.export import ExportScope
from shared.settings import Settings
from shared.storage import LocalObjectStore
from tests.exporter import helpers
from tests.exporter.generated import ALTERNATING, store_generated
from tests.support.factories import create_user

FORMATS = ["jsonl", "json", "csv", "markdown", "parquet", "txt"]
FLAGS = (
    "include_metadata",
    "include_quality_scores",
    "include_timestamps",
    "include_approval_history",
    "include_parent_references",
    "include_full_content",
)
NOT_ALTERNATING = [
    {"role": "user", "content": "first"},
    {"role": "user", "content": "second, no answer in between"},
    {"role": "assistant", "content": "answer"},
]


@pytest.fixture
def local(tmp_path: Path) -> LocalObjectStore:
    """The local backend (the matrix does not depend on the backend)."""
    return LocalObjectStore(tmp_path / "objects", base_url="http://test", signing_secret=b"s")


@pytest.fixture
async def owner(db: asyncpg.Pool) -> UUID:
    """A tenant."""
    async with acquire(db) as conn:
        return (await create_user(conn)).id


@pytest.fixture
async def mixed(db: asyncpg.Pool, local: LocalObjectStore, owner: UUID) -> list[Conversation]:
    """Imported (the kit's seeds, a hostile one) and generated conversations (with template,
    parent and review references)."""
    imported = await helpers.store_fixtures(db, local, owner)
    imported.append(await helpers.store_hostile(db, local, owner))
    first = await store_generated(db, local, owner, slug="gen-1")
    second = await store_generated(db, local, owner, slug="gen-2", parent=first)
    return [*imported, first, second]


@pytest.fixture
def worker(settings: Settings, db: asyncpg.Pool, local: LocalObjectStore) -> helpers.Worker:
    """Exporter resources on the local backend."""
    return helpers.resources(settings, db, local)


def every_combination() -> list[dict[str, bool]]:
    """All 64 settings of the six include flags."""
    return [
        dict(zip(FLAGS, values, strict=True))
        for values in itertools.product((False, True), repeat=6)
    ]


@pytest.mark.parametrize("fmt", FORMATS)
async def test_every_option_combination_renders_every_conversation(
    db: asyncpg.Pool, owner: UUID, mixed: list[Conversation], fmt: str
) -> None:
    scope = export_source.scope_for(owner, ExportScope.ALL)
    async with tenant_transaction(db, owner) as conn:
        for flags in every_combination():
            options = ExportOptions.model_validate(
                {"format": fmt, "export_date": datetime.now(UTC), **flags}
            )
            rows = await export_source.batch(
                conn, scope, after=None, limit=100, **plan.reads(options)
            )
            data, tally, _ = render_small(options, rows)
            assert tally.failures == [], (flags, tally.failures)
            assert tally.summary.conversation_count == len(mixed), flags
            assert data


async def test_json_formats_carry_ids_and_history_as_strings(
    db: asyncpg.Pool, owner: UUID, mixed: list[Conversation]
) -> None:
    scope = export_source.scope_for(owner, ExportScope.ALL)
    flags = {"include_metadata": True, "include_approval_history": True,
             "include_parent_references": True}  # fmt: skip
    options = ExportOptions.model_validate(
        {"format": "jsonl", "export_date": datetime.now(UTC), **flags}
    )
    async with tenant_transaction(db, owner) as conn:
        rows = await export_source.batch(conn, scope, after=None, limit=100, **plan.reads(options))
    data, _, _ = render_small(options, rows)
    records = [json.loads(line) for line in data.decode().split("\n")[:-1]]
    lines = {record["metadata"]["conversation_id"]: record for record in records}
    generated = lines["gen-2"]["metadata"]
    assert generated["parent_id"] == str(mixed[3].id)
    assert UUID(generated["template_id"])
    review = generated["approval_history"][-1]
    assert review["reviewer_id"] == str(owner)
    assert review["notes"] == 'Good, "clear" <b>'
    assert generated["reviewed_by"] == str(owner)


@pytest.mark.parametrize("fmt", FORMATS)
async def test_run_with_every_flag_on_completes_whole(
    db: asyncpg.Pool,
    local: LocalObjectStore,
    worker: helpers.Worker,
    owner: UUID,
    mixed: list[Conversation],
    fmt: str,
) -> None:
    config = helpers.config(scope="all", format=fmt, **dict.fromkeys(FLAGS, True))
    export = await helpers.new_export(db, owner, config)
    result = await helpers.run(worker, export.id)
    done = await helpers.fetch_export(db, owner, export.id)
    assert result["status"] == "completed", done.error
    assert (done.conversation_count, done.partial, done.warnings) == (len(mixed), False, [])
    assert done.file_name is not None
    assert content_types.for_name(done.file_name) == plan.content_type(config)


async def test_export_whose_rows_all_fail_ends_failed_without_a_file(
    db: asyncpg.Pool, local: LocalObjectStore, worker: helpers.Worker, owner: UUID
) -> None:
    bad = await store_generated(db, local, owner, slug="bad", turns=NOT_ALTERNATING)
    config = helpers.config(scope="selected", format="jsonl", target="bedrock-claude")
    export = await helpers.new_export(db, owner, config, selected=[bad.id])
    result = await helpers.run(worker, export.id)
    done = await helpers.fetch_export(db, owner, export.id)
    assert result["status"] == done.status.value == "failed"
    assert done.error is not None
    assert done.error.startswith("render_failed: none of the 1")
    assert "strict alternation" in done.error
    assert [o async for o in local.list_prefix("exports/")] == []


async def test_partial_export_completes_flagged_with_failures_and_warning(
    db: asyncpg.Pool, local: LocalObjectStore, worker: helpers.Worker, owner: UUID
) -> None:
    await store_generated(db, local, owner, slug="good")
    bad = await store_generated(db, local, owner, slug="bad", turns=NOT_ALTERNATING)
    config = helpers.config(scope="all", format="jsonl", target="sharegpt")
    export = await helpers.new_export(db, owner, config)
    await helpers.run(worker, export.id)
    done = await helpers.fetch_export(db, owner, export.id)
    assert done.status.value == "completed"
    assert (done.partial, done.render_failure_count, done.conversation_count) == (True, 1, 1)
    assert done.render_failures[0]["id"] == str(bad.id)
    assert done.warnings == [
        "partial export: 1 of 2 conversation(s) could not be rendered and are not in the file "
        "(see render_failures)"
    ]
    data = await helpers.read_file(local, done)
    assert json.loads(data)["conversations"][1]["value"] == ALTERNATING[0]["content"]


async def test_partial_bedrock_export_reports_the_rows_postgresql_and_python_refuse(
    db: asyncpg.Pool, local: LocalObjectStore, worker: helpers.Worker, owner: UUID
) -> None:
    """Bedrock lines come from PostgreSQL: a misplaced system turn is refused there, broken
    alternation and blank text by the Python check of the lines it flags."""
    await store_generated(db, local, owner, slug="good")
    unordered = await store_generated(db, local, owner, slug="unordered", turns=NOT_ALTERNATING)
    blank = [{"role": "user", "content": "\u200b\u3164"}, *ALTERNATING[1:2]]
    empty = await store_generated(db, local, owner, slug="blank", turns=blank)
    middle = [ALTERNATING[0], {"role": "system", "content": "late"}, *ALTERNATING[1:]]
    late = await store_generated(db, local, owner, slug="late-system", turns=middle)
    config = helpers.config(scope="all", format="jsonl", target="bedrock-claude")
    export = await helpers.new_export(db, owner, config)
    await helpers.run(worker, export.id)
    done = await helpers.fetch_export(db, owner, export.id)
    assert done.status.value == "completed", done.error
    assert (done.partial, done.render_failure_count, done.conversation_count) == (True, 3, 1)
    assert {f["id"]: f["reason"] for f in done.render_failures} == {
        str(unordered.id): "bedrock-claude: message 1 is 'user'; 'assistant' expected "
        "(strict alternation)",
        str(empty.id): "bedrock-claude: message 0 content is blank",
        str(late.id): "bedrock-claude: a system turn after the first message",
    }
    lines = (await helpers.read_file(local, done)).splitlines()
    assert [json.loads(line) for line in lines] == [
        {"system": "You are a calm budgeting coach.", "messages": ALTERNATING}
    ]


async def test_csv_cells_longer_than_a_spreadsheet_holds_are_whole_and_warned(
    db: asyncpg.Pool, local: LocalObjectStore, worker: helpers.Worker, owner: UUID
) -> None:
    long = "x" * 40_000
    turns = [{"role": "user", "content": "short"}, {"role": "assistant", "content": long}]
    await store_generated(db, local, owner, slug="long", turns=turns)
    export = await helpers.new_export(db, owner, helpers.config(scope="all", format="csv"))
    await helpers.run(worker, export.id)
    done = await helpers.fetch_export(db, owner, export.id)
    assert done.status.value == "completed"
    assert not done.partial
    assert done.warnings == [
        "1 CSV cell(s) exceed 32,767 characters and will be cut by spreadsheets "
        "(first: conversation long, content)"
    ]
    assert long in (await helpers.read_file(local, done)).decode()
