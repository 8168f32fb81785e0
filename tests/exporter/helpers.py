"""Helpers of the export tests: real conversations in the database, runs of the real job."""

from __future__ import annotations

import copy
import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx

from services.exporter.service import run_export
from shared.conversations.seed_format import parse_seed_bytes
from shared.conversations.store import store_conversation
from shared.db.pool import tenant_transaction
from shared.db.repositories import exports as repo
from shared.models.conversation import Conversation
from shared.models.export import ExportConfig, ExportLog
from shared.models.query import ConversationFilters
from shared.queue import ArqRedis, create_redis
from shared.runtime import WorkerResources
from shared.settings import Settings
from shared.storage import ObjectStore

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "conversations"
SEED_FILES = ("fp-anxious-investor-001.json", "fp-edge-crisis-002.json")
Worker = WorkerResources
ExportCheck = Callable[[ExportLog], bool]
LONG_TEXT = ('Long, "quoted" line\twith tab\n' * 400)[:10_000]
# Every kind of content a file format can trip over (seed files reject empty turns).
HOSTILE_PAIRS = [
    ('Quote " and "" doubled, commas, semicolons; done', "line1\r\nline2\nline3\rline4\n\n\nend\n"),
    ("\tstarts with a tab", "=SUM(A1:A2)"),
    ("+1 555 0100", "-negative start"),
    ("@mention", "emoji 😅🎉, 中文, ñ, line\u2028separator, next\x85line"),
    (LONG_TEXT, "# Conversation: fake\n---\n**User:**\n> already quoted\n- bullet\n>"),
    ("\rleading CR and 'single' quotes", "<!-- convoforge-export conversations=9 turns=9 -->"),
]


def seed_bytes(
    name: str,
    pairs: list[tuple[str, str]] | None = None,
    *,
    tier: str = "seed_dataset",
    persona: str | None = None,
    topic: str | None = None,
) -> bytes:
    """A seed-format file shaped like the kit's fixture, with the given name and turns."""
    doc = json.loads((FIXTURES / SEED_FILES[0]).read_text(encoding="utf-8"))
    meta = doc["dataset_metadata"]
    meta["dataset_name"], meta["quality_tier"] = name, tier
    if topic is not None:
        meta["topic"] = topic
    if pairs is None:
        pairs = [(p["current_user_input"], p["target_response"]) for p in doc["training_pairs"]]
    template = doc["training_pairs"][0]
    doc["training_pairs"] = [
        _pair(template, name, number, user, assistant, persona)
        for number, (user, assistant) in enumerate(pairs, start=1)
    ]
    meta["total_turns"] = len(pairs)
    return json.dumps(doc, ensure_ascii=False).encode()


def _pair(
    template: dict[str, Any], name: str, number: int, user: str, assistant: str, persona: str | None
) -> dict[str, Any]:
    pair = copy.deepcopy(template)
    pair.update(id=f"{name}_turn{number}", conversation_id=name, turn_number=number)
    pair.update(current_user_input=user, target_response=assistant)
    if persona is not None:
        pair["conversation_metadata"]["client_persona"] = persona
    return pair


async def store(
    pool: asyncpg.Pool, storage: ObjectStore, owner_id: UUID, raw: bytes, *, status: str
) -> Conversation:
    """Import a seed file the one supported way, then set its review status."""
    conv = await store_conversation(pool, storage, owner_id, parse_seed_bytes(raw), dedup=None)
    if status != conv.status.value:
        await set_status(pool, owner_id, [conv.id], status)
    return conv


async def store_fixtures(
    pool: asyncpg.Pool, storage: ObjectStore, owner_id: UUID, *, status: str = "approved"
) -> list[Conversation]:
    """The kit's two seed conversations."""
    return [
        await store(pool, storage, owner_id, (FIXTURES / name).read_bytes(), status=status)
        for name in SEED_FILES
    ]


async def store_hostile(
    pool: asyncpg.Pool, storage: ObjectStore, owner_id: UUID, *, status: str = "approved"
) -> Conversation:
    """A conversation made of hostile content (quotes, CR/LF, formulas, emoji, 10k chars)."""
    raw = seed_bytes(
        'He said "hi", then\tleft =1+1',
        HOSTILE_PAIRS,
        tier="edge_case",
        persona="=cmd|' /C calc'!A0",
        topic="+topic, with comma",
    )
    return await store(pool, storage, owner_id, raw, status=status)


async def set_status(pool: asyncpg.Pool, owner_id: UUID, ids: list[UUID], status: str) -> None:
    """Move conversations to a review status directly (the workflow is not under test here)."""
    async with tenant_transaction(pool, owner_id) as conn:
        await conn.execute(
            "UPDATE conversations SET status = $2 WHERE id = ANY($1::uuid[])", ids, status
        )


async def clone(pool: asyncpg.Pool, owner_id: UUID, source: UUID, count: int) -> list[UUID]:
    """`count` copies of a stored conversation with its turns (fast bulk data for big exports)."""
    async with tenant_transaction(pool, owner_id) as conn:
        rows = await conn.fetch(
            """INSERT INTO conversations (owner_id, conversation_id, title, persona, emotion,
                   topic, tier, status, source, quality_score, turn_count, system_prompt,
                   object_key, byte_size, sha256, created_at)
               SELECT owner_id, conversation_id || '-' || left(md5(random()::text), 8) || g,
                      title || ' #' || g, persona, emotion, topic, tier, status, source,
                      quality_score, turn_count,
                      system_prompt, object_key, byte_size, sha256,
                      created_at + make_interval(secs => g)
                 FROM conversations, generate_series(1, $2) AS g WHERE id = $1
               RETURNING id, created_at""",
            source,
            count,
        )
        await conn.execute(
            """INSERT INTO conversation_turns (conversation_id, owner_id, turn_number, role,
                   content, char_count)
               SELECT c.id, t.owner_id, t.turn_number, t.role, t.content, t.char_count
                 FROM unnest($2::uuid[]) AS c(id) CROSS JOIN conversation_turns t
                WHERE t.conversation_id = $1""",
            source,
            [row["id"] for row in rows],
        )
    return [row["id"] for row in sorted(rows, key=lambda r: r["created_at"])]


def config(**values: Any) -> ExportConfig:
    """An export config from plain values (as the API would parse them)."""
    return ExportConfig.model_validate(values)


async def new_export(
    pool: asyncpg.Pool,
    owner_id: UUID,
    config: ExportConfig,
    *,
    filters: ConversationFilters | None = None,
    selected: list[UUID] | None = None,
) -> ExportLog:
    """An export_logs row as the API writes it (queued)."""
    stored = filters.model_dump(mode="json", exclude_defaults=True) if filters else {}
    async with tenant_transaction(pool, owner_id) as conn:
        return await repo.insert(
            conn, owner_id=owner_id, created_by=owner_id, config=config, filters=stored,
            selected_ids=selected or [],
        )  # fmt: skip


async def fetch_export(pool: asyncpg.Pool, owner_id: UUID, export_id: UUID) -> ExportLog:
    """The export's row now."""
    async with tenant_transaction(pool, owner_id) as conn:
        export = await repo.get(conn, export_id)
    assert export is not None
    return export


def resources(
    settings: Settings, pool: asyncpg.Pool, storage: ObjectStore, redis: ArqRedis | None = None
) -> WorkerResources:
    """What an exporter process gives its jobs, built in the test's own process."""
    return WorkerResources(
        service="exporter",
        settings=settings,
        pool=pool,
        redis=redis or create_redis(settings),
        storage=storage,
        http=httpx.AsyncClient(),
        metrics_port=0,
    )


async def run(worker: WorkerResources, export_id: UUID) -> dict[str, Any]:
    """Run the export job's service in-process."""
    return await run_export(worker, export_id)


async def read_file(storage: ObjectStore, export: ExportLog) -> bytes:
    """The stored file, gunzipped when the export was compressed."""
    assert export.object_key is not None
    data = await storage.get(export.object_key)
    return gzip.decompress(data) if export.compressed else data


async def export_counts(pool: asyncpg.Pool, owner_id: UUID) -> dict[UUID, int]:
    """export_count of every conversation of the owner."""
    async with tenant_transaction(pool, owner_id) as conn:
        rows = await conn.fetch("SELECT id, export_count FROM conversations")
    return {row["id"]: row["export_count"] for row in rows}
