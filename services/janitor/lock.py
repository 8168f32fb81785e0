"""A Redis lock with a TTL that is renewed while its holder runs: one task run at a time."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from services.janitor.context import redis_result
from shared.logging import get_logger
from shared.queue import ArqRedis

log = get_logger(__name__)

# Delete / extend only while the key still holds our token (never another holder's lock).
_RELEASE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)
_RENEW = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
)


class RedisLock:
    """SET NX PX with a random token; a crashed holder's lock expires after `ttl` seconds."""

    def __init__(self, redis: ArqRedis, key: str, ttl: float) -> None:
        self.redis = redis
        self.key = key
        self.ttl_ms = int(ttl * 1000)
        self.token = uuid.uuid4().hex

    async def acquire(self) -> bool:
        """Take the lock if nobody holds it."""
        return bool(await self.redis.set(self.key, self.token, nx=True, px=self.ttl_ms))

    async def renew(self) -> bool:
        """Push the expiry out again; False when the lock was lost."""
        return bool(
            await redis_result(self.redis.eval(_RENEW, 1, self.key, self.token, str(self.ttl_ms)))
        )

    async def release(self) -> None:
        """Let go (only of our own lock)."""
        await redis_result(self.redis.eval(_RELEASE, 1, self.key, self.token))

    async def _keep_alive(self) -> None:
        while True:
            await asyncio.sleep(self.ttl_ms / 3000)
            try:
                if not await self.renew():
                    log.warning("janitor.lock.lost", key=self.key)
                    return
            except Exception as exc:  # Redis blip: try again next period, the TTL covers us
                log.warning("janitor.lock.renew_failed", key=self.key, error=str(exc))

    @asynccontextmanager
    async def held(self) -> AsyncIterator[bool]:
        """Yield whether we got the lock; renew it in the background until the block ends."""
        if not await self.acquire():
            yield False
            return
        keeper = asyncio.create_task(self._keep_alive())
        try:
            yield True
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            await asyncio.shield(self.release())
