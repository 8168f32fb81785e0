"""`python -m services.exporter` as a real process: SIGKILLed mid-export, the job is retried by
arq in a new worker and the export completes exactly once."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import UUID

import asyncpg
import httpx
import pytest
import redis.asyncio as redis_asyncio

from shared.db.pool import acquire
from shared.models.export import ExportLog, ExportStatus
from shared.queue import RUN_EXPORT, create_redis, enqueue, job_id, job_state
from shared.settings import Settings
from shared.storage import LocalObjectStore
from tests.exporter import helpers
from tests.support.factories import create_user
from tests.support.servers import WorkerProcess, free_port, wait_http
from tests.support.settings import settings_env

CONVERSATIONS = 30
# arq hands a dead worker's job to another one when its in-progress key expires: after
# job timeout + 10 s. A short timeout makes that ~14 s; the throttle makes a run ~1.5 s.
TUNING = {
    "EXPORT_JOB_TIMEOUT_SECONDS": "4",
    "EXPORT_BATCH_SIZE": "3",
    "EXPORT_MAX_CONVERSATIONS_PER_SECOND": "20",
    "EXPORT_HEARTBEAT_SECONDS": "0.1",
}


@pytest.fixture
async def isolated(settings: Settings, redis_url: str) -> AsyncIterator[Settings]:
    """The session settings with a queue of this test's own."""
    prefix = f"{settings.queue_prefix}-x{uuid.uuid4().hex[:6]}"
    own = settings.model_copy(update={"queue_prefix": prefix})
    yield own
    client = redis_asyncio.Redis.from_url(redis_url)
    keys = [key async for key in client.scan_iter(f"{own.queue_prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


def start_worker(settings: Settings, log: Path) -> tuple[WorkerProcess, int]:
    """An exporter process with the test's tuning; returns it and its metrics port."""
    port = free_port()
    env = {**settings_env(settings), **TUNING}
    env |= {"EXPORTER_METRICS_PORT": str(port), "METRICS_HOST": "127.0.0.1"}
    worker = WorkerProcess("exporter", env, log)
    wait_http(f"http://127.0.0.1:{port}/metrics")
    return worker, port


async def test_killed_worker_export_is_retried_and_completes_once(
    db: asyncpg.Pool, isolated: Settings, tmp_path: Path
) -> None:
    async with acquire(db) as conn:
        owner = (await create_user(conn)).id
    storage = LocalObjectStore(
        isolated.storage_local_dir, base_url="http://test", signing_secret=b"unused"
    )
    first = await helpers.store(db, storage, owner, helpers.seed_bytes("kill"), status="approved")
    await helpers.clone(db, owner, first.id, CONVERSATIONS - 1)
    export = await helpers.new_export(db, owner, helpers.config(scope="all", include_metadata=True))
    redis = create_redis(isolated)
    jid = job_id("export", export.id)
    await enqueue(redis, isolated, "exporter", RUN_EXPORT, str(export.id), job_id=jid)

    doomed, _ = start_worker(isolated, tmp_path / "doomed.log")
    try:
        await _until(db, owner, export.id, lambda e: e.progress_percent > 0)
    finally:
        doomed.stop(kill=True)
    halfway = await helpers.fetch_export(db, owner, export.id)
    assert halfway.status is ExportStatus.PROCESSING
    assert halfway.attempts == 1

    survivor, port = start_worker(isolated, tmp_path / "survivor.log")
    try:
        done = await _until(db, owner, export.id, lambda e: e.counts_applied_at is not None)
        async with asyncio.timeout(10):
            # Polls arq's state in Redis: nothing to wait on in this process.
            while (state := await job_state(redis, isolated, "exporter", jid)).success is None:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        async with httpx.AsyncClient() as http:
            metrics = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    finally:
        survivor.stop()
        await redis.aclose()
    assert done.status is ExportStatus.COMPLETED, survivor.output()
    assert done.attempts == 2
    assert state.success is True
    lines = (await helpers.read_file(storage, done)).decode().split("\n")[:-1]
    slugs = [json.loads(line)["metadata"]["conversation_id"] for line in lines]
    assert len(slugs) == len(set(slugs)) == done.conversation_count == CONVERSATIONS
    keys = [info.key async for info in storage.list_prefix(f"exports/{owner}/{export.id}/")]
    assert keys == [done.object_key]
    assert set((await helpers.export_counts(db, owner)).values()) == {1}
    assert 'convoforge_export_exports_total{format="jsonl",status="completed"} 1.0' in metrics
    assert f'convoforge_export_conversations_total{{format="jsonl"}} {CONVERSATIONS}.0' in metrics


async def _until(
    pool: asyncpg.Pool, owner: UUID, export_id: UUID, condition: helpers.ExportCheck
) -> ExportLog:
    async with asyncio.timeout(40):
        while True:
            export = await helpers.fetch_export(pool, owner, export_id)
            if condition(export):
                return export
            await asyncio.sleep(0.05)
