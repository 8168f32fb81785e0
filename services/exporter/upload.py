"""Upload a chunk stream while the next chunks are being produced (bounded, so memory stays flat).

`ObjectStore.upload_stream` pulls chunks and, on S3, waits for each part to be sent before
pulling more. Running the producer as its own task behind a small queue lets rendering carry
on while a part is in flight; the queue's bound (`depth` chunks) keeps memory flat. Any
failure on either side ends both, and `upload_stream` aborts the multipart upload.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from shared.storage import ObjectStore, UploadResult

_DONE = object()


class _Failed:
    """Carries the producer's exception across the queue."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


async def upload_pipelined(
    storage: ObjectStore,
    key: str,
    chunks: AsyncIterator[bytes],
    *,
    content_type: str,
    part_size: int,
    depth: int = 2,
) -> UploadResult:
    """Upload `chunks` to `key`; nothing is visible under `key` unless all of it is."""
    queue: asyncio.Queue[object] = asyncio.Queue(maxsize=depth)

    async def produce() -> None:
        try:
            async for chunk in chunks:
                await queue.put(chunk)
        except Exception as exc:
            await queue.put(_Failed(exc))
            return
        await queue.put(_DONE)

    async def drain() -> AsyncIterator[bytes]:
        while True:
            item = await queue.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.exc
            assert isinstance(item, bytes)
            yield item

    producer = asyncio.create_task(produce())
    try:
        return await storage.upload_stream(
            key, drain(), content_type=content_type, part_size=part_size
        )
    finally:
        producer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await producer
