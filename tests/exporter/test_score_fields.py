"""Every export format carries the judge's scores, read from the real columns by a real run and
loaded back by real consumers (csv, json, pyarrow, pandas); NULL stays null/empty, never 0."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import pandas
import pyarrow.parquet as pq
import pytest

from shared.db.pool import acquire, tenant_transaction
from shared.exports.formats.csv_format import unescape_cell
from shared.models.conversation import Conversation
from shared.models.export import ExportLog
from shared.models.query import ConversationFilters
from shared.models.scores import QualitySource
from shared.settings import Settings
from shared.storage import LocalObjectStore
from tests.exporter import helpers
from tests.exporter.generated import store_generated
from tests.support.factories import create_user, set_scores

JUDGED: dict[str, Any] = {
    "coherence_score": 0.9, "relevance_score": 0.7, "completeness_score": 0.35,
    "quality_overall": 0.71, "empathy_score": 4.5, "clarity_score": 2.25,
    "appropriateness_score": 5.0, "brand_voice_score": 1.0, "quality_source": "judge",
    "judge_rubric_version": 3,
}  # fmt: skip
RATIONALE = {
    "coherence": {"rationale": 'Keeps to "fear",\n<script>x</script>', "weakest_turns": [4]}
}
# The second seed file's 1-5 criteria, mean over its two pairs (as imported).
IMPORTED = {"empathy_score": 4.95, "clarity_score": 4.7, "appropriateness_score": 4.95,
            "brand_voice_score": 4.55, "quality_source": "imported"}  # fmt: skip
ALL_SCORES = (
    "coherence_score", "relevance_score", "completeness_score", "quality_overall",
    "empathy_score", "clarity_score", "appropriateness_score", "brand_voice_score",
)  # fmt: skip


@pytest.fixture
def local(tmp_path: Path) -> LocalObjectStore:
    """The local backend: files are plain paths the consumers open."""
    return LocalObjectStore(tmp_path / "objects", base_url="http://test", signing_secret=b"s")


@pytest.fixture
async def owner(db: asyncpg.Pool) -> UUID:
    """A tenant."""
    async with acquire(db) as conn:
        return (await create_user(conn)).id


@pytest.fixture
async def convs(db: asyncpg.Pool, local: LocalObjectStore, owner: UUID) -> list[Conversation]:
    """Seed 1 judged (and a near-duplicate target), seed 2 as imported and linked to seed 1, a
    generated one with its structural score."""
    stored = await helpers.store_fixtures(db, local, owner)
    stored.append(await store_generated(db, local, owner, slug="gen"))
    judged, imported, _ = stored
    async with tenant_transaction(db, owner) as conn:
        rationale = json.dumps(RATIONALE)
        await set_scores(conn, judged.id, **JUDGED)
        await conn.execute(
            "UPDATE conversations SET judge_rationale = $2::text::jsonb WHERE id = $1",
            judged.id,
            rationale,
        )
        await set_scores(conn, imported.id, duplicate_of=judged.id, duplicate_similarity=0.83)
    return stored


@pytest.fixture
def worker(settings: Settings, db: asyncpg.Pool, local: LocalObjectStore) -> helpers.Worker:
    """Exporter resources on the local backend."""
    return helpers.resources(settings, db, local)


async def exported(
    db: asyncpg.Pool, worker: helpers.Worker, owner: UUID, **config: Any
) -> tuple[ExportLog, bytes]:
    export = await helpers.new_export(db, owner, helpers.config(scope="all", **config))
    await helpers.run(worker, export.id)
    done = await helpers.fetch_export(db, owner, export.id)
    assert done.status.value == "completed", done.error
    assert isinstance(worker.storage, LocalObjectStore)
    assert done.object_key
    return done, worker.storage.path_for(done.object_key).read_bytes()


def _by_id(records: list[dict[str, Any]], key: str = "conversation_id") -> dict[str, Any]:
    return {record[key]: record for record in records}


def _check_scores(fields: dict[str, Any], convs: list[Conversation]) -> None:
    """The judged, imported and generated rows' fields (a dict of conversation_id -> fields)."""
    judged, imported, generated = (fields[c.conversation_id] for c in convs)
    assert {k: judged[k] for k in JUDGED} == JUDGED
    assert judged["duplicate_of"] is None
    assert judged["duplicate_similarity"] is None
    assert {k: imported[k] for k in IMPORTED} == IMPORTED
    assert imported["coherence_score"] is None
    assert imported["quality_overall"] is None
    assert imported["duplicate_of"] == str(convs[0].id)
    assert imported["duplicate_similarity"] == 0.83
    assert generated["quality_source"] == "structural"
    assert all(generated[name] is None for name in ALL_SCORES)


@pytest.mark.parametrize("target", ["openai", "sharegpt"])
async def test_jsonl_metadata_carries_the_scores(
    db: asyncpg.Pool, worker: helpers.Worker, owner: UUID, convs: list[Conversation], target: str
) -> None:
    _, data = await exported(
        db, worker, owner, format="jsonl", target=target, include_metadata=True
    )
    lines = [json.loads(line)["metadata"] for line in data.decode().splitlines()]
    fields = _by_id(lines)
    _check_scores(fields, convs)
    assert fields[convs[0].conversation_id]["judge_rationale"] == RATIONALE
    frame = pandas.read_json(io.BytesIO(data), lines=True)
    assert len(frame) == 3


async def test_bedrock_lines_stay_without_metadata(
    db: asyncpg.Pool, worker: helpers.Worker, owner: UUID, convs: list[Conversation]
) -> None:
    _, data = await exported(db, worker, owner, format="jsonl", target="bedrock-claude")
    for line in data.decode().splitlines():
        record = json.loads(line)
        assert "metadata" not in record
        assert "quality_overall" not in line
        assert "judge" not in line


async def test_json_document_metadata_carries_the_scores(
    db: asyncpg.Pool, worker: helpers.Worker, owner: UUID, convs: list[Conversation]
) -> None:
    _, data = await exported(db, worker, owner, format="json", include_metadata=True)
    document = json.loads(data)
    elements = document["conversations"]
    fields = {e["conversation_id"]: e["metadata"] for e in elements}
    _check_scores(fields, convs)


async def test_json_without_quality_scores_leaves_them_out(
    db: asyncpg.Pool, worker: helpers.Worker, owner: UUID, convs: list[Conversation]
) -> None:
    _, data = await exported(
        db, worker, owner, format="json", include_metadata=True, include_quality_scores=False
    )
    metadata = json.loads(data)["conversations"][0]["metadata"]
    assert not {"quality_overall", "quality_source", "judge_rationale"} & set(metadata)
    assert {"duplicate_of", "duplicate_similarity"} <= set(metadata)


async def test_csv_columns_carry_the_scores(
    db: asyncpg.Pool, worker: helpers.Worker, owner: UUID, convs: list[Conversation]
) -> None:
    _, data = await exported(db, worker, owner, format="csv", include_metadata=True)
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    first: dict[str, dict[str, Any]] = {}
    for row in rows:
        first.setdefault(unescape_cell(row["conversation_id"]), row)
    numeric = (*ALL_SCORES, "duplicate_similarity", "judge_rubric_version")

    def typed(row: dict[str, str]) -> dict[str, Any]:
        out: dict[str, Any] = {k: (v or None) for k, v in row.items()}
        for name in numeric:
            if out[name] is not None:
                out[name] = float(out[name]) if name != "judge_rubric_version" else int(out[name])
        return out

    _check_scores({slug: typed(row) for slug, row in first.items()}, convs)
    frame = pandas.read_csv(io.BytesIO(data), encoding="utf-8-sig")
    seed_rows = sum(
        unescape_cell(row["conversation_id"]) == convs[0].conversation_id for row in rows
    )
    assert frame["quality_overall"].dropna().tolist() == [0.71] * seed_rows  # each of its turns


async def test_parquet_columns_carry_the_scores(
    db: asyncpg.Pool, worker: helpers.Worker, owner: UUID, convs: list[Conversation]
) -> None:
    _, data = await exported(db, worker, owner, format="parquet", include_metadata=True)
    table = pq.read_table(io.BytesIO(data))
    assert str(table.schema.field("quality_overall").type) == "double"
    assert str(table.schema.field("judge_rubric_version").type) == "int32"
    fields = _by_id(table.to_pylist())
    _check_scores(fields, convs)
    assert json.loads(fields[convs[0].conversation_id]["judge_rationale"]) == RATIONALE
    assert fields[convs[1].conversation_id]["judge_rationale"] is None


async def test_markdown_lists_the_scores(
    db: asyncpg.Pool, worker: helpers.Worker, owner: UUID, convs: list[Conversation]
) -> None:
    _, data = await exported(db, worker, owner, format="markdown", include_metadata=True)
    text = data.decode()
    judged, imported, generated = text.split("\n---\n\n")
    assert "- **Quality source:** judge\n" in judged
    assert (
        "- **Judge scores (0-1):** coherence 0.9, relevance 0.7, completeness 0.35, "
        "quality_overall 0.71\n"
    ) in judged
    assert (
        "- **Criteria (1-5):** empathy 4.5, clarity 2.25, appropriateness 5, brand_voice 1\n"
        in (judged)
    )
    assert "- **Rubric version:** 3\n" in judged
    assert "- **Quality source:** imported\n" in imported
    assert "Judge scores" not in imported
    assert f"- **Near-duplicate of:** {convs[0].id} (similarity 0.83)\n" in imported
    assert "- **Quality source:** structural\n" in generated


async def test_txt_has_a_scores_line(
    db: asyncpg.Pool, worker: helpers.Worker, owner: UUID, convs: list[Conversation]
) -> None:
    _, data = await exported(db, worker, owner, format="txt", include_metadata=True)
    lines = data.decode().split("\n")
    scores = [line for line in lines if line.startswith("scores: ")]
    assert scores[0] == (
        "scores: quality 7.1 (judge) | coherence 0.9, "
        "relevance 0.7, completeness 0.35, quality_overall 0.71 | empathy 4.5, clarity 2.25, "
        "appropriateness 5, brand_voice 1 | rubric v3"
    )
    assert scores[1].endswith("(imported) | empathy 4.95, clarity 4.7, appropriateness 4.95, "
                              "brand_voice 4.55")  # fmt: skip
    assert scores[2].endswith("(structural)")
    plain = await exported(db, worker, owner, format="txt")
    assert b"scores: " not in plain[1]


async def test_a_filtered_export_takes_the_score_filters(
    db: asyncpg.Pool, worker: helpers.Worker, owner: UUID, convs: list[Conversation]
) -> None:
    filters = ConversationFilters(quality_overall_min=0.7, quality_source=[QualitySource.JUDGE])
    export = await helpers.new_export(
        db, owner, helpers.config(scope="filtered", format="jsonl", include_metadata=True),
        filters=filters,
    )  # fmt: skip
    await helpers.run(worker, export.id)
    done = await helpers.fetch_export(db, owner, export.id)
    assert done.status.value == "completed", done.error
    assert done.conversation_count == 1
    imported = ConversationFilters(quality_source=[QualitySource.IMPORTED], empathy_score_min=4.9)
    second = await helpers.new_export(
        db, owner, helpers.config(scope="filtered", format="csv"), filters=imported
    )
    await helpers.run(worker, second.id)
    finished = await helpers.fetch_export(db, owner, second.id)
    assert finished.conversation_count == 1
    assert isinstance(worker.storage, LocalObjectStore)
    assert finished.object_key
    text = worker.storage.path_for(finished.object_key).read_bytes().decode("utf-8-sig")
    assert {row["conversation_id"] for row in csv.DictReader(io.StringIO(text))} == {
        convs[1].conversation_id
    }
