"""Object storage: one interface, `s3` and `local` backends."""

from __future__ import annotations

import math

from shared.settings import Settings
from shared.storage.base import ObjectInfo, ObjectMissing, ObjectStore, StorageError, UploadResult
from shared.storage.local import LocalObjectStore
from shared.storage.s3 import S3ObjectStore

__all__ = [
    "LocalObjectStore",
    "ObjectInfo",
    "ObjectMissing",
    "ObjectStore",
    "S3ObjectStore",
    "StorageError",
    "UploadResult",
    "open_storage",
]


async def open_storage(settings: Settings) -> ObjectStore:
    """The backend the settings name, ready to use."""
    if settings.storage_backend == "local":
        return LocalObjectStore(
            settings.storage_local_dir,
            base_url=settings.public_base_url,
            signing_secret=settings.storage_signing_secret.get_secret_value().encode(),
        )
    return await S3ObjectStore.open(
        bucket=settings.s3_bucket,
        endpoint_url=settings.s3_endpoint_url,
        region=settings.s3_region,
        access_key_id=_secret(settings.s3_access_key_id),
        secret_access_key=_secret(settings.s3_secret_access_key),
        create_bucket=settings.s3_create_bucket,
        abort_incomplete_after_days=abort_incomplete_after_days(settings),
    )


def abort_incomplete_after_days(settings: Settings) -> int:
    """The bucket rule's age for unfinished multipart uploads: whole days, at least 1, never
    shorter than the janitor's stale-upload age (which settings keep above the export job
    timeout), so storage never aborts the upload of an export that is still running."""
    return max(1, math.ceil(settings.janitor_stale_upload_age_seconds / 86_400))


def _secret(value: object) -> str | None:
    getter = getattr(value, "get_secret_value", None)
    return getter() if getter else None
