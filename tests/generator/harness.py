"""Generation test helpers: settings against the fake Claude API, an in-process arq worker,
polling a batch through the API, and reading what landed in PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx
from arq.worker import Worker
from pydantic import SecretStr

from services.generator import worker as generator_worker
from shared.db.pool import tenant_transaction
from shared.queue import create_redis, queue_name, redis_settings
from shared.runtime import WorkerResources
from shared.settings import Settings
from shared.storage import LocalObjectStore
from tests.fakes.anthropic import FakeAnthropic

TERMINAL = {"completed", "failed", "cancelled"}


def fake_settings(settings: Settings, fake_url: str, api_key: str, **changes: Any) -> Settings:
    """The session settings pointed at the fake, with a queue/limiter prefix of their own."""
    values: dict[str, Any] = {
        "llm_provider": "anthropic",
        "anthropic_api_key": SecretStr(api_key),
        "anthropic_base_url": fake_url,
        "llm_requests_per_minute": 1000,
        "llm_rate_window_seconds": 1.0,
        "llm_timeout_seconds": 5.0,
        "llm_backoff_base_seconds": 0.05,
        "generator_job_timeout_seconds": 30.0,
        "generator_heartbeat_seconds": 0.5,
        "llm_ramp_seconds": 0.0,  # tests that want the start-up ramp ask for it
        "queue_prefix": f"{settings.queue_prefix}-gen-{uuid.uuid4().hex[:8]}",
    }
    return settings.model_copy(update=values | changes)


@contextlib.asynccontextmanager
async def worker_resources(
    settings: Settings, pool: asyncpg.Pool, storage_dir: Path
) -> AsyncIterator[WorkerResources]:
    """What a generator process would hold, built from `settings` in this process."""
    redis = create_redis(settings)
    http = httpx.AsyncClient(timeout=httpx.Timeout(settings.llm_timeout_seconds))
    storage = LocalObjectStore(storage_dir, base_url="http://test", signing_secret=b"secret")
    try:
        yield WorkerResources(
            service="generator", settings=settings, pool=pool, redis=redis, storage=storage,
            http=http, metrics_port=0,
        )  # fmt: skip
    finally:
        await http.aclose()
        await redis.aclose()


@contextlib.asynccontextmanager
async def running_worker(
    resources: WorkerResources, *, max_jobs: int = 10
) -> AsyncIterator[Worker]:
    """The generator's arq functions served by an in-process worker until the block ends."""
    settings = resources.settings

    async def startup(ctx: dict[str, Any]) -> None:
        ctx["resources"] = resources

    async def shutdown(ctx: dict[str, Any]) -> None:
        return None

    worker = Worker(
        functions=generator_worker.functions(settings),
        queue_name=queue_name(settings, "generator"),
        redis_settings=redis_settings(settings),
        on_startup=startup,
        on_shutdown=shutdown,
        handle_signals=False,
        poll_delay=0.02,
        max_jobs=max_jobs,
        job_timeout=settings.generator_job_timeout_seconds,
        keep_result=60,
    )
    task = asyncio.create_task(worker.async_run())
    try:
        yield worker
    finally:
        # Not worker.close(): it calls a deprecated redis close(), and warnings are errors here.
        task.cancel()
        jobs = list(worker.tasks.values())
        for job in jobs:
            job.cancel()
        await asyncio.gather(task, *jobs, return_exceptions=True)
        if worker.pool is not None:
            await worker.pool.aclose()


async def wait_batch(
    api: httpx.AsyncClient, headers: dict[str, str], batch_id: str, *, within: float = 30.0
) -> dict[str, Any]:
    """Poll GET /v1/generation-jobs/{id} until the batch has finished."""
    deadline = time.monotonic() + within
    while True:
        response = await api.get(f"/v1/generation-jobs/{batch_id}", headers=headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["status"] in TERMINAL and body["completed_at"] is not None:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"batch did not finish in {within}s: {body}")
        await asyncio.sleep(0.05)


async def rows(pool: asyncpg.Pool, owner: UUID, sql: str, *args: Any) -> list[dict[str, Any]]:
    """Rows the owner can see (runs inside a tenant transaction)."""
    async with tenant_transaction(pool, owner) as conn:
        return [dict(row) for row in await conn.fetch(sql, *args)]


async def items(pool: asyncpg.Pool, owner: UUID, batch_id: str) -> list[dict[str, Any]]:
    """A batch's items in index order."""
    return await rows(
        pool, owner,
        "SELECT item_index, status, attempts, error_code, error, conversation_id, cost_usd "
        "FROM generation_items WHERE batch_id = $1 ORDER BY item_index",
        UUID(batch_id),
    )  # fmt: skip


async def logs(pool: asyncpg.Pool, owner: UUID, batch_id: str) -> list[dict[str, Any]]:
    """A batch's attempt logs, oldest first."""
    return await rows(
        pool, owner,
        "SELECT item_index, attempt, status, error_code, input_tokens, output_tokens, cost_usd, "
        "prompt_sha256, request_excerpt, response_excerpt, conversation_id "
        "FROM generation_logs WHERE job_id = $1 ORDER BY created_at, id",
        UUID(batch_id),
    )  # fmt: skip


async def conversations(pool: asyncpg.Pool, owner: UUID, batch_id: str) -> list[dict[str, Any]]:
    """Conversations a batch landed."""
    return await rows(
        pool, owner,
        "SELECT id, generation_item_index, status, is_flagged, quality_score, model, parent_id, "
        "parent_type, actual_cost_usd, tags FROM conversations WHERE generation_job_id = $1 "
        "ORDER BY generation_item_index",
        UUID(batch_id),
    )  # fmt: skip


def plain_items(count: int, **fields: Any) -> dict[str, Any]:
    """A job body of `count` requests on the built-in template."""
    request = {"persona": "an anxious investor", "topic": "market volatility", **fields}
    return {"items": [dict(request) for _ in range(count)]}


def fake_requests(fake: FakeAnthropic) -> list[Any]:
    """Messages calls the fake answered (control calls excluded)."""
    return [r for r in fake.requests if r.outcome != "pending"]
