"""Annotated dependencies: resources from the lifespan, the caller, the tenant transaction."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated

import asyncpg
import httpx
import redis.exceptions
import structlog
from fastapi import Depends, Request, Response

from services.api import auth_limit
from services.api.resources import ApiResources
from services.api.transactions import committed_transaction
from shared.db.pool import acquire
from shared.db.repositories import users as users_repo
from shared.dedup.service import Deduplicator
from shared.errors import RateLimited, Unauthorized
from shared.logging import get_logger
from shared.models.user import Principal
from shared.queue import ArqRedis
from shared.security import hash_key, looks_like_key
from shared.settings import Settings
from shared.storage import ObjectStore

log = get_logger(__name__)
# last_used_at is advisory; writing it on every request would add a write to every read.
_TOUCH_INTERVAL = timedelta(seconds=60)


async def get_resources(request: Request) -> ApiResources:
    """The resources the lifespan put on app.state."""
    resources: ApiResources = request.app.state.resources
    return resources


ResourcesDep = Annotated[ApiResources, Depends(get_resources)]


async def get_settings_dep(resources: ResourcesDep) -> Settings:
    """The app's settings."""
    return resources.settings


async def get_pool(resources: ResourcesDep) -> asyncpg.Pool:
    """The asyncpg pool."""
    return resources.pool


async def get_redis(resources: ResourcesDep) -> ArqRedis:
    """The Redis client (also the arq enqueuer)."""
    return resources.redis


async def get_storage(resources: ResourcesDep) -> ObjectStore:
    """The object store."""
    return resources.storage


async def get_http(resources: ResourcesDep) -> httpx.AsyncClient:
    """The outbound HTTP client."""
    return resources.http


async def get_dedup(resources: ResourcesDep) -> Deduplicator:
    """The near-duplicate index (signatures in PostgreSQL, LSH bands in Redis)."""
    return Deduplicator(resources.pool, resources.redis, resources.settings)


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
PoolDep = Annotated[asyncpg.Pool, Depends(get_pool)]
QueueDep = Annotated[ArqRedis, Depends(get_redis)]
StorageDep = Annotated[ObjectStore, Depends(get_storage)]
HttpDep = Annotated[httpx.AsyncClient, Depends(get_http)]
DedupDep = Annotated[Deduplicator, Depends(get_dedup)]


_INVALID_KEY = "invalid API key"


def _bearer_token(request: Request) -> str | None:
    """The presented key, or None when no Authorization header was sent."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not looks_like_key(token):
        return ""
    return token


async def get_principal(
    request: Request, pool: PoolDep, settings: SettingsDep, redis: QueueDep
) -> Principal:
    """Authenticate the API key; every invalid key (malformed, unknown, revoked) looks alike."""
    token = _bearer_token(request)
    if token is None:
        raise Unauthorized("missing API key; send 'Authorization: Bearer <api key>'")
    await auth_limit.refuse_if_locked_out(request, settings, redis)
    principal = await _principal_for(pool, token) if token else None
    if principal is None:
        await auth_limit.record_failure(request, settings, redis)
        raise Unauthorized(_INVALID_KEY)
    request.state.owner_id = str(principal.user_id)
    structlog.contextvars.bind_contextvars(owner_id=str(principal.user_id))
    return principal


async def _principal_for(pool: asyncpg.Pool, token: str) -> Principal | None:
    async with acquire(pool) as conn:
        principal = await users_repo.principal_for_hash(conn, hash_key(token))
        if principal is None:
            return None
        last = principal.key_last_used_at
        if last is None or datetime.now(UTC) - last > _TOUCH_INTERVAL:
            await users_repo.touch_api_key(conn, principal.key_id)
    return principal


async def enforce_rate_limit(
    principal: Annotated[Principal, Depends(get_principal)],
    response: Response,
    settings: SettingsDep,
    queue: QueueDep,
) -> Principal:
    """Fixed one-minute window per key, with RateLimit-* headers; fails open if Redis is down."""
    limit = settings.api_rate_limit_per_minute
    if limit <= 0:
        return principal
    now = time.time()
    window = int(now // 60)
    reset = 60 - int(now % 60)
    key = f"{settings.queue_prefix}:ratelimit:{principal.key_id}:{window}"
    try:
        async with queue.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, 61)
            count, _ = await pipe.execute()
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        log.warning("api.rate_limit.unavailable", error=str(exc))
        return principal
    remaining = max(0, limit - int(count))
    headers = {"RateLimit-Limit": str(limit), "RateLimit-Remaining": str(remaining)}
    headers["RateLimit-Reset"] = str(reset)
    if int(count) > limit:
        raise RateLimited(
            f"more than {limit} requests per minute for this API key",
            retry_after=reset,
            details={"limit": limit, "reset_seconds": reset},
        )
    response.headers.update(headers)
    return principal


PrincipalDep = Annotated[Principal, Depends(enforce_rate_limit)]


async def tenant_connection(
    principal: PrincipalDep, pool: PoolDep
) -> AsyncIterator[asyncpg.Connection]:
    """One transaction per request in which row-level security shows only the caller's rows."""
    async with committed_transaction(pool, principal.user_id) as conn:
        yield conn


# scope="function": the COMMIT runs as the endpoint returns, before the response is sent
# (the default scope would commit after the client already has its answer).
TenantConnDep = Annotated[asyncpg.Connection, Depends(tenant_connection, scope="function")]
