"""One storage contract, run over the local backend and an S3 server on loopback."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from shared.storage import LocalObjectStore, ObjectMissing, ObjectStore, S3ObjectStore

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
