"""The object-storage interface both backends implement."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class ObjectInfo:
    """What a listing or a head request tells about one object."""

    key: str
    size: int
    last_modified: datetime
    content_type: str | None = None


@dataclass(frozen=True)
class UploadResult:
    """The outcome of a streamed (multipart) upload."""

    key: str
    size: int
    sha256: str
    parts: int


@dataclass(frozen=True)
class StaleUploadSweep:
    """What `ObjectStore.abort_stale_uploads` did, by outcome."""

    aborted: int = 0  # S3 multipart uploads aborted, local partial files removed
    recent: int = 0  # younger than the cutoff: possibly still being written, left alone
    failed: int = 0  # could not be aborted or removed (logged); the next sweep tries again


class StorageError(Exception):
    """The storage backend failed (network, permissions, missing bucket)."""


class ObjectMissing(StorageError):
    """The key does not exist."""


class ObjectStore(Protocol):
    """Put, get, stream, multipart-upload, delete, list, head and sign objects; sweep leftovers."""

    name: str

    async def put(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str = "application/octet-stream",
        content_encoding: str | None = None,
    ) -> None:
        """Store `data` under `key`, replacing any object there."""

    async def get(self, key: str) -> bytes:
        """The whole object; raises ObjectMissing."""

    def stream(self, key: str, *, chunk_size: int = 1024 * 1024) -> AsyncIterator[bytes]:
        """The object in chunks; raises ObjectMissing on first iteration."""

    async def upload_stream(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        content_type: str = "application/octet-stream",
        content_encoding: str | None = None,
        part_size: int = 8 * 1024 * 1024,
    ) -> UploadResult:
        """Upload from an async iterator; nothing is visible under `key` unless all of it is."""

    async def delete(self, key: str) -> None:
        """Remove `key`; a missing key is not an error."""

    def list_prefix(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        """Every object whose key starts with `prefix`."""

    async def head(self, key: str) -> ObjectInfo | None:
        """Size and time of `key`, or None when it does not exist."""

    async def abort_stale_uploads(self, *, started_before: datetime) -> StaleUploadSweep:
        """Discard unfinished `upload_stream` leftovers of writers that died.

        S3: multipart uploads initiated before `started_before` (an aware datetime) are
        aborted. Local: files in the partial directory last written before it are removed.
        Younger ones may belong to a running upload and are left alone, so the cutoff must lie
        further back than any upload can last. One failed abort is logged and counted, never
        raised; StorageError only when the backend cannot be listed at all.
        """

    async def abort_upload(self, key: str) -> int:
        """Discard every unfinished `upload_stream` to `key` (a dead writer's); returns how many.

        S3: its multipart uploads are aborted. Local: its partial files are removed.
        """

    async def presign_get(self, key: str, *, expires_in: int, filename: str | None = None) -> str:
        """A URL anyone can GET until it expires (with a download filename when given)."""

    async def check(self) -> None:
        """Raise StorageError when the backend cannot be reached."""

    async def close(self) -> None:
        """Release connections."""
