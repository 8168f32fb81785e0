"""State the janitor replicas share in Redis: last successes, first start, export failure ratio.

Each replica's gauges are refreshed from here, so every replica reports the fleet's view (a task
runs on one replica at a time, but Prometheus scrapes them all)."""

from __future__ import annotations

import time

from services.janitor.context import redis_key, redis_result
from shared.queue import ArqRedis
from shared.settings import Settings


async def record_success(redis: ArqRedis, settings: Settings, task: str) -> float:
    """Remember that `task` just finished; returns the time recorded."""
    now = time.time()
    await redis_result(redis.hset(redis_key(settings, "last_success"), task, str(now)))
    return now


async def last_successes(redis: ArqRedis, settings: Settings) -> dict[str, float]:
    """Task name → unix time of its last success anywhere in the fleet."""
    raw = await redis_result(redis.hgetall(redis_key(settings, "last_success")))
    return {_text(name): float(value) for name, value in raw.items()}


async def first_seen(redis: ArqRedis, settings: Settings) -> float:
    """When a janitor first started against this Redis (set once, kept)."""
    key = redis_key(settings, "first_seen")
    await redis.set(key, str(time.time()), nx=True)
    value = await redis.get(key)
    return float(value) if value is not None else time.time()


async def store_failure_ratio(
    redis: ArqRedis, settings: Settings, ratio: float, succeeded: int, failed: int
) -> None:
    """The latest export failure measurement."""
    await redis_result(
        redis.hset(
            redis_key(settings, "export_failure"),
            mapping={"ratio": str(ratio), "succeeded": str(succeeded), "failed": str(failed)},
        )
    )


async def failure_ratio(redis: ArqRedis, settings: Settings) -> dict[str, float] | None:
    """The latest export failure measurement, None before the first."""
    raw = await redis_result(redis.hgetall(redis_key(settings, "export_failure")))
    return {_text(name): float(value) for name, value in raw.items()} if raw else None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
