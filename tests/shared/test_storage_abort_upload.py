"""abort_upload(key): an export restarting from scratch removes its dead run's unfinished upload."""

from __future__ import annotations

import uuid

from shared.storage import LocalObjectStore, ObjectStore, S3ObjectStore


def _key(name: str) -> str:
    return f"contract/{uuid.uuid4().hex}/{name}"


async def _uploads(store: S3ObjectStore, prefix: str) -> list[str]:
    listing = await store._client.list_multipart_uploads(Bucket=store.bucket, Prefix=prefix)
    return [upload["Key"] for upload in listing.get("Uploads", [])]


async def _leave_unfinished_upload(store: ObjectStore, key: str) -> None:
    """What a writer killed mid-upload leaves behind."""
    if isinstance(store, S3ObjectStore):
        created = await store._client.create_multipart_upload(Bucket=store.bucket, Key=key)
        await store._client.upload_part(
            Bucket=store.bucket, Key=key, UploadId=created["UploadId"], PartNumber=1, Body=b"x"
        )
    else:
        assert isinstance(store, LocalObjectStore)
        store._partial(key).write_bytes(b'{"partial": "line"}\n{"cut')


async def _unfinished(store: ObjectStore, key: str) -> int:
    if isinstance(store, S3ObjectStore):
        return (await _uploads(store, key)).count(key)
    assert isinstance(store, LocalObjectStore)
    tag = store._partial(key).name.split("-")[0]
    return len(list((store.root / ".partial").glob(f"{tag}-*")))


async def test_abort_upload_removes_that_keys_unfinished_uploads_only(
    storage: ObjectStore,
) -> None:
    key = _key("export.jsonl")
    neighbour = key + ".gz"  # a longer key with the same prefix is not the same upload
    await _leave_unfinished_upload(storage, key)
    await _leave_unfinished_upload(storage, key)
    await _leave_unfinished_upload(storage, neighbour)

    assert await storage.abort_upload(key) == 2

    assert await _unfinished(storage, key) == 0
    assert await _unfinished(storage, neighbour) == 1
    assert await storage.abort_upload(key) == 0  # nothing left: not an error
    await storage.abort_upload(neighbour)
