"""Readiness checks and ping jobs."""

from __future__ import annotations

import asyncio
import uuid

from services.api.metrics import JOBS_ENQUEUED
from services.api.resources import ApiResources
from shared.queue import PING, Service, enqueue, job_id

_CHECK_TIMEOUT = 2.0


async def _check_postgres(resources: ApiResources) -> None:
    async with resources.pool.acquire(timeout=_CHECK_TIMEOUT) as conn:
        await conn.fetchval("SELECT 1")


async def _check_redis(resources: ApiResources) -> None:
    await resources.redis.ping()


async def _check_storage(resources: ApiResources) -> None:
    await resources.storage.check()


async def readiness(resources: ApiResources) -> dict[str, str]:
    """`ok` or the reason, for PostgreSQL, Redis and storage, checked concurrently."""
    checks = {
        "postgres": _check_postgres(resources),
        "redis": _check_redis(resources),
        "storage": _check_storage(resources),
    }
    results = await asyncio.gather(
        *(asyncio.wait_for(check, _CHECK_TIMEOUT) for check in checks.values()),
        return_exceptions=True,
    )
    return {
        name: "ok" if not isinstance(result, BaseException) else _describe(result)
        for name, result in zip(checks, results, strict=True)
    }


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "down: timed out"
    return f"down: {type(exc).__name__}: {exc}"[:300]


async def enqueue_ping(resources: ApiResources, service: Service) -> str:
    """Put a ping job on a worker's queue."""
    jid = job_id(PING, service, uuid.uuid4().hex)
    await enqueue(resources.redis, resources.settings, service, PING, job_id=jid)
    JOBS_ENQUEUED.labels(service, PING).inc()
    return jid
