"""Object storage on S3 or any S3-compatible server (MinIO, Swift s3api, moto) via aiobotocore."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import AsyncExitStack
from datetime import datetime
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from shared.logging import get_logger
from shared.storage.base import (
    ObjectInfo,
    ObjectMissing,
    StaleUploadSweep,
    StorageError,
    UploadResult,
)

log = get_logger(__name__)
_MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
# The lifecycle rule a bucket the app manages gets (see ensure_bucket).
ABORT_INCOMPLETE_UPLOADS_RULE_ID = "convoforge-abort-incomplete-multipart-uploads"
ABORT_INCOMPLETE_UPLOADS_DAYS = 1


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code"))


def _is_missing(exc: ClientError) -> bool:
    return _code(exc) in _MISSING_CODES


class S3ObjectStore:
    """One long-lived aiobotocore client per process."""

    name = "s3"

    def __init__(self, client: Any, bucket: str, stack: AsyncExitStack) -> None:
        self._client = client
        self.bucket = bucket
        self._stack = stack

    @classmethod
    async def open(
        cls,
        *,
        bucket: str,
        endpoint_url: str | None,
        region: str,
        access_key_id: str | None,
        secret_access_key: str | None,
        create_bucket: bool = False,
        abort_incomplete_after_days: int = ABORT_INCOMPLETE_UPLOADS_DAYS,
    ) -> S3ObjectStore:
        """Create the client (path-style addressing works with every S3 clone)."""
        stack = AsyncExitStack()
        config = AioConfig(
            s3={"addressing_style": "path"},
            signature_version="s3v4",
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=5,
            read_timeout=60,
            max_pool_connections=20,
        )
        client = await stack.enter_async_context(
            get_session().create_client(
                "s3",
                endpoint_url=endpoint_url,
                region_name=region,
                aws_access_key_id=access_key_id,
                aws_secret_access_key=secret_access_key,
                config=config,
            )
        )
        store = cls(client, bucket, stack)
        if create_bucket:
            await store.ensure_bucket(abort_incomplete_after_days=abort_incomplete_after_days)
        return store

    async def ensure_bucket(
        self, *, abort_incomplete_after_days: int = ABORT_INCOMPLETE_UPLOADS_DAYS
    ) -> None:
        """Create the bucket when it does not exist yet, with the lifecycle rule below."""
        try:
            await self._client.head_bucket(Bucket=self.bucket)
        except ClientError:
            await self._client.create_bucket(Bucket=self.bucket)
        await self._ensure_abort_rule(abort_incomplete_after_days)

    async def _ensure_abort_rule(self, days: int) -> None:
        """Give a bucket without any lifecycle configuration an AbortIncompleteMultipartUpload
        rule, so storage itself discards the parts of uploads whose writer died.

        An existing configuration is never changed: it belongs to whoever wrote it (a
        read-modify-write could also race their edits); the janitor's abort-stale-uploads
        sweep covers such buckets. A server without lifecycle support (MinIO does not support
        this rule and purges stale uploads itself after 24 h; Swift's s3api) costs a warning.
        """
        try:
            current = await self._client.get_bucket_lifecycle_configuration(Bucket=self.bucket)
        except ClientError as exc:
            if _code(exc) != "NoSuchLifecycleConfiguration":
                log.warning("storage.lifecycle.unreadable", bucket=self.bucket, error=str(exc))
                return
            current = None
        except BotoCoreError as exc:
            log.warning("storage.lifecycle.unreadable", bucket=self.bucket, error=str(exc))
            return
        if current is not None:
            rules = current.get("Rules", [])
            if not any("AbortIncompleteMultipartUpload" in rule for rule in rules):
                log.info("storage.lifecycle.no_abort_rule", bucket=self.bucket)
            return
        rule = {
            "ID": ABORT_INCOMPLETE_UPLOADS_RULE_ID,
            "Filter": {"Prefix": ""},
            "Status": "Enabled",
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": days},
        }
        try:
            await self._client.put_bucket_lifecycle_configuration(
                Bucket=self.bucket, LifecycleConfiguration={"Rules": [rule]}
            )
        except (ClientError, BotoCoreError) as exc:
            log.warning("storage.lifecycle.rule_not_added", bucket=self.bucket, error=str(exc))
            return
        log.info("storage.lifecycle.rule_added", bucket=self.bucket, days=days)

    async def put(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str = "application/octet-stream",
        content_encoding: str | None = None,
    ) -> None:
        """One PutObject."""
        extra = {"ContentEncoding": content_encoding} if content_encoding else {}
        try:
            await self._client.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentType=content_type, **extra
            )
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"put {key} failed: {exc}") from exc

    async def get(self, key: str) -> bytes:
        """GetObject, read whole."""
        try:
            response = await self._client.get_object(Bucket=self.bucket, Key=key)
            async with response["Body"] as body:
                data: bytes = await body.read()
                return data
        except ClientError as exc:
            if _is_missing(exc):
                raise ObjectMissing(key) from exc
            raise StorageError(f"get {key} failed: {exc}") from exc

    async def stream(self, key: str, *, chunk_size: int = 1024 * 1024) -> AsyncIterator[bytes]:
        """GetObject, yielded in chunks."""
        try:
            response = await self._client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _is_missing(exc):
                raise ObjectMissing(key) from exc
            raise StorageError(f"get {key} failed: {exc}") from exc
        async with response["Body"] as body:
            while chunk := await body.read(chunk_size):
                yield chunk

    async def upload_stream(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        content_type: str = "application/octet-stream",
        content_encoding: str | None = None,
        part_size: int = 8 * 1024 * 1024,
    ) -> UploadResult:
        """Multipart upload in parts of `part_size` (≥ 5 MiB); aborted on any failure."""
        upload = _MultipartUpload(self._client, self.bucket, key, part_size)
        try:
            await upload.start(content_type, content_encoding)
            async for chunk in chunks:
                await upload.feed(chunk)
            return await upload.complete()
        except BaseException:
            await upload.abort()
            raise

    async def delete(self, key: str) -> None:
        """DeleteObject (idempotent on S3)."""
        try:
            await self._client.delete_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if not _is_missing(exc):
                raise StorageError(f"delete {key} failed: {exc}") from exc

    async def list_prefix(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        """ListObjectsV2, every page."""
        paginator = self._client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield ObjectInfo(
                    key=item["Key"], size=int(item["Size"]), last_modified=item["LastModified"]
                )

    async def head(self, key: str) -> ObjectInfo | None:
        """HeadObject, or None on 404."""
        try:
            response = await self._client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _is_missing(exc):
                return None
            raise StorageError(f"head {key} failed: {exc}") from exc
        return ObjectInfo(
            key=key,
            size=int(response["ContentLength"]),
            last_modified=response["LastModified"],
            content_type=response.get("ContentType"),
        )

    async def abort_stale_uploads(self, *, started_before: datetime) -> StaleUploadSweep:
        """ListMultipartUploads, every page; abort those initiated before `started_before`."""
        outcomes: Counter[str] = Counter()
        paginator = self._client.get_paginator("list_multipart_uploads")
        try:
            async for page in paginator.paginate(Bucket=self.bucket):
                for upload in page.get("Uploads", []):
                    if upload["Initiated"] >= started_before:
                        outcomes["recent"] += 1
                    else:
                        outcomes[await self._abort_upload(upload)] += 1
        except (ClientError, BotoCoreError) as exc:  # the listing: _abort_upload never raises
            raise StorageError(f"listing uploads of {self.bucket} failed: {exc}") from exc
        return StaleUploadSweep(
            aborted=outcomes["aborted"], recent=outcomes["recent"], failed=outcomes["failed"]
        )

    async def abort_upload(self, key: str) -> int:
        """Abort every multipart upload still open for exactly `key`."""
        paginator = self._client.get_paginator("list_multipart_uploads")
        aborted = 0
        try:
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=key):
                for upload in page.get("Uploads", []):
                    if upload["Key"] == key and await self._abort_upload(upload) == "aborted":
                        aborted += 1
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"listing uploads of {key} failed: {exc}") from exc
        return aborted

    async def _abort_upload(self, upload: dict[str, Any]) -> str:
        key, initiated = upload["Key"], upload["Initiated"].isoformat()
        try:
            await self._client.abort_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload["UploadId"]
            )
        except (ClientError, BotoCoreError) as exc:
            if isinstance(exc, ClientError) and _code(exc) == "NoSuchUpload":
                return "gone"  # completed or aborted since the listing
            log.warning("storage.multipart.stale_abort_failed", key=key, initiated=initiated,
                        error=str(exc))  # fmt: skip
            return "failed"
        log.info("storage.multipart.stale_aborted", key=key, initiated=initiated)
        return "aborted"

    async def presign_get(self, key: str, *, expires_in: int, filename: str | None = None) -> str:
        """A SigV4 presigned GetObject URL."""
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if filename:
            params["ResponseContentDisposition"] = f'attachment; filename="{filename}"'
        url: str = await self._client.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=expires_in
        )
        return url

    async def check(self) -> None:
        """HeadBucket."""
        try:
            await self._client.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"bucket {self.bucket} unreachable: {exc}") from exc

    async def close(self) -> None:
        """Close the client's connections."""
        await self._stack.aclose()


class _MultipartUpload:
    """Buffers to part size, uploads parts in order, hashes everything it sends."""

    def __init__(self, client: Any, bucket: str, key: str, part_size: int) -> None:
        self._client = client
        self._bucket = bucket
        self._key = key
        self._part_size = part_size
        self._buffer = bytearray()
        self._parts: list[dict[str, Any]] = []
        self._digest = hashlib.sha256()
        self._size = 0
        self._upload_id: str | None = None

    async def start(self, content_type: str, content_encoding: str | None) -> None:
        extra = {"ContentEncoding": content_encoding} if content_encoding else {}
        response = await self._client.create_multipart_upload(
            Bucket=self._bucket, Key=self._key, ContentType=content_type, **extra
        )
        self._upload_id = response["UploadId"]

    async def feed(self, chunk: bytes) -> None:
        self._digest.update(chunk)
        self._size += len(chunk)
        self._buffer += chunk
        while len(self._buffer) >= self._part_size:
            part = bytes(self._buffer[: self._part_size])
            del self._buffer[: self._part_size]
            await self._send(part)

    async def _send(self, data: bytes) -> None:
        number = len(self._parts) + 1
        response = await self._client.upload_part(
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=data,
        )
        self._parts.append({"PartNumber": number, "ETag": response["ETag"]})

    async def complete(self) -> UploadResult:
        if self._buffer or not self._parts:
            await self._send(bytes(self._buffer))
            self._buffer.clear()
        await self._client.complete_multipart_upload(
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            MultipartUpload={"Parts": self._parts},
        )
        self._upload_id = None
        return UploadResult(
            key=self._key, size=self._size, sha256=self._digest.hexdigest(), parts=len(self._parts)
        )

    async def abort(self) -> None:
        if self._upload_id is None:
            return
        try:
            await self._client.abort_multipart_upload(
                Bucket=self._bucket, Key=self._key, UploadId=self._upload_id
            )
        except (ClientError, BotoCoreError) as exc:
            log.warning("storage.multipart.abort_failed", key=self._key, error=str(exc))
        self._upload_id = None
