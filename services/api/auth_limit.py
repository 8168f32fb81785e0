"""Failed API-key attempts counted per client address in Redis; over the limit answers 429."""

from __future__ import annotations

import redis.exceptions
from starlette.requests import Request

from shared.errors import RateLimited
from shared.logging import get_logger
from shared.queue import ArqRedis
from shared.settings import Settings

log = get_logger(__name__)

_REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def client_address(request: Request) -> str:
    """The peer address uvicorn reports (it applies X-Forwarded-For from trusted proxies)."""
    return request.client.host if request.client else "unknown"


def _key(settings: Settings, address: str) -> str:
    return f"{settings.queue_prefix}:authfail:{address}"


async def refuse_if_locked_out(request: Request, settings: Settings, redis: ArqRedis) -> None:
    """429 before any key is checked when this address has failed too often in the window."""
    limit = settings.api_auth_failure_limit
    if limit <= 0:
        return
    key = _key(settings, client_address(request))
    try:
        async with redis.pipeline(transaction=False) as pipe:
            pipe.get(key)
            pipe.ttl(key)
            count, ttl = await pipe.execute()
    except _REDIS_DOWN as exc:
        log.warning("api.auth_limit.unavailable", error=str(exc))
        return
    if count is not None and int(count) >= limit:
        retry_after = max(1, int(ttl))
        raise RateLimited(
            f"too many failed API-key attempts from this address; retry in {retry_after} s",
            retry_after=retry_after,
            details={"limit": limit, "window_seconds": settings.api_auth_failure_window_seconds},
        )


async def record_failure(request: Request, settings: Settings, redis: ArqRedis) -> None:
    """Count one failed attempt; the window starts at the first failure."""
    if settings.api_auth_failure_limit <= 0:
        return
    address = client_address(request)
    key = _key(settings, address)
    try:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, settings.api_auth_failure_window_seconds, nx=True)
            count, _ = await pipe.execute()
    except _REDIS_DOWN as exc:
        log.warning("api.auth_limit.unavailable", error=str(exc))
        return
    if int(count) == settings.api_auth_failure_limit:
        log.warning("api.auth.locked_out", client=address, failures=int(count))
