"""Queue contracts: queue names, job ids, enqueueing and worker settings (arq stays in here)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from arq.connections import ArqRedis as ArqRedis
from arq.connections import RedisSettings
from arq.constants import (
    in_progress_key_prefix,
    job_key_prefix,
    result_key_prefix,
    retry_key_prefix,
)
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
# One conversation of a quality_check job judged by Claude (job id `judge:{job}:{index}`).
QUALITY_CHECK = "quality_check"


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


@dataclass(frozen=True)
class Presence:
    """Where a job id stands in Redis: waiting in the queue, and/or marked as running.

    `marked_for` is how long ago a worker marked it running (None: no mark), from the mark's
    remaining time to live and the length arq gives it (`mark_seconds`).
    """

    queued: bool
    running: bool
    marked_for: float | None = None

    @property
    def missing(self) -> bool:
        """Neither: nothing in Redis will ever run it (finished, or lost with Redis's data)."""
        return not (self.queued or self.running)


def mark_seconds(job_timeout: float) -> float:
    """How long arq marks a job running when the worker's longest job timeout is `job_timeout`."""
    return job_timeout + 10


async def presence(
    redis: ArqRedis,
    settings: Settings,
    service: Service,
    jids: Sequence[str],
    *,
    mark_ttl: float,
) -> dict[str, Presence]:
    """Look many job ids up in one round trip (`mark_ttl`: the length of a running mark)."""
    async with redis.pipeline(transaction=False) as pipe:
        for jid in jids:
            pipe.zscore(queue_name(settings, service), jid)
            pipe.pttl(f"{in_progress_key_prefix}{jid}")
        answers = await pipe.execute()
    found = {}
    for n, jid in enumerate(jids):
        left_ms = int(answers[2 * n + 1])
        marked_for = None if left_ms == -2 else max(0.0, mark_ttl - max(left_ms, 0) / 1000)
        found[jid] = Presence(
            queued=answers[2 * n] is not None, running=left_ms != -2, marked_for=marked_for
        )
    return found


async def revive(
    redis: ArqRedis,
    settings: Settings,
    service: Service,
    function: str,
    *args: Any,
    job_id: str,
    found: Presence,
) -> str:
    """Make a job whose worker died (or whose data Redis lost) runnable now; says what it did.

    A job still in the queue but marked running by a dead worker only needs the mark removed
    (any worker then picks it up); a missing job is enqueued again under the same id.
    """
    if found.running:
        await redis.delete(f"{in_progress_key_prefix}{job_id}")
    if found.queued:
        return "freed"
    await forget_job(redis, job_id)
    await enqueue(redis, settings, service, function, *args, job_id=job_id)
    return "enqueued"


async def take_turn(redis: ArqRedis, settings: Settings, name: str, seconds: float) -> bool:
    """True for one caller per `seconds` across the fleet (a lock that simply expires)."""
    key = f"{settings.queue_prefix}:turn:{name}"
    taken = await redis.set(key, b"1", nx=True, px=max(1, int(seconds * 1000)))
    return bool(taken)


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
        "poll_delay": settings.queue_poll_delay_seconds,
        "handle_signals": True,
        "allow_abort_jobs": True,
    }
