"""Object storage in a local directory (the embedded default for one machine)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from stat import S_ISREG
from typing import Any, BinaryIO

from shared.logging import get_logger
from shared.storage.base import (
    ObjectInfo,
    ObjectMissing,
    StaleUploadSweep,
    StorageError,
    UploadResult,
)
from shared.storage.signing import sign_url

log = get_logger(__name__)

_PARTIAL_DIR = ".partial"


class LocalObjectStore:
    """Objects as files under `root`; writes land atomically by rename."""

    name = "local"

    def __init__(self, root: Path, *, base_url: str, signing_secret: bytes) -> None:
        self.root = root.resolve()
        self._base_url = base_url
        self._secret = signing_secret
        (self.root / _PARTIAL_DIR).mkdir(parents=True, exist_ok=True)

    def path_for(self, key: str) -> Path:
        """The file for `key`; refuses keys that would escape the root."""
        if not key or key.startswith("/") or "\\" in key:
            raise StorageError(f"invalid object key: {key!r}")
        path = (self.root / key).resolve()
        if self.root not in path.parents or _PARTIAL_DIR in path.relative_to(self.root).parts:
            raise StorageError(f"invalid object key: {key!r}")
        return path

    def _partial(self, key: str | None = None) -> Path:
        # Named after the key it will become, so a dead writer's leftover can be found by key.
        prefix = _key_tag(key) + "-" if key is not None else ""
        return self.root / _PARTIAL_DIR / f"{prefix}{uuid.uuid4().hex}"

    async def abort_upload(self, key: str) -> int:
        """Remove the partial files of unfinished uploads to `key`."""
        pattern = f"{_key_tag(key)}-*"
        return await asyncio.to_thread(self._remove_partials, pattern)

    def _remove_partials(self, pattern: str) -> int:
        removed = 0
        for path in (self.root / _PARTIAL_DIR).glob(pattern):
            path.unlink(missing_ok=True)
            removed += 1
        return removed

    async def put(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str = "application/octet-stream",
        content_encoding: str | None = None,
    ) -> None:
        """Write to a temporary file, then rename into place."""
        path = self.path_for(key)
        await asyncio.to_thread(self._write_atomic, path, data)

    def _write_atomic(self, path: Path, data: bytes) -> None:
        tmp = self._partial()
        tmp.write_bytes(data)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, path)

    async def get(self, key: str) -> bytes:
        """Read the whole file."""
        path = self.path_for(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError as exc:
            raise ObjectMissing(key) from exc

    async def stream(self, key: str, *, chunk_size: int = 1024 * 1024) -> AsyncIterator[bytes]:
        """Read the file in chunks off the event loop."""
        path = self.path_for(key)
        try:
            handle = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError as exc:
            raise ObjectMissing(key) from exc
        try:
            while chunk := await asyncio.to_thread(handle.read, chunk_size):
                yield chunk
        finally:
            handle.close()

    async def upload_stream(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        content_type: str = "application/octet-stream",
        content_encoding: str | None = None,
        part_size: int = 8 * 1024 * 1024,
    ) -> UploadResult:
        """Write chunks to a partial file; rename only after the last one."""
        path = self.path_for(key)
        tmp = self._partial(key)
        digest = hashlib.sha256()
        size = 0
        handle = await asyncio.to_thread(tmp.open, "wb")
        try:
            async for chunk in chunks:
                size += len(chunk)
                # Hash in the writer thread: hashlib releases the GIL, so it overlaps the caller.
                await asyncio.to_thread(_hash_and_write, digest, handle, chunk)
            handle.close()
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, path)
        except BaseException:
            handle.close()
            tmp.unlink(missing_ok=True)
            raise
        return UploadResult(key=key, size=size, sha256=digest.hexdigest(), parts=1)

    async def delete(self, key: str) -> None:
        """Remove the file and any directories it leaves empty."""
        path = self.path_for(key)
        await asyncio.to_thread(self._delete, path)

    def _delete(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        parent = path.parent
        while parent != self.root:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    async def list_prefix(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        """Walk the tree in key order."""
        infos = await asyncio.to_thread(self._list, prefix)
        for info in infos:
            yield info

    def _list(self, prefix: str) -> list[ObjectInfo]:
        found = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            if Path(dirpath) == self.root and _PARTIAL_DIR in dirnames:
                dirnames.remove(_PARTIAL_DIR)
            for filename in filenames:
                full = Path(dirpath) / filename
                key = full.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    found.append(_info(key, full))
        return sorted(found, key=lambda info: info.key)

    async def head(self, key: str) -> ObjectInfo | None:
        """Stat the file."""
        path = self.path_for(key)
        try:
            return await asyncio.to_thread(_info, key, path)
        except FileNotFoundError:
            return None

    async def abort_stale_uploads(self, *, started_before: datetime) -> StaleUploadSweep:
        """Remove partial files not written to since `started_before` (their writer died)."""
        return await asyncio.to_thread(self._sweep_partials, started_before.timestamp())

    def _sweep_partials(self, cutoff: float) -> StaleUploadSweep:
        directory = self.root / _PARTIAL_DIR
        try:
            entries = list(os.scandir(directory))
        except FileNotFoundError:
            return StaleUploadSweep()
        except OSError as exc:
            raise StorageError(f"cannot list {directory}: {exc}") from exc
        removed = recent = failed = 0
        for entry in entries:
            try:
                stat = entry.stat(follow_symlinks=False)
                if not S_ISREG(stat.st_mode):
                    continue  # only files are ever written here; anything else is not ours
                if stat.st_mtime >= cutoff:
                    recent += 1
                    continue
                os.unlink(entry.path)
            except FileNotFoundError:
                continue  # finished (renamed into place) or removed meanwhile
            except OSError as exc:
                failed += 1
                log.warning("storage.partial.remove_failed", file=entry.name, error=str(exc))
                continue
            removed += 1
            modified = datetime.fromtimestamp(stat.st_mtime, tz=UTC).isoformat()
            log.info("storage.partial.removed", file=entry.name, size=stat.st_size,
                     last_modified=modified)  # fmt: skip
        return StaleUploadSweep(aborted=removed, recent=recent, failed=failed)

    async def presign_get(self, key: str, *, expires_in: int, filename: str | None = None) -> str:
        """An HMAC-signed URL that the API's /files route serves."""
        return sign_url(self._base_url, self._secret, key, expires_in=expires_in, filename=filename)

    async def check(self) -> None:
        """The root must exist and be writable."""
        if not os.access(self.root, os.W_OK):
            raise StorageError(f"storage directory {self.root} is not writable")

    async def close(self) -> None:
        """Nothing to release."""


def _key_tag(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def _info(key: str, path: Path) -> ObjectInfo:
    stat = path.stat()
    modified = datetime.fromtimestamp(stat.st_mtime, tz=UTC)
    return ObjectInfo(key=key, size=stat.st_size, last_modified=modified)


def _hash_and_write(digest: Any, handle: BinaryIO, chunk: bytes) -> None:
    digest.update(chunk)
    handle.write(chunk)
