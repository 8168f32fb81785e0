"""Workers that ride out Redis outages: reconnect with capped backoff, report not-ready, resume.

arq's poll loop lets a `redis.exceptions.ConnectionError` escape and the worker process dies
(and leaks a job slot when it happens while starting a job). `ResilientWorker` catches what an
unreachable Redis raises around each poll, marks the process not ready (`/readyz` on the
metrics port answers 503), waits with capped exponential backoff and polls again. Start-up
waits for Redis the same way instead of giving up after arq's five tries.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from typing import Any, Final

from arq.connections import RedisSettings, create_pool
from arq.worker import Worker
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.exceptions import WatchError

from shared.logging import get_logger

log = get_logger(__name__)
# redis-py turns a connection lost while a key is WATCHed into a WatchError ("A ConnectionError
# occurred on while watching ..."); arq handles the real WatchError (key changed) itself.
REDIS_DOWN: Final = (RedisConnectionError, RedisTimeoutError, WatchError, ConnectionError, OSError)
_FIRST_DELAY: Final = 0.5


class Readiness:
    """What this process depends on and whether each part answered last time (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._down: dict[str, str] = {}

    def up(self, part: str) -> None:
        """`part` answered."""
        with self._lock:
            self._down.pop(part, None)

    def down(self, part: str, reason: str) -> None:
        """`part` failed with `reason`."""
        with self._lock:
            self._down[part] = reason

    def problems(self) -> dict[str, str]:
        """The parts that are down, with why (empty: ready)."""
        with self._lock:
            return dict(self._down)


READINESS: Final = Readiness()


class Backoff:
    """Capped exponential delays: 0.5 s, 1 s, 2 s, ... up to `cap`."""

    def __init__(self, cap: float) -> None:
        self.cap = cap
        self.delay = _FIRST_DELAY

    def next(self) -> float:
        """The delay to wait now; the following one doubles."""
        current = min(self.delay, self.cap)
        self.delay = min(2 * self.delay, self.cap)
        return current

    def reset(self) -> None:
        """Back to the shortest delay after a success."""
        self.delay = _FIRST_DELAY


class ResilientWorker(Worker):
    """An arq Worker whose poll loop survives Redis being unreachable for any length of time."""

    def __init__(self, *args: Any, redis_backoff_cap: float = 30.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._backoff = Backoff(redis_backoff_cap)

    async def main(self) -> None:
        """Connect (waiting for Redis as long as it takes), then run arq's loop."""
        if self._pool is None:
            self._pool = await self._connect()
        await super().main()

    async def _connect(self) -> Any:
        settings = dataclasses.replace(self.redis_settings or RedisSettings(), conn_retries=0)
        while True:
            try:
                pool = await create_pool(
                    settings,
                    job_deserializer=self.job_deserializer,
                    job_serializer=self.job_serializer,
                    default_queue_name=self.queue_name,
                    expires_extra_ms=self.expires_extra_ms,
                )
            except REDIS_DOWN as exc:
                await self._wait(exc)
                continue
            self._recovered()
            return pool

    async def _poll_iteration(self) -> None:
        try:
            await super()._poll_iteration()
        except REDIS_DOWN as exc:
            await self._wait(exc)
        else:
            self._recovered()

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        """arq's start_jobs one id at a time, giving the slot back when Redis fails mid-start."""
        for job_id in job_ids:
            try:
                await super().start_jobs([job_id])
            except REDIS_DOWN:
                # arq took a slot for this job and had not started it yet.
                self.job_counter -= 1
                self.sem.release()
                raise

    async def close(self) -> None:
        """arq's close; with Redis gone, still run on_shutdown (its health key will expire)."""
        try:
            await super().close()
        except REDIS_DOWN as exc:
            log.warning("worker.redis.unavailable_at_shutdown", error=str(exc))
            if self.on_shutdown:
                await self.on_shutdown(self.ctx)

    async def _wait(self, exc: BaseException) -> None:
        delay = self._backoff.next()
        READINESS.down("redis", f"{type(exc).__name__}: {exc}")
        log.warning("worker.redis.unavailable", error=str(exc), retry_in_s=delay)
        await asyncio.sleep(delay)

    def _recovered(self) -> None:
        if "redis" in READINESS.problems():
            log.info("worker.redis.recovered")
        READINESS.up("redis")
        self._backoff.reset()


def run_resilient_worker(settings: dict[str, Any], *, redis_backoff_cap: float) -> None:
    """Run a ResilientWorker with arq's settings dict until SIGINT/SIGTERM."""
    worker = ResilientWorker(**settings, redis_backoff_cap=redis_backoff_cap)
    worker.run()
