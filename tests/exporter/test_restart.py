"""An export whose worker died mid-upload restarts from scratch: its partial upload goes first,
and its row says it restarted and why."""

from __future__ import annotations

import uuid
from pathlib import Path
from uuid import UUID

import asyncpg
import pytest

from shared.db.pool import acquire, tenant_transaction
from shared.db.repositories import exports as repo
from shared.exports import plan
from shared.settings import Settings
from shared.storage import LocalObjectStore, ObjectStore, S3ObjectStore
from tests.exporter import helpers
from tests.support.factories import create_user


@pytest.fixture
async def owner(db: asyncpg.Pool) -> UUID:
    """A tenant."""
    async with acquire(db) as conn:
        return (await create_user(conn)).id


async def _approved(db: asyncpg.Pool, owner: UUID, tmp_path: Path) -> None:
    raw = helpers.seed_bytes("restart", [('hello, "world"\n', "hi 🎉 <script>")] * 3)
    documents = LocalObjectStore(tmp_path / "docs", base_url="http://test", signing_secret=b"x")
    first = await helpers.store(db, documents, owner, raw, status="approved")
    await helpers.clone(db, owner, first.id, 2)


async def _unfinished_upload(store: ObjectStore, key: str) -> None:
    """What a worker killed by SIGKILL mid-upload leaves behind."""
    if isinstance(store, S3ObjectStore):
        created = await store._client.create_multipart_upload(Bucket=store.bucket, Key=key)
        await store._client.upload_part(
            Bucket=store.bucket, Key=key, UploadId=created["UploadId"], PartNumber=1, Body=b"x"
        )
    else:
        assert isinstance(store, LocalObjectStore)
        store._partial(key).write_bytes(b'{"messages": [{"role": "us')


async def _leftovers(store: ObjectStore, key: str) -> int:
    if isinstance(store, S3ObjectStore):
        listing = await store._client.list_multipart_uploads(Bucket=store.bucket, Prefix=key)
        return len(listing.get("Uploads", []))
    assert isinstance(store, LocalObjectStore)
    return await store.abort_upload(key)  # counts (and removes) what is left


async def test_a_dead_runs_export_restarts_from_scratch_and_removes_its_partial_upload(
    db: asyncpg.Pool, storage: ObjectStore, owner: UUID, settings: Settings, tmp_path: Path
) -> None:
    await _approved(db, owner, tmp_path)
    export = await helpers.new_export(db, owner, helpers.config(scope="all_approved"))
    dead_run = uuid.uuid4()
    dead_key = plan.object_key(export, dead_run)
    async with tenant_transaction(db, owner) as conn:
        assert await repo.claim(conn, export.id, dead_run, dead_key) is not None
    await _unfinished_upload(storage, dead_key)

    result = await helpers.run(helpers.resources(settings, db, storage), export.id)

    assert result["status"] == "completed"
    done = await helpers.fetch_export(db, owner, export.id)
    assert (done.restarts, done.attempts, done.conversation_count) == (1, 2, 3)
    assert done.restart_reason is not None
    assert done.restart_reason.startswith("restarted from scratch")
    assert done.object_key != dead_key
    assert await _leftovers(storage, dead_key) == 0
    assert await storage.head(dead_key) is None
    lines = (await helpers.read_file(storage, done)).decode().splitlines()
    assert len(lines) == 3


async def test_a_first_run_is_not_a_restart(
    db: asyncpg.Pool, storage: ObjectStore, owner: UUID, settings: Settings, tmp_path: Path
) -> None:
    await _approved(db, owner, tmp_path)
    export = await helpers.new_export(db, owner, helpers.config(scope="all_approved"))

    assert (await helpers.run(helpers.resources(settings, db, storage), export.id))[
        "status"
    ] == "completed"

    done = await helpers.fetch_export(db, owner, export.id)
    assert (done.restarts, done.restart_reason) == (0, None)
