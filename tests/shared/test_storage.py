"""One storage contract, run over the local backend and an S3 server on loopback."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from botocore.exceptions import ClientError
from pydantic import SecretStr

from shared.settings import Settings
from shared.storage import (
    LocalObjectStore,
    ObjectMissing,
    ObjectStore,
    S3ObjectStore,
    StorageError,
    open_storage,
)
from shared.storage.base import StaleUploadSweep
from shared.storage.s3 import ABORT_INCOMPLETE_UPLOADS_RULE_ID
from tests.conftest import s3_settings
from tests.support.storage import stale_partial_file

MIB = 1024 * 1024


def _key(name: str) -> str:
    return f"contract/{uuid.uuid4().hex}/{name}"


async def _chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def test_put_get_head_delete(storage: ObjectStore) -> None:
    key = _key("doc.json")
    payload = '{"text": "quotes \\" commas, newlines\\n emoji 🎉"}'.encode()
    await storage.put(key, payload, content_type="application/json")
    assert await storage.get(key) == payload
    info = await storage.head(key)
    assert info is not None
    assert (info.key, info.size) == (key, len(payload))
    await storage.delete(key)
    assert await storage.head(key) is None
    await storage.delete(key)  # deleting twice is fine


async def test_missing_object(storage: ObjectStore) -> None:
    key = _key("nothing")
    with pytest.raises(ObjectMissing):
        await storage.get(key)
    with pytest.raises(ObjectMissing):
        async for _ in storage.stream(key):
            pass
    assert await storage.head(key) is None


async def test_stream_returns_every_byte(storage: ObjectStore) -> None:
    key = _key("big.bin")
    data = os.urandom(3 * MIB + 17)
    await storage.put(key, data)
    received = b"".join([chunk async for chunk in storage.stream(key, chunk_size=MIB)])
    assert received == data


async def test_multipart_upload_from_async_iterator(storage: ObjectStore) -> None:
    key = _key("export.jsonl")
    data = os.urandom(11 * MIB + 5)
    result = await storage.upload_stream(key, _chunks(data, 300_000), part_size=5 * MIB)
    assert result.size == len(data)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    if isinstance(storage, S3ObjectStore):
        assert result.parts == 3
    assert await storage.get(key) == data


async def test_small_stream_upload(storage: ObjectStore) -> None:
    key = _key("tiny.txt")
    result = await storage.upload_stream(key, _chunks(b"hello", 2))
    assert (result.size, await storage.get(key)) == (5, b"hello")


async def test_empty_stream_upload(storage: ObjectStore) -> None:
    key = _key("empty.txt")
    result = await storage.upload_stream(key, _chunks(b"", 1))
    assert result.size == 0
    assert await storage.get(key) == b""


async def test_failed_upload_leaves_nothing(storage: ObjectStore) -> None:
    key = _key("broken.jsonl")

    async def failing() -> AsyncIterator[bytes]:
        yield os.urandom(6 * MIB)
        raise RuntimeError("source died mid-export")

    with pytest.raises(RuntimeError, match="source died"):
        await storage.upload_stream(key, failing(), part_size=5 * MIB)
    assert await storage.head(key) is None
    if isinstance(storage, S3ObjectStore):
        uploads = await storage._client.list_multipart_uploads(Bucket=storage.bucket)
        assert [u for u in uploads.get("Uploads", []) if u["Key"] == key] == []
    if isinstance(storage, LocalObjectStore):
        assert list((storage.root / ".partial").iterdir()) == []


async def test_cancelled_upload_leaves_nothing(storage: ObjectStore) -> None:
    key = _key("cancelled.jsonl")
    started = asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield b"x" * 1024
        started.set()
        await asyncio.sleep(30)
        yield b"never"

    task = asyncio.create_task(storage.upload_stream(key, slow()))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await storage.head(key) is None


async def test_list_by_prefix(storage: ObjectStore) -> None:
    prefix = _key("")
    keys = [f"{prefix}a/1.json", f"{prefix}a/2.json", f"{prefix}b/3.json"]
    for key in keys:
        await storage.put(key, b"{}")
    found = [info.key async for info in storage.list_prefix(f"{prefix}a/")]
    assert found == keys[:2]
    everything = [info.key async for info in storage.list_prefix(prefix)]
    assert everything == keys


async def test_keys_cannot_escape_local_root(storage: ObjectStore) -> None:
    if not isinstance(storage, LocalObjectStore):
        pytest.skip("path traversal only concerns the local backend")
    for bad in ["../outside", "/etc/passwd", "a/../../x", ".partial/x"]:
        with pytest.raises(Exception, match="invalid object key"):
            await storage.put(bad, b"x")


async def test_presigned_url_serves_the_object(storage: ObjectStore) -> None:
    if not isinstance(storage, S3ObjectStore):
        pytest.skip("local links are served by the API: see tests/api/test_files.py")
    key = _key("download.json")
    await storage.put(key, b'{"ok": true}')
    url = await storage.presign_get(key, expires_in=60, filename="data.json")
    async with httpx.AsyncClient() as http:
        response = await http.get(url)
    assert response.status_code == 200
    assert response.content == b'{"ok": true}'
    assert 'filename="data.json"' in response.headers.get("content-disposition", "")


async def test_presigned_url_expires(storage: ObjectStore) -> None:
    if not isinstance(storage, S3ObjectStore):
        pytest.skip("local expiry is tested through the API")
    if os.environ.get("S3_TEST_BACKEND") != "swift":
        pytest.skip("moto does not enforce presigned-URL expiry; run with S3_TEST_BACKEND=swift")
    key = _key("expiring.json")
    await storage.put(key, b"{}")
    url = await storage.presign_get(key, expires_in=1)
    await asyncio.sleep(2.5)
    async with httpx.AsyncClient() as http:
        response = await http.get(url)
    assert response.status_code == 403


async def test_check_reports_reachable(storage: ObjectStore) -> None:
    await storage.check()


# --- leftovers of writers that died mid-upload ------------------------------------------------


async def _listed_uploads(store: S3ObjectStore, prefix: str = "") -> dict[str, datetime]:
    """Upload id → `Initiated` as the server reports it (moto reports a fixed 2010 date)."""
    listing = await store._client.list_multipart_uploads(Bucket=store.bucket, Prefix=prefix)
    return {upload["UploadId"]: upload["Initiated"] for upload in listing.get("Uploads", [])}


async def _abandon_multipart_upload(store: S3ObjectStore, key: str) -> str:
    """What an exporter killed mid-export leaves on S3: an upload with a part, never finished."""
    created = await store._client.create_multipart_upload(Bucket=store.bucket, Key=key)
    upload_id: str = created["UploadId"]
    await store._client.upload_part(
        Bucket=store.bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=b"x" * 1024
    )
    return upload_id


async def test_stale_multipart_uploads_are_aborted_and_recent_ones_kept(
    storage: ObjectStore,
) -> None:
    if not isinstance(storage, S3ObjectStore):
        pytest.skip("multipart uploads are S3's; the local backend's partial files: below")
    key = _key("abandoned.jsonl")
    upload_id = await _abandon_multipart_upload(storage, key)
    initiated = (await _listed_uploads(storage))[upload_id]

    # Started after the cutoff: possibly still running, left alone.
    kept = await storage.abort_stale_uploads(started_before=initiated - timedelta(minutes=1))
    assert kept.recent >= 1
    assert upload_id in await _listed_uploads(storage)

    swept = await storage.abort_stale_uploads(started_before=initiated + timedelta(seconds=1))
    assert swept.aborted >= 1
    assert swept.failed == 0
    assert upload_id not in await _listed_uploads(storage)
    with pytest.raises(ClientError, match="NoSuchUpload"):  # its parts are gone too
        await storage._client.list_parts(Bucket=storage.bucket, Key=key, UploadId=upload_id)
    assert await storage.head(key) is None


async def test_stale_partial_files_are_removed_and_recent_ones_kept(
    storage: ObjectStore,
) -> None:
    if not isinstance(storage, LocalObjectStore):
        pytest.skip("partial files are the local backend's; S3's multipart uploads: above")
    stale = stale_partial_file(storage, age=timedelta(hours=2))
    fresh = stale_partial_file(storage, age=timedelta(minutes=5))
    stray = storage.root / ".partial" / "not-a-file"
    stray.mkdir()  # only files are ever written there: anything else is not touched

    sweep = await storage.abort_stale_uploads(started_before=datetime.now(UTC) - timedelta(hours=1))

    assert sweep == StaleUploadSweep(aborted=1, recent=1, failed=0)
    assert not stale.exists()
    assert fresh.exists()
    assert stray.is_dir()


async def test_a_running_upload_survives_a_sweep(storage: ObjectStore) -> None:
    key = _key("running.jsonl")
    data = os.urandom(6 * MIB)
    resume = asyncio.Event()
    started = asyncio.Event()

    async def producer() -> AsyncIterator[bytes]:
        yield data[: 5 * MIB]
        started.set()
        await resume.wait()
        yield data[5 * MIB :]

    task = asyncio.create_task(storage.upload_stream(key, producer(), part_size=5 * MIB))
    await started.wait()
    if isinstance(storage, S3ObjectStore):
        # moto dates every upload 2010: take the server's own word for when this one started.
        (started_at,) = (await _listed_uploads(storage, key)).values()
    else:
        started_at = datetime.now(UTC) - timedelta(seconds=30)
    sweep = await storage.abort_stale_uploads(started_before=started_at)
    assert sweep.recent >= 1
    assert sweep.aborted == 0
    resume.set()
    result = await task
    assert result.size == len(data)
    assert await storage.get(key) == data


async def test_one_failed_abort_does_not_stop_the_sweep(
    storage: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    if isinstance(storage, S3ObjectStore):
        stuck_key, gone_key = _key("stuck.jsonl"), _key("gone.jsonl")
        stuck = await _abandon_multipart_upload(storage, stuck_key)
        gone = await _abandon_multipart_upload(storage, gone_key)
        real_abort = storage._client.abort_multipart_upload

        async def refusing_abort(**kwargs: str) -> object:
            if kwargs["UploadId"] == stuck:
                error = {"Error": {"Code": "AccessDenied", "Message": "no"}}
                raise ClientError(error, "AbortMultipartUpload")
            return await real_abort(**kwargs)

        monkeypatch.setattr(storage._client, "abort_multipart_upload", refusing_abort)
        sweep = await storage.abort_stale_uploads(started_before=datetime.now(UTC))
        listed = await _listed_uploads(storage)
        assert stuck in listed
        assert gone not in listed
        monkeypatch.undo()
        await storage._client.abort_multipart_upload(
            Bucket=storage.bucket, Key=stuck_key, UploadId=stuck
        )
    else:
        assert isinstance(storage, LocalObjectStore)
        stuck_path = stale_partial_file(storage, age=timedelta(hours=2))
        gone_path = stale_partial_file(storage, age=timedelta(hours=2))
        real_unlink = os.unlink

        def refusing_unlink(path: str) -> None:
            if path == str(stuck_path):
                raise PermissionError(13, "Permission denied", path)
            real_unlink(path)

        monkeypatch.setattr("shared.storage.local.os.unlink", refusing_unlink)
        sweep = await storage.abort_stale_uploads(started_before=datetime.now(UTC))
        assert stuck_path.exists()
        assert not gone_path.exists()
    assert sweep.failed == 1
    assert sweep.aborted >= 1


async def test_sweep_of_an_unreachable_store_raises(
    storage: ObjectStore, settings: Settings, request: pytest.FixtureRequest
) -> None:
    broken: ObjectStore
    if isinstance(storage, S3ObjectStore):
        s3 = s3_settings(settings, request.getfixturevalue("s3_config"))
        broken = await _open_s3(s3, bucket=f"cf-missing-{uuid.uuid4().hex[:12]}", create=False)
    else:
        assert isinstance(storage, LocalObjectStore)
        broken = LocalObjectStore(storage.root / "nested", base_url="x", signing_secret=b"x")
        partial = storage.root / "nested" / ".partial"
        partial.rmdir()
        partial.write_bytes(b"not a directory")
    try:
        with pytest.raises(StorageError):
            await broken.abort_stale_uploads(started_before=datetime.now(UTC))
    finally:
        await broken.close()


# --- the bucket's own lifecycle rule ----------------------------------------------------------

ABORT_RULE = {
    "ID": ABORT_INCOMPLETE_UPLOADS_RULE_ID,
    "Filter": {"Prefix": ""},
    "Status": "Enabled",
    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
}


async def _open_s3(settings: Settings, *, bucket: str, create: bool) -> S3ObjectStore:
    def secret(value: SecretStr | None) -> str | None:
        return value.get_secret_value() if value else None

    return await S3ObjectStore.open(
        bucket=bucket,
        endpoint_url=settings.s3_endpoint_url,
        region=settings.s3_region,
        access_key_id=secret(settings.s3_access_key_id),
        secret_access_key=secret(settings.s3_secret_access_key),
        create_bucket=create,
    )


@pytest.fixture
def lifecycle_s3(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    """S3 settings for tests that make buckets of their own (moto; Swift has no lifecycle)."""
    if os.environ.get("S3_TEST_BACKEND") == "swift":
        pytest.skip("Swift's s3api has no bucket lifecycle configuration")
    return s3_settings(settings, request.getfixturevalue("s3_config"))


async def _rules(store: S3ObjectStore) -> list[dict[str, object]]:
    config = await store._client.get_bucket_lifecycle_configuration(Bucket=store.bucket)
    rules: list[dict[str, object]] = config["Rules"]
    return rules


async def test_created_bucket_aborts_incomplete_uploads_itself(lifecycle_s3: Settings) -> None:
    store = await _open_s3(lifecycle_s3, bucket=f"cf-lc-{uuid.uuid4().hex[:12]}", create=True)
    try:
        assert await _rules(store) == [ABORT_RULE]
        await store.ensure_bucket()  # every process start: nothing changes, nothing fails
        assert await _rules(store) == [ABORT_RULE]
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("stale_age_seconds", "days"), [(6 * 3600, 1), (86_400, 1), (86_401, 2), (3 * 86_400, 3)]
)
async def test_bucket_rule_never_aborts_sooner_than_the_janitor(
    lifecycle_s3: Settings, stale_age_seconds: int, days: int
) -> None:
    """open_storage derives the rule's days from JANITOR_STALE_UPLOAD_AGE_SECONDS (which must
    exceed the export job timeout), so a long export timeout lengthens the bucket rule too."""
    configured = lifecycle_s3.model_copy(
        update={
            "s3_bucket": f"cf-lc-{uuid.uuid4().hex[:12]}",
            "s3_create_bucket": True,
            "janitor_stale_upload_age_seconds": stale_age_seconds,
            "export_job_timeout_seconds": stale_age_seconds - 60,
        }
    )
    store = await open_storage(configured)
    assert isinstance(store, S3ObjectStore)
    try:
        assert await _rules(store) == [
            {**ABORT_RULE, "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": days}}
        ]
    finally:
        await store.close()


async def test_existing_lifecycle_configuration_is_never_changed(lifecycle_s3: Settings) -> None:
    store = await _open_s3(lifecycle_s3, bucket=f"cf-lc-{uuid.uuid4().hex[:12]}", create=False)
    try:
        await store._client.create_bucket(Bucket=store.bucket)
        theirs = {"ID": "expire-tmp", "Filter": {"Prefix": "tmp/"}, "Status": "Enabled",
                  "Expiration": {"Days": 7}}  # fmt: skip
        await store._client.put_bucket_lifecycle_configuration(
            Bucket=store.bucket, LifecycleConfiguration={"Rules": [theirs]}
        )
        await store.ensure_bucket()
        assert await _rules(store) == [theirs]
        # A bucket that exists without any configuration (made before this rule existed) gets it.
        await store._client.delete_bucket_lifecycle(Bucket=store.bucket)
        await store.ensure_bucket(abort_incomplete_after_days=3)
        assert await _rules(store) == [
            {**ABORT_RULE, "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 3}}
        ]
    finally:
        await store.close()
