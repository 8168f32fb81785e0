"""Queue contracts: queue names, job ids, enqueueing and worker settings (arq stays in here)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from arq.connections import ArqRedis as ArqRedis
from arq.connections import RedisSettings
from arq.constants import job_key_prefix, result_key_prefix, retry_key_prefix
from arq.cron import CronJob
from arq.jobs import Job, JobStatus
from redis.asyncio import ConnectionPool

from shared.settings import Settings

Service = Literal["generator", "exporter", "janitor"]
SERVICES: tuple[Service, ...] = ("generator", "exporter", "janitor")

# Job function names: the contract between the API (enqueuer) and the workers.
PING = "ping"
GENERATE_ITEM = "generate_item"
# A batch-mode generation job: submits Message Batches and polls them (job id `genbatch:{id}`).
RUN_MESSAGE_BATCHES = "run_message_batches"
# A generation item waiting for a concurrency slot re-checks this often unless woken sooner.
GENERATION_PARK_SECONDS = 60.0
RUN_EXPORT = "run_export"


def queue_name(settings: Settings, service: Service) -> str:
    """The Redis list a service's workers consume."""
    return f"{settings.queue_prefix}:{service}"


def llm_limiter_prefix(settings: Settings) -> str:
    """Redis key prefix of the Claude rate limiter every generator replica (and the API) shares."""
    return f"{settings.queue_prefix}:llm-limiter"


def job_id(kind: str, *parts: object) -> str:
    """The one way to build a job id: `kind:part:part`, the same for the same work."""
    return ":".join([kind, *(str(part) for part in parts)])


def redis_settings(settings: Settings) -> RedisSettings:
    """arq's connection settings from REDIS_URL."""
    return RedisSettings.from_dsn(settings.redis_url)


def create_redis(settings: Settings) -> ArqRedis:
    """A lazily-connecting client: the API starts (and reports 503) even when Redis is down."""
    pool: ConnectionPool = ConnectionPool.from_url(
        settings.redis_url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30
    )
    return ArqRedis(connection_pool=pool)


@dataclass(frozen=True)
class Enqueued:
    """What enqueue() did: `created` is False when the job id already existed."""

    job_id: str
    created: bool


async def enqueue(
    redis: ArqRedis,
    settings: Settings,
    service: Service,
    function: str,
    *args: Any,
    job_id: str,
    defer_by: float | None = None,
) -> Enqueued:
    """Enqueue once per job id; a duplicate enqueue is a no-op, not a second job."""
    job = await redis.enqueue_job(
        function,
        *args,
        _job_id=job_id,
        _queue_name=queue_name(settings, service),
        _defer_by=defer_by,
    )
    return Enqueued(job_id=job_id, created=job is not None)


@dataclass(frozen=True)
class JobState:
    """A job's status and, once finished, its outcome."""

    job_id: str
    status: str
    success: bool | None = None
    result: Any = None


async def job_state(redis: ArqRedis, settings: Settings, service: Service, jid: str) -> JobState:
    """Look a job up by id."""
    job = Job(jid, redis, _queue_name=queue_name(settings, service))
    status = await job.status()
    if status != JobStatus.complete:
        return JobState(job_id=jid, status=status.value)
    info = await job.result_info()
    if info is None:
        return JobState(job_id=jid, status=status.value)
    result = info.result if info.success else repr(info.result)
    return JobState(job_id=jid, status=status.value, success=info.success, result=result)


async def wake(redis: ArqRedis, settings: Settings, service: Service, jid: str) -> bool:
    """Bring a deferred job forward to run now; False when it is not waiting on the queue."""
    now_ms = int(time.time() * 1000)
    changed: int = await redis.zadd(
        queue_name(settings, service), {jid: now_ms}, xx=True, lt=True, ch=True
    )
    return changed > 0


async def forget_job(redis: ArqRedis, jid: str) -> None:
    """Drop a finished job's result so the same id can be enqueued again (retry-failed)."""
    await redis.delete(
        f"{result_key_prefix}{jid}", f"{job_key_prefix}{jid}", f"{retry_key_prefix}{jid}"
    )


async def queue_depth(redis: ArqRedis, settings: Settings, service: Service) -> int:
    """How many jobs wait in a service's queue."""
    depth: int = await redis.zcard(queue_name(settings, service))
    return depth


Hook = Callable[[Any], Awaitable[None]]


def worker_settings(
    settings: Settings,
    service: Service,
    *,
    functions: Sequence[Any],
    on_startup: Hook,
    on_shutdown: Hook,
    cron_jobs: Sequence[CronJob] = (),
    max_jobs: int = 10,
    job_timeout: float = 300,
    max_tries: int = 5,
) -> dict[str, Any]:
    """Keyword arguments for arq's Worker, the same shape for every service."""
    return {
        "functions": list(functions),
        "cron_jobs": list(cron_jobs),
        "queue_name": queue_name(settings, service),
        "redis_settings": redis_settings(settings),
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        "max_jobs": max_jobs,
        "job_timeout": job_timeout,
        "max_tries": max_tries,
        "keep_result": 3600,
        "health_check_interval": 30,
        "handle_signals": True,
        "allow_abort_jobs": True,
    }
