"""Exports interrupted half-way: a cancel or a storage failure leaves no object and says so;
changes made during an export do not leak into its snapshot. Reads are throttled
(EXPORT_MAX_CONVERSATIONS_PER_SECOND) so that "half-way" lasts long enough to act in."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import boto3  # type: ignore[import-untyped]
import pytest

from shared.db.pool import acquire, tenant_transaction
from shared.db.repositories import exports as repo
from shared.settings import Settings
from shared.storage import LocalObjectStore, ObjectStore, S3ObjectStore
from tests.conftest import s3_settings
from tests.exporter import helpers
from tests.support.factories import create_user

BIG_TURN = "x" * 10_000
COPIES = 39  # 40 conversations of ~200 KB: two multipart parts of 5 MiB


@pytest.fixture
async def owner(db: asyncpg.Pool) -> UUID:
    """A tenant."""
    async with acquire(db) as conn:
        return (await create_user(conn)).id


@pytest.fixture
async def big(db: asyncpg.Pool, owner: UUID, tmp_path: Path) -> list[UUID]:
    """40 approved conversations of 10 pairs of 10,000-character turns, oldest first."""
    raw = helpers.seed_bytes("big", [(BIG_TURN, BIG_TURN)] * 10)
    documents = LocalObjectStore(tmp_path / "docs", base_url="http://test", signing_secret=b"x")
    first = await helpers.store(db, documents, owner, raw, status="approved")
    return [first.id, *await helpers.clone(db, owner, first.id, COPIES)]


def slow(settings: Settings) -> Settings:
    """About two seconds for 40 conversations, small batches, quick heartbeats, 5 MiB parts."""
    return settings.model_copy(
        update={
            "export_batch_size": 4,
            "export_max_conversations_per_second": 20,
            "export_heartbeat_seconds": 0.05,
            "export_part_size_bytes": 5 * 1024 * 1024,
        }
    )


@pytest.fixture
def s3_client(s3_config: dict[str, str]) -> Any:
    """A plain boto3 client on the same S3 server, to look at multipart uploads."""
    return boto3.client(
        "s3",
        endpoint_url=s3_config["S3_ENDPOINT_URL"],
        aws_access_key_id=s3_config["S3_ACCESS_KEY_ID"],
        aws_secret_access_key=s3_config["S3_SECRET_ACCESS_KEY"],
        region_name=s3_config["S3_REGION"],
    )


def uploaded_parts(client: Any, bucket: str, prefix: str) -> int:
    """Parts already sent by unfinished multipart uploads under `prefix`."""
    uploads = client.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", [])
    return sum(
        len(client.list_parts(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"]).get("Parts", []))
        for u in uploads
    )


def pending_uploads(client: Any, bucket: str, prefix: str) -> list[Any]:
    """Multipart uploads neither completed nor aborted."""
    uploads: list[Any] = client.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get(
        "Uploads", []
    )
    return uploads


def partial_bytes(storage: LocalObjectStore) -> int:
    """Bytes in the local backend's files still being written."""
    return sum(path.stat().st_size for path in (storage.root / ".partial").iterdir())


async def wait_until(check: Callable[[], Awaitable[bool]]) -> None:
    """Poll until `check()` holds (ten seconds at most)."""
    async with asyncio.timeout(10):
        while not await check():  # noqa: ASYNC110 - polls another system's state
            await asyncio.sleep(0.02)


def mid_upload(storage: ObjectStore, client: Any, prefix: str) -> Callable[[], Awaitable[bool]]:
    """True once part of the file has been written but not finished."""

    async def check() -> bool:
        if isinstance(storage, LocalObjectStore):
            return partial_bytes(storage) > 0
        assert isinstance(storage, S3ObjectStore)
        return await asyncio.to_thread(uploaded_parts, client, storage.bucket, prefix) > 0

    return check


async def test_cancel_mid_upload_leaves_no_object(
    db: asyncpg.Pool, storage: ObjectStore, owner: UUID, big: list[UUID], settings: Settings,
    s3_client: Any,
) -> None:  # fmt: skip
    export = await helpers.new_export(db, owner, helpers.config(scope="all_approved"))
    prefix = f"exports/{owner}/{export.id}/"
    job = asyncio.create_task(
        helpers.run(helpers.resources(slow(settings), db, storage), export.id)
    )
    await wait_until(mid_upload(storage, s3_client, prefix))
    async with tenant_transaction(db, owner) as conn:  # what POST /v1/exports/{id}/cancel does
        assert await repo.cancel(conn, export.id) is not None
    result = await asyncio.wait_for(job, 10)
    assert result["status"] == "cancelled"
    done = await helpers.fetch_export(db, owner, export.id)
    assert done.status.value == "cancelled"
    assert done.progress_percent < 100
    assert [info async for info in storage.list_prefix(prefix)] == []
    if isinstance(storage, S3ObjectStore):
        assert pending_uploads(s3_client, storage.bucket, prefix) == []
    else:
        assert isinstance(storage, LocalObjectStore)
        assert partial_bytes(storage) == 0
    assert set((await helpers.export_counts(db, owner)).values()) == {0}


@pytest.fixture
def doomed_bucket(s3_client: Any) -> Iterator[str]:
    """A bucket of its own that the test deletes under a running export."""
    bucket = f"cf-doomed-{uuid.uuid4().hex[:10]}"
    yield bucket
    with contextlib.suppress(s3_client.exceptions.ClientError):
        s3_client.delete_bucket(Bucket=bucket)


@pytest.fixture
async def doomed_store(
    settings: Settings, s3_config: dict[str, str], doomed_bucket: str
) -> AsyncIterator[S3ObjectStore]:
    """The exporter's storage: S3, in the doomed bucket."""
    s3 = s3_settings(settings, {**s3_config, "S3_BUCKET": doomed_bucket})
    assert s3.s3_access_key_id is not None
    assert s3.s3_secret_access_key is not None
    store = await S3ObjectStore.open(
        bucket=doomed_bucket,
        endpoint_url=s3.s3_endpoint_url,
        region=s3.s3_region,
        access_key_id=s3.s3_access_key_id.get_secret_value(),
        secret_access_key=s3.s3_secret_access_key.get_secret_value(),
        create_bucket=True,
    )
    yield store
    await store.close()


async def test_bucket_disappearing_mid_upload_fails_the_export_with_the_reason(
    db: asyncpg.Pool, owner: UUID, big: list[UUID], settings: Settings, s3_client: Any,
    doomed_bucket: str, doomed_store: S3ObjectStore,
) -> None:  # fmt: skip
    export = await helpers.new_export(db, owner, helpers.config(scope="all", format="csv"))
    prefix = f"exports/{owner}/{export.id}/"
    worker = helpers.resources(slow(settings), db, doomed_store)
    job = asyncio.create_task(helpers.run(worker, export.id))
    await wait_until(mid_upload(doomed_store, s3_client, prefix))
    await asyncio.to_thread(s3_client.delete_bucket, Bucket=doomed_bucket)
    result = await asyncio.wait_for(job, 10)
    assert result["status"] == "failed"
    done = await helpers.fetch_export(db, owner, export.id)
    assert done.status.value == "failed"
    assert done.error is not None
    assert done.error.startswith("storage_error: ")
    assert "NoSuchBucket" in done.error
    await asyncio.to_thread(s3_client.create_bucket, Bucket=doomed_bucket)
    assert [info async for info in doomed_store.list_prefix("exports/")] == []
    assert pending_uploads(s3_client, doomed_bucket, "exports/") == []
    assert set((await helpers.export_counts(db, owner)).values()) == {0}


async def test_changes_during_an_export_stay_out_of_its_snapshot(
    db: asyncpg.Pool, owner: UUID, big: list[UUID], settings: Settings, tmp_path: Path
) -> None:
    config = helpers.config(scope="all_approved", include_metadata=True)
    export = await helpers.new_export(db, owner, config)
    storage = LocalObjectStore(tmp_path / "files", base_url="http://test", signing_secret=b"x")
    job = asyncio.create_task(
        helpers.run(helpers.resources(slow(settings), db, storage), export.id)
    )

    async def started() -> bool:
        return (await helpers.fetch_export(db, owner, export.id)).progress_percent > 0

    await wait_until(started)
    last = big[-1]
    newcomer = (await helpers.clone(db, owner, big[0], 1))[0]
    async with tenant_transaction(db, owner) as conn:
        await conn.execute("UPDATE conversations SET created_at = now() + interval '1 hour' "
                           "WHERE id = $1", newcomer)  # fmt: skip
        await conn.execute("UPDATE conversations SET title = 'renamed', deleted_at = now() "
                           "WHERE id = $1", last)  # fmt: skip
    assert (await asyncio.wait_for(job, 10))["status"] == "completed"
    done = await helpers.fetch_export(db, owner, export.id)
    lines = (await helpers.read_file(storage, done)).decode().split("\n")[:-1]
    titles = [json.loads(line)["metadata"]["title"] for line in lines]
    assert len(titles) == done.conversation_count == 40
    assert "renamed" not in titles
    counts = await helpers.export_counts(db, owner)
    assert counts[newcomer] == 0
    assert counts[last] == 1
