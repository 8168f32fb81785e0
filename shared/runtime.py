"""Worker plumbing shared by generator, exporter and janitor: typed context, startup, metrics."""

from __future__ import annotations

import asyncio
import functools
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Concatenate, ParamSpec, TypedDict, TypeVar

import asyncpg
import httpx
from prometheus_client import Counter, Histogram

from shared.db.pool import create_pool
from shared.logging import bound_context, configure_logging, get_logger
from shared.metrics import serve_metrics
from shared.queue import ArqRedis, Service
from shared.resilience import READINESS
from shared.settings import Settings, get_settings
from shared.storage import ObjectStore, open_storage

log = get_logger(__name__)

JOBS = Counter(
    "convoforge_worker_jobs_total",
    "Jobs run by a worker, by service, function and outcome.",
    ["service", "function", "outcome"],
)
JOB_DURATION = Histogram(
    "convoforge_worker_job_duration_seconds",
    "Time a job ran, by service and function.",
    ["service", "function"],
)
JOB_START_LATENCY = Histogram(
    "convoforge_worker_job_start_latency_seconds",
    "Time from enqueue to job start, by service (queue).",
    ["service"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)


class JobDeferred(Exception):
    """A job asks to run again later (not a failure); worker.py turns it into arq's Retry."""


@dataclass
class WorkerResources:
    """What every job of a worker process borrows."""

    service: Service
    settings: Settings
    pool: asyncpg.Pool
    redis: ArqRedis
    storage: ObjectStore
    http: httpx.AsyncClient
    metrics_port: int
    # Tasks the process runs beside its jobs (the work reconciler); cancelled at shutdown.
    background: list[asyncio.Task[None]] = field(default_factory=list)


class WorkerContext(TypedDict, total=False):
    """arq's ctx as our jobs see it."""

    redis: ArqRedis
    job_id: str
    job_try: int
    enqueue_time: datetime
    resources: WorkerResources


async def start_worker(ctx: WorkerContext, service: Service, metrics_port: int) -> None:
    """Open the pool, storage and HTTP client; serve /metrics."""
    settings = get_settings()
    configure_logging(settings)
    port = serve_metrics(settings.metrics_host, metrics_port, READINESS.problems)
    ctx["resources"] = WorkerResources(
        service=service,
        settings=settings,
        pool=await create_pool(settings),
        redis=ctx["redis"],
        storage=await open_storage(settings),
        http=httpx.AsyncClient(timeout=httpx.Timeout(settings.llm_timeout_seconds)),
        metrics_port=port,
    )
    log.info("worker.started", service=service, metrics_port=port, pid=os.getpid())


async def stop_worker(ctx: WorkerContext) -> None:
    """Close what start_worker opened."""
    resources = ctx.get("resources")
    if resources is None:
        return
    for task in resources.background:
        task.cancel()
    await asyncio.gather(*resources.background, return_exceptions=True)
    await resources.http.aclose()
    await resources.storage.close()
    await resources.pool.close()
    log.info("worker.stopped", service=resources.service)


P = ParamSpec("P")
R = TypeVar("R")
Job = Callable[Concatenate[WorkerContext, P], Awaitable[R]]


def instrumented(service: Service) -> Callable[[Job[P, R]], Job[P, R]]:
    """Count, time and log a job function; binds job_id to the log context."""

    def decorate(func: Job[P, R]) -> Job[P, R]:
        name = func.__name__

        @functools.wraps(func)
        async def wrapper(ctx: WorkerContext, /, *args: P.args, **kwargs: P.kwargs) -> R:
            enqueued = ctx.get("enqueue_time")
            if enqueued is not None:
                JOB_START_LATENCY.labels(service).observe(
                    max(0.0, (datetime.now(UTC) - enqueued).total_seconds())
                )
            start = time.perf_counter()
            outcome = "error"
            with bound_context(job_id=ctx.get("job_id"), service=service):
                try:
                    result = await func(ctx, *args, **kwargs)
                    outcome = "ok"
                    return result
                except JobDeferred:
                    outcome = "deferred"
                    raise
                finally:
                    JOBS.labels(service, name, outcome).inc()
                    JOB_DURATION.labels(service, name).observe(time.perf_counter() - start)

        return wrapper

    return decorate


async def ping_payload(ctx: WorkerContext) -> dict[str, Any]:
    """What a ping job proves: this worker process reached PostgreSQL and storage."""
    resources = ctx["resources"]
    async with resources.pool.acquire() as conn:
        role = await conn.fetchval("SELECT current_user")
    await resources.storage.check()
    return {
        "service": resources.service,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "db_role": role,
        "storage": resources.storage.name,
        "job_try": ctx.get("job_try"),
    }
