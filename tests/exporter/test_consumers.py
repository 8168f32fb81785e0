"""Real consumers load the files of real export runs: `datasets`, pyarrow, pandas, polars,
duckdb, Python csv; hostile text survives byte for byte; splits are zips a hub can load."""

from __future__ import annotations

import csv
import io
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from uuid import UUID

import asyncpg
import duckdb
import pandas
import polars
import pyarrow.parquet as pq
import pytest

from shared.db.pool import acquire, tenant_transaction
from shared.db.repositories import conversations as conversations_repo
from shared.exports.formats.csv_format import unescape_cell
from shared.models.conversation import Conversation
from shared.models.export import ExportLog
from shared.settings import Settings
from shared.storage import LocalObjectStore
from tests.exporter import helpers
from tests.exporter.generated import store_generated
from tests.support.factories import create_user

Turns = list[tuple[str, str]]
SPEAKER = {"human": "user", "gpt": "assistant", "system": "system"}


@pytest.fixture(scope="session")
def hf_datasets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """`datasets`, imported once (slow), offline, caching under a temporary directory."""
    saved = {k: os.environ.get(k) for k in ("HF_DATASETS_OFFLINE", "HF_HOME")}
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    os.environ["HF_HOME"] = str(tmp_path_factory.mktemp("hf"))
    import datasets

    datasets.disable_progress_bars()
    yield datasets
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


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
    """The kit's seeds, the hostile conversation, a generated one."""
    stored = await helpers.store_fixtures(db, local, owner)
    stored.append(await helpers.store_hostile(db, local, owner))
    stored.append(await store_generated(db, local, owner, slug="gen"))
    return stored


@pytest.fixture
def worker(settings: Settings, db: asyncpg.Pool, local: LocalObjectStore) -> helpers.Worker:
    """Exporter resources on the local backend."""
    return helpers.resources(settings, db, local)


async def expected(pool: asyncpg.Pool, owner: UUID, convs: list[Conversation]) -> list[Turns]:
    """Every conversation's turns as stored (system prompt first), in export order."""
    out = []
    async with tenant_transaction(pool, owner) as conn:
        for conv in sorted(convs, key=lambda c: (c.created_at, c.id)):
            pairs = [
                (t.role.value, t.content) for t in await conversations_repo.turns(conn, conv.id)
            ]
            if conv.system_prompt and all(role != "system" for role, _ in pairs):
                pairs.insert(0, ("system", conv.system_prompt))
            out.append(pairs)
    return out


async def exported(
    db: asyncpg.Pool, worker: helpers.Worker, owner: UUID, **config: Any
) -> tuple[ExportLog, Path]:
    """Run an export of everything; its row and its file's path."""
    export = await helpers.new_export(db, owner, helpers.config(scope="all", **config))
    await helpers.run(worker, export.id)
    done = await helpers.fetch_export(db, owner, export.id)
    assert done.status.value == "completed", done.error
    assert isinstance(worker.storage, LocalObjectStore)
    assert done.object_key
    return done, worker.storage.path_for(done.object_key)


def messages_of(record: dict[str, Any]) -> Turns:
    """(role, content) of any target's record."""
    if "conversations" in record:
        return [(SPEAKER[e["from"]], e["value"]) for e in record["conversations"]]
    turns = [(m["role"], m["content"]) for m in record["messages"]]
    return [("system", record["system"]), *turns] if "system" in record else turns


@pytest.mark.parametrize("target", ["openai", "bedrock-claude", "sharegpt", "trl"])
async def test_jsonl_targets_load_everywhere_byte_exact(
    db: asyncpg.Pool,
    worker: helpers.Worker,
    owner: UUID,
    convs: list[Conversation],
    hf_datasets: ModuleType,
    target: str,
) -> None:
    done, path = await exported(db, worker, owner, format="jsonl", target=target)
    want = await expected(db, owner, convs)
    rows = hf_datasets.load_dataset("json", data_files=str(path), split="train").to_list()
    assert [messages_of(r) for r in rows] == want
    assert [messages_of(r) for r in pandas.read_json(path, lines=True).to_dict("records")] == want
    assert [messages_of(r) for r in polars.read_ndjson(path).to_dicts()] == want
    relation = duckdb.sql(f"SELECT count(*) FROM read_json_auto('{path}')")
    assert relation is not None
    count = relation.fetchall()
    assert count == [(done.conversation_count,)]


@pytest.mark.parametrize("metadata", [True, False], ids=["metadata", "plain"])
async def test_parquet_loads_everywhere_byte_exact(
    db: asyncpg.Pool,
    worker: helpers.Worker,
    owner: UUID,
    convs: list[Conversation],
    hf_datasets: ModuleType,
    metadata: bool,
) -> None:
    # Without metadata PostgreSQL reads the turns as column pieces (parquet.COLUMNS_SQL).
    names = ("include_metadata", "include_approval_history", "include_parent_references",
             "include_timestamps")  # fmt: skip
    flags = dict.fromkeys(names, metadata)
    done, path = await exported(db, worker, owner, format="parquet", **flags)
    want = await expected(db, owner, convs)
    table = pq.read_table(path)
    assert [messages_of(r) for r in table.to_pylist()] == want
    rows = hf_datasets.load_dataset("parquet", data_files=str(path), split="train").to_list()
    assert [messages_of(r) for r in rows] == want
    assert [messages_of(r) for r in polars.read_parquet(path).to_dicts()] == want
    frame = pandas.read_parquet(path)
    assert list(frame["tier"]) == [r["tier"] for r in table.to_pylist()]
    relation = duckdb.sql(f"SELECT tier, count(*) FROM read_parquet('{path}') GROUP BY 1")
    assert relation is not None
    tiers = relation.fetchall()
    assert dict(tiers) == done.tier_distribution
    generated = table.to_pylist()[-1]
    if not metadata:
        assert table.column_names == ["conversation_id", "title", "status", "tier", "messages"]
        return
    assert UUID(generated["template_id"])
    assert generated["approval_history"][-1]["action"]


async def test_csv_reads_back_exactly_with_the_reverse_rule(
    db: asyncpg.Pool, worker: helpers.Worker, owner: UUID, convs: list[Conversation]
) -> None:
    _, path = await exported(db, worker, owner, format="csv")
    rows = list(csv.DictReader(io.StringIO(path.read_bytes().decode("utf-8-sig"), newline="")))
    got: dict[str, Turns] = {}
    for row in rows:
        got.setdefault(row["conversation_id"], []).append(
            (row["role"], unescape_cell(row["content"]))
        )
    assert list(got.values()) == await expected(db, owner, convs)
    frame = pandas.read_csv(path, encoding="utf-8-sig", keep_default_na=False)
    assert [unescape_cell(c) for c in frame["content"]] == [t[1] for ts in got.values() for t in ts]


async def test_split_zip_is_deterministic_stratified_and_loads_as_a_hub_folder(
    db: asyncpg.Pool,
    local: LocalObjectStore,
    worker: helpers.Worker,
    owner: UUID,
    convs: list[Conversation],
    hf_datasets: ModuleType,
    tmp_path: Path,
) -> None:
    for conv in convs[:2]:
        await helpers.clone(db, owner, conv.id, 19)
    split = {"validation": 0.25, "seed": 7, "stratify": "tier"}
    config = {"format": "jsonl", "target": "trl", "split": split, "dataset_card": True,
              "license": "cc-by-4.0"}  # fmt: skip
    first, first_path = await exported(db, worker, owner, **config)
    _second, second_path = await exported(db, worker, owner, **config)
    _other, other_path = await exported(
        db, worker, owner, **{**config, "split": {**split, "seed": 8}}
    )
    assert first.file_name
    assert first.file_name.endswith(".zip")
    members = read_zip(first_path)
    assert sorted(members) == ["README.md", "train.jsonl", "validation.jsonl"]
    again = read_zip(second_path)
    # Same seed, same data: the same split (the card differs only in its export date).
    assert (members["train.jsonl"], members["validation.jsonl"]) == (
        again["train.jsonl"],
        again["validation.jsonl"],
    )
    assert members["validation.jsonl"] != read_zip(other_path)["validation.jsonl"]
    # Per tier, a quarter rounded: template 20 -> 5, edge_case 21 -> 5, scenario 1 -> 0.
    assert first.split_counts == {"train": 32, "validation": 10}
    assert sum(first.split_counts.values()) == first.conversation_count == 42
    folder = tmp_path / "hub"
    zipfile.ZipFile(first_path).extractall(folder)
    loaded = hf_datasets.load_dataset(str(folder))
    assert {name: len(part) for name, part in loaded.items()} == first.split_counts
    card = members["README.md"].decode()
    assert card.startswith("---\nlicense: cc-by-4.0\n")
    assert "  - split: validation\n    path: validation.jsonl" in card
    assert "| tier | train | validation |" in card
    assert '"seed": 7' in card
    assert "| template | 15 | 5 |\n" in card
    assert "| scenario | 1 | 0 |\n" in card


def read_zip(path: Path) -> dict[str, bytes]:
    """Every member of a zip."""
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}
