"""The export job end to end, in-process, on both storage backends: files read back by
independent readers, counts and stats recorded, render failures reported, runs idempotent."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from shared.db.pool import acquire, tenant_transaction
from shared.db.repositories import conversations as conversations_repo
from shared.db.repositories import exports as repo
from shared.exports.formats.csv_format import unescape_cell
from shared.models.conversation import Conversation
from shared.models.query import ConversationFilters
from shared.settings import Settings
from shared.storage import ObjectStore
from tests.exporter import helpers
from tests.support.factories import create_user

FORMATS = ["jsonl", "json", "csv", "markdown"]
EXTENSIONS = {"jsonl": "jsonl", "json": "json", "csv": "csv", "markdown": "md"}
Turns = list[tuple[str, str]]


@pytest.fixture
async def owner(db: asyncpg.Pool) -> UUID:
    """A tenant."""
    async with acquire(db) as conn:
        return (await create_user(conn)).id


@pytest.fixture
async def conversations(db: asyncpg.Pool, storage: ObjectStore, owner: UUID) -> list[Conversation]:
    """The kit's two seed conversations and a hostile one, all approved."""
    stored = await helpers.store_fixtures(db, storage, owner)
    return [*stored, await helpers.store_hostile(db, storage, owner)]


@pytest.fixture
async def worker(settings: Settings, db: asyncpg.Pool, storage: ObjectStore) -> helpers.Worker:
    """Exporter resources on the parametrized storage backend."""
    quick = settings.model_copy(update={"export_heartbeat_seconds": 0.1})
    return helpers.resources(quick, db, storage)


async def expected_turns(
    pool: asyncpg.Pool, owner: UUID, convs: list[Conversation]
) -> dict[str, Turns]:
    """Every conversation's turns as the database holds them, by conversation_id."""
    out: dict[str, Turns] = {}
    async with tenant_transaction(pool, owner) as conn:
        for conv in convs:
            turns = await conversations_repo.turns(conn, conv.id)
            pairs = [(t.role.value, t.content) for t in turns]
            if conv.system_prompt and all(role != "system" for role, _ in pairs):
                pairs.insert(0, ("system", conv.system_prompt))
            out[conv.conversation_id] = pairs
    return out


# --- independent readers ----------------------------------------------------------------------


def read_jsonl(text: str) -> list[dict[str, Any]]:
    """json.loads per line (split on LF only: U+2028 inside a string is not a line end)."""
    assert text.endswith("\n") or text == ""
    return [json.loads(line) for line in text.split("\n")[:-1]]


def read_csv(text: str) -> list[dict[str, str]]:
    """The csv module, as a spreadsheet import would read it."""
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text[1:], newline="")))


def csv_text(cell: str) -> str:
    """Undo the documented formula guard: drop one leading '."""
    return unescape_cell(cell)


_LABEL = re.compile(r"^\*\*(System|User|Assistant):\*\*$")


def read_markdown(text: str) -> list[tuple[str, Turns]]:
    """Sections split on the separator; each turn is a label, a blank line and quote lines."""
    body, _, trailer = text.rpartition("<!-- convoforge-export ")
    assert re.fullmatch(r"conversations=\d+ turns=\d+ -->\n", trailer)
    sections = []
    for section in body.rstrip("\n").split("\n\n---\n\n") if body.strip() else []:
        lines = section.split("\n")
        assert lines[0].startswith("# Conversation: ")
        turns: Turns = []
        for index, line in enumerate(lines):
            label = _LABEL.match(line)
            if label is None:
                continue
            assert lines[index + 1] == ""
            quoted = []
            for quote in lines[index + 2 :]:
                if not quote.startswith(">"):
                    break
                quoted.append(quote[2:] if quote.startswith("> ") else quote[1:])
            turns.append((label[1].lower(), "\n".join(quoted)))
        sections.append((lines[0].removeprefix("# Conversation: "), turns))
    return sections


def md_content(content: str) -> str:
    """Markdown keeps content as is but HTML escaped, with LF line endings."""
    text = content.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def turns_in_file(fmt: str, data: bytes) -> dict[str, Turns]:
    """(role, content) per conversation_id, read back from the file by an independent reader."""
    text = data.decode("utf-8")
    if fmt == "jsonl":
        lines = read_jsonl(text)
        return {
            line["metadata"]["conversation_id"]: [
                (m["role"], m["content"]) for m in line["messages"]
            ]
            for line in lines
        }
    if fmt == "json":
        doc = json.loads(text)
        assert doc["conversation_count"] == len(doc["conversations"])
        return {
            conv["conversation_id"]: [(t["role"], t["content"]) for t in conv["turns"]]
            for conv in doc["conversations"]
        }
    if fmt == "csv":
        out: dict[str, Turns] = {}
        for row in read_csv(text):
            out.setdefault(row["conversation_id"], []).append(
                (row["role"], csv_text(row["content"]))
            )
        return out
    return dict(read_markdown(text))


# --- tests ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
async def test_every_format_holds_every_turn_exactly(
    db: asyncpg.Pool, storage: ObjectStore, owner: UUID, conversations: list[Conversation],
    worker: helpers.Worker, fmt: str,
) -> None:  # fmt: skip
    config = helpers.config(scope="all_approved", format=fmt, include_metadata=True)
    export = await helpers.new_export(db, owner, config)
    result = await helpers.run(worker, export.id)
    assert result["status"] == "completed", result
    done = await helpers.fetch_export(db, owner, export.id)
    data = await helpers.read_file(storage, done)
    assert hashlib.sha256(data).hexdigest() == done.sha256
    assert len(data) == done.byte_size
    expected = await expected_turns(db, owner, conversations)
    found = turns_in_file(fmt, data)
    if fmt == "markdown":  # headings carry titles; compare turn lists in export order
        assert list(found.values()) == [
            [(role, md_content(text)) for role, text in turns] for turns in expected.values()
        ]
    else:
        assert found == expected
    assert done.conversation_count == 3
    assert done.turn_count == sum(len(turns) for turns in expected.values())
    assert done.tier_distribution == {"template": 1, "edge_case": 2}
    assert done.file_name == (f"training-data-all-{done.created_at:%Y-%m-%d}-3.{EXTENSIONS[fmt]}")
    assert done.render_failure_count == 0
    assert done.progress_percent == 100


async def test_compressed_export_is_gzip_of_a_valid_file(
    db: asyncpg.Pool, storage: ObjectStore, owner: UUID, conversations: list[Conversation],
    worker: helpers.Worker,
) -> None:  # fmt: skip
    config = helpers.config(scope="all", format="csv", compress="gzip")
    export = await helpers.new_export(db, owner, config)
    await helpers.run(worker, export.id)
    done = await helpers.fetch_export(db, owner, export.id)
    assert done.compressed
    assert done.file_name
    assert done.file_name.endswith(".csv.gz")
    assert done.object_key is not None
    stored = await storage.get(done.object_key)
    assert stored[:2] == b"\x1f\x8b"
    assert hashlib.sha256(stored).hexdigest() == done.sha256
    rows = read_csv((await helpers.read_file(storage, done)).decode())
    assert {row["conversation_id"] for row in rows} == {c.conversation_id for c in conversations}


async def test_jsonl_is_plain_chat_format_unless_metadata_is_asked_for(
    db: asyncpg.Pool, storage: ObjectStore, owner: UUID, conversations: list[Conversation],
    worker: helpers.Worker,
) -> None:  # fmt: skip
    plain = await helpers.new_export(db, owner, helpers.config(scope="all_approved"))
    await helpers.run(worker, plain.id)
    lines = read_jsonl(
        (await helpers.read_file(storage, await helpers.fetch_export(db, owner, plain.id))).decode()
    )
    assert all(set(line) == {"messages"} for line in lines)
    assert all(set(m) == {"role", "content"} for line in lines for m in line["messages"])
    assert [line["messages"][0]["role"] for line in lines] == ["system"] * 3

    rich = helpers.config(
        scope="all_approved", format="json", include_metadata=True, include_timestamps=True,
        include_approval_history=True, include_parent_references=True,
    )  # fmt: skip
    export = await helpers.new_export(db, owner, rich)
    await helpers.run(worker, export.id)
    doc = json.loads(
        await helpers.read_file(storage, await helpers.fetch_export(db, owner, export.id))
    )
    first = doc["conversations"][0]
    assert first["metadata"]["approval_history"][0]["to_status"] == "pending_review"
    assert {"created_at", "parent_id", "quality_score", "quality_metrics"} <= set(first["metadata"])
    assert "detected_emotion" in first["turns"][1]
    assert doc["summary"]["tier_distribution"] == {"template": 1, "edge_case": 2}


# jsonl without metadata is rendered by PostgreSQL, markdown by Python: both report it.
@pytest.mark.parametrize("fmt", ["markdown", "jsonl"])
async def test_unrenderable_conversation_is_reported_not_dropped(
    db: asyncpg.Pool, storage: ObjectStore, owner: UUID, conversations: list[Conversation],
    worker: helpers.Worker, fmt: str,
) -> None:  # fmt: skip
    broken = conversations[1]
    async with tenant_transaction(db, owner) as conn:
        await conn.execute(
            "DELETE FROM conversation_turns WHERE conversation_id = $1 AND role = 'assistant'",
            broken.id,
        )
    export = await helpers.new_export(db, owner, helpers.config(scope="all", format=fmt))
    result = await helpers.run(worker, export.id)
    done = await helpers.fetch_export(db, owner, export.id)
    assert result["render_failures"] == 1
    assert done.render_failure_count == 1
    assert done.render_failures == [
        {
            "id": str(broken.id),
            "conversation_id": broken.conversation_id,
            "reason": "needs at least one user and one assistant turn",
        }
    ]
    assert done.conversation_count == 2
    assert done.status.value == "completed"
    counts = await helpers.export_counts(db, owner)
    assert counts[broken.id] == 0
    assert counts[conversations[0].id] == 1


async def test_a_second_run_changes_nothing(
    db: asyncpg.Pool, storage: ObjectStore, owner: UUID, conversations: list[Conversation],
    worker: helpers.Worker,
) -> None:  # fmt: skip
    before = await _conversation_times(db, owner)
    export = await helpers.new_export(db, owner, helpers.config(scope="all_approved"))
    first = await helpers.run(worker, export.id)
    done = await helpers.fetch_export(db, owner, export.id)
    again = await helpers.run(worker, export.id)
    assert first["counts_applied"] == 3
    assert again == {"export_id": str(export.id), "status": "completed", "counts_applied": None}
    after = await helpers.fetch_export(db, owner, export.id)
    assert (after.sha256, after.object_key, after.attempts) == (done.sha256, done.object_key, 1)
    assert set((await helpers.export_counts(db, owner)).values()) == {1}
    times = await _conversation_times(db, owner)
    assert {last for _, last in times.values()} == {done.completed_at}
    # Bumping export_count is bookkeeping: updated_at stays what the last edit set.
    assert {k: updated for k, (updated, _) in times.items()} == {
        k: updated for k, (updated, _) in before.items()
    }


async def _conversation_times(pool: asyncpg.Pool, owner: UUID) -> dict[UUID, tuple[Any, Any]]:
    async with tenant_transaction(pool, owner) as conn:
        rows = await conn.fetch("SELECT id, updated_at, last_exported_at FROM conversations")
    return {row["id"]: (row["updated_at"], row["last_exported_at"]) for row in rows}


async def test_rerun_after_a_crash_restarts_and_completes_once(
    db: asyncpg.Pool, storage: ObjectStore, owner: UUID, conversations: list[Conversation],
    worker: helpers.Worker,
) -> None:  # fmt: skip
    export = await helpers.new_export(db, owner, helpers.config(scope="all", format="json"))
    dead_run = UUID(int=1)
    async with tenant_transaction(db, owner) as conn:  # a worker claimed it, then died
        await repo.claim(conn, export.id, dead_run, f"exports/{owner}/{export.id}/{dead_run}.json")
    result = await helpers.run(worker, export.id)
    assert result["status"] == "completed"
    done = await helpers.fetch_export(db, owner, export.id)
    assert done.attempts == 2
    assert done.run_id not in (None, dead_run)
    keys = [info.key async for info in storage.list_prefix(f"exports/{owner}/{export.id}/")]
    assert keys == [done.object_key]
    # A crash between completion and the export_count bump: the next run finishes the bump.
    async with tenant_transaction(db, owner) as conn:
        await conn.execute(
            "UPDATE export_logs SET counts_applied_at = NULL WHERE id = $1", export.id
        )
        await conn.execute("UPDATE conversations SET export_count = 0")
    assert (await helpers.run(worker, export.id))["counts_applied"] == 3
    assert (await helpers.run(worker, export.id))["counts_applied"] is None
    assert set((await helpers.export_counts(db, owner)).values()) == {1}


async def test_empty_scope_at_run_time_is_an_honest_empty_file(
    db: asyncpg.Pool, storage: ObjectStore, owner: UUID, worker: helpers.Worker
) -> None:
    for fmt in FORMATS:
        export = await helpers.new_export(
            db, owner, helpers.config(scope="all_approved", format=fmt)
        )
        assert (await helpers.run(worker, export.id))["status"] == "completed"
        done = await helpers.fetch_export(db, owner, export.id)
        assert done.conversation_count == 0
        assert done.file_name
        assert done.file_name.startswith("training-data-all-")
        assert "-0." in done.file_name
        data = await helpers.read_file(storage, done)
        assert turns_in_file(fmt, data) == {}


async def test_scope_never_reaches_other_tenants_or_deleted_rows(
    db: asyncpg.Pool, storage: ObjectStore, owner: UUID, conversations: list[Conversation],
    worker: helpers.Worker,
) -> None:  # fmt: skip
    async with acquire(db) as conn:
        other = (await create_user(conn)).id
    theirs = await helpers.store_fixtures(db, storage, other)
    deleted = conversations[0]
    async with tenant_transaction(db, owner) as conn:
        await conn.execute("UPDATE conversations SET deleted_at = now() WHERE id = $1", deleted.id)
    selected = [c.id for c in conversations] + [c.id for c in theirs]
    export = await helpers.new_export(
        db, owner, helpers.config(scope="selected", include_metadata=True), selected=selected
    )
    await helpers.run(worker, export.id)
    lines = read_jsonl(
        (
            await helpers.read_file(storage, await helpers.fetch_export(db, owner, export.id))
        ).decode()
    )
    assert [line["metadata"]["conversation_id"] for line in lines] == [
        c.conversation_id for c in conversations[1:]
    ]
    assert set((await helpers.export_counts(db, other)).values()) == {0}


async def test_filtered_scope_uses_the_conversation_list_filters(
    db: asyncpg.Pool, storage: ObjectStore, owner: UUID, conversations: list[Conversation],
    worker: helpers.Worker,
) -> None:  # fmt: skip
    await helpers.set_status(db, owner, [conversations[0].id], "pending_review")
    cases: list[tuple[dict[str, Any], set[str]]] = [
        (
            {"tier": ["edge_case"]},
            {conversations[1].conversation_id, conversations[2].conversation_id},
        ),
        ({"status": ["pending_review"]}, {conversations[0].conversation_id}),
        ({"persona": "=CMD|' /C CALC'!A0"}, {conversations[2].conversation_id}),
        ({"q": "windfall"}, {conversations[1].conversation_id}),
        ({"tier": ["scenario"]}, set()),
    ]
    for filters, slugs in cases:
        export = await helpers.new_export(
            db, owner, helpers.config(scope="filtered", include_metadata=True),
            filters=ConversationFilters.model_validate(filters),
        )  # fmt: skip
        await helpers.run(worker, export.id)
        done = await helpers.fetch_export(db, owner, export.id)
        lines = read_jsonl((await helpers.read_file(storage, done)).decode())
        assert {line["metadata"]["conversation_id"] for line in lines} == slugs, filters
