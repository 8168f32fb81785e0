"""Every paid call on the books: an attempt row before the request leaves, held answers after.

The engine opens the call's `in_flight` attempt row (with its worst-case cost) before sending
it; if that write fails, nothing is sent. The answer's booking (log row, cost, landing) is
retried in memory while PostgreSQL is unreachable, until the job's own deadline, instead of
being thrown away and paid for again. A run that dies meanwhile leaves the row in flight, and
whoever takes the item's lease over settles it as lost (items.claim).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

import asyncpg

from services.generator import metrics
from shared.logging import get_logger

log = get_logger(__name__)
T = TypeVar("T")
# What PostgreSQL being down or restarting looks like from asyncpg and its pool.
DB_UNAVAILABLE: Final = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.InterfaceError,
)
_FIRST_DELAY: Final = 0.25
_MAX_DELAY: Final = 2.0


async def held(write: Callable[[], Awaitable[T]], *, deadline: float, what: str) -> T:
    """Run `write`, retrying with capped backoff while PostgreSQL is down, until `deadline`."""
    delay = _FIRST_DELAY
    while True:
        try:
            return await write()
        except DB_UNAVAILABLE as exc:
            if time.monotonic() + delay >= deadline:
                raise
            metrics.HELD_WRITES.labels(what).inc()
            log.warning("generator.attempt.held", what=what, error=str(exc), retry_in_s=delay)
            await asyncio.sleep(delay)
            delay = min(2 * delay, _MAX_DELAY)
