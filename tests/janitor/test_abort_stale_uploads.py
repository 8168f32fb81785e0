"""abort-stale-uploads: what exporters killed mid-upload left in storage is discarded."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from services.janitor.context import JanitorDeps
from services.janitor.runner import run_task
from shared.settings import Settings
from shared.storage import LocalObjectStore, S3ObjectStore, StorageError
from tests.support.storage import stale_partial_file

TASK = "abort-stale-uploads"


def _metric(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, {"task": TASK, **labels}) or 0.0


def _with(deps: JanitorDeps, **update: object) -> JanitorDeps:
    return replace(deps, settings=deps.settings.model_copy(update=update))


async def _uploads(store: S3ObjectStore, key: str) -> list[str]:
    listing = await store._client.list_multipart_uploads(Bucket=store.bucket, Prefix=key)
    return [upload["UploadId"] for upload in listing.get("Uploads", [])]


async def test_partial_files_of_dead_exporters_are_removed(local_deps: JanitorDeps) -> None:
    assert isinstance(local_deps.storage, LocalObjectStore)
    age = local_deps.settings.janitor_stale_upload_age_seconds
    dead = stale_partial_file(local_deps.storage, age=timedelta(seconds=age + 60))
    running = stale_partial_file(local_deps.storage, age=timedelta(seconds=age - 60))
    aborted_before = _metric("convoforge_janitor_items_total", {"action": "aborted"})
    ok_before = _metric("convoforge_janitor_runs_total", {"outcome": "ok"})

    report = await run_task(local_deps, TASK)

    assert report.outcome == "ok"
    assert report.counts == {"aborted": 1, "failed": 0, "recent": 1}
    assert not dead.exists()
    assert running.exists()
    assert _metric("convoforge_janitor_items_total", {"action": "aborted"}) == aborted_before + 1
    assert _metric("convoforge_janitor_runs_total", {"outcome": "ok"}) == ok_before + 1
    again = await run_task(local_deps, TASK)
    assert again.counts == {"aborted": 0, "failed": 0, "recent": 1}


async def test_abandoned_uploads_are_aborted_on_either_backend(deps: JanitorDeps) -> None:
    key = f"exports/{uuid.uuid4()}/{uuid.uuid4()}/{uuid.uuid4()}.jsonl"
    partial: Path | None = None
    if isinstance(deps.storage, S3ObjectStore):
        client, bucket = deps.storage._client, deps.storage.bucket
        created = await client.create_multipart_upload(Bucket=bucket, Key=key)
        await client.upload_part(Bucket=bucket, Key=key, UploadId=created["UploadId"],
                                 PartNumber=1, Body=b"x" * 1024)  # fmt: skip
    else:
        assert isinstance(deps.storage, LocalObjectStore)
        partial = stale_partial_file(deps.storage, age=timedelta(minutes=1))

    async def still_there() -> bool:
        if isinstance(deps.storage, S3ObjectStore):
            return bool(await _uploads(deps.storage, key))
        return partial is not None and partial.exists()

    # ~30 years: younger than that, any upload might still be running (moto dates them 2010).
    patient = await run_task(_with(deps, janitor_stale_upload_age_seconds=10**9), TASK)
    assert patient.counts["aborted"] == 0
    assert patient.counts["recent"] >= 1
    assert await still_there()

    report = await run_task(_with(deps, janitor_stale_upload_age_seconds=0), TASK)

    assert report.outcome == "ok"
    assert report.counts["aborted"] >= 1
    assert report.counts["failed"] == 0
    assert not await still_there()
    assert await deps.storage.head(key) is None


async def test_an_unreadable_store_fails_the_run(local_deps: JanitorDeps) -> None:
    assert isinstance(local_deps.storage, LocalObjectStore)
    partial_dir = local_deps.storage.root / ".partial"
    partial_dir.rmdir()
    partial_dir.write_bytes(b"")  # listing it now fails: the task raises, JanitorTaskFailing fires
    errors_before = _metric("convoforge_janitor_runs_total", {"outcome": "error"})
    with pytest.raises(StorageError, match=r"\.partial"):
        await run_task(local_deps, TASK)
    assert _metric("convoforge_janitor_runs_total", {"outcome": "error"}) == errors_before + 1


def test_threshold_must_outlast_the_longest_export() -> None:
    defaults = Settings()
    assert defaults.janitor_stale_upload_age_seconds > defaults.export_job_timeout_seconds
    with pytest.raises(ValueError, match="must exceed EXPORT_JOB_TIMEOUT_SECONDS"):
        Settings(export_job_timeout_seconds=7200, janitor_stale_upload_age_seconds=3600)
    assert Settings(export_job_timeout_seconds=7200, janitor_stale_upload_age_seconds=7201)
