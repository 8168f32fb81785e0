"""What a janitor task works with, and the small helpers every task shares."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TypeVar
from uuid import UUID

import asyncpg

from shared.db.pool import acquire, create_pool
from shared.db.repositories import users as users_repo
from shared.logging import bound_context, get_logger
from shared.queue import ArqRedis, create_redis
from shared.runtime import WorkerResources
from shared.settings import Settings
from shared.storage import ObjectStore, open_storage

log = get_logger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class JanitorDeps:
    """Pool, Redis and storage: borrowed from the worker, or opened by the CLI."""

    settings: Settings
    pool: asyncpg.Pool
    redis: ArqRedis
    storage: ObjectStore

    @classmethod
    def from_worker(cls, resources: WorkerResources) -> JanitorDeps:
        """The janitor worker's own resources."""
        return cls(resources.settings, resources.pool, resources.redis, resources.storage)


@asynccontextmanager
async def open_deps(settings: Settings) -> AsyncIterator[JanitorDeps]:
    """Open what a task needs outside a worker (`convoforge janitor run`)."""
    pool = await create_pool(settings, min_size=0)
    redis = create_redis(settings)
    storage = await open_storage(settings)
    try:
        yield JanitorDeps(settings, pool, redis, storage)
    finally:
        await storage.close()
        await redis.aclose()
        await pool.close()


@dataclass
class Counts:
    """What a task did, by action ("expired", "failed", …); reported to logs and metrics."""

    values: Counter[str] = field(default_factory=Counter)

    def add(self, action: str, amount: int = 1) -> None:
        """Count `amount` more of `action` (zero is recorded too, so the series exists)."""
        self.values[action] += amount

    def as_dict(self) -> dict[str, int]:
        """Plain dict, sorted by action."""
        return dict(sorted(self.values.items()))


async def owner_ids(pool: asyncpg.Pool) -> list[UUID]:
    """Every tenant: the janitor acts as each owner in turn, so row-level security holds."""
    async with acquire(pool) as conn:
        return await users_repo.list_user_ids(conn)


async def redis_result(value: Awaitable[T] | T) -> T:
    """Await a redis-py command (its stubs type results as "awaitable or not")."""
    if isinstance(value, Awaitable):
        result: T = await value
        return result
    return value


def redis_key(settings: Settings, *parts: str) -> str:
    """A janitor key under the deployment's Redis prefix."""
    return ":".join([settings.queue_prefix, "janitor", *parts])


OwnerWork = Callable[[UUID], Awaitable[None]]


async def for_each_owner(deps: JanitorDeps, counts: Counts, work: OwnerWork) -> None:
    """Run `work` as every tenant in turn; one tenant's failure never stops the others."""
    for owner in await owner_ids(deps.pool):
        with bound_context(owner_id=owner):
            try:
                await work(owner)
            except Exception as exc:
                counts.add("owner_failed")
                log.warning("janitor.owner_failed", error=str(exc), exc_info=True)


def chunks(values: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Consecutive slices of at most `size` values."""
    for start in range(0, len(values), size):
        yield values[start : start + size]
