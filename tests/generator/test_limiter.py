"""Tests for the Redis-backed fleet rate limiter."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis.asyncio import Redis

from shared.llm.limiter import FleetLimiter, HeaderLimits, LimiterTimeoutError, Permit

REDIS_URL = "redis://127.0.0.1:6379/14"

MakeLimiter = Callable[..., FleetLimiter]


@pytest.fixture
async def replicas() -> AsyncIterator[list[Redis]]:
    """Three independent clients, one per simulated generator replica."""
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(Redis.from_url(REDIS_URL)) for _ in range(3)]
        yield clients


@pytest.fixture
async def key_prefix(replicas: list[Redis]) -> AsyncIterator[str]:
    """A unique key prefix whose keys are deleted after the test."""
    prefix = f"convoforge:test:limiter:{uuid.uuid4().hex}"
    yield prefix
    keys = [key async for key in replicas[0].scan_iter(match=f"{prefix}:*")]
    if keys:
        await replicas[0].delete(*keys)


@pytest.fixture
def make_limiter(replicas: list[Redis], key_prefix: str) -> MakeLimiter:
    """Build a limiter on replica `replica` sharing the test's key prefix."""

    def make(replica: int = 0, **options: Any) -> FleetLimiter:
        options.setdefault("requests_per_minute", 10)
        options.setdefault("window_seconds", 1.0)
        return FleetLimiter(replicas[replica], key_prefix=key_prefix, **options)

    return make


def _max_in_any_window(permits: list[Permit], window: timedelta) -> int:
    times = sorted(p.granted_at for p in permits)
    return max(sum(1 for t in times[i:] if t - start < window) for i, start in enumerate(times))


async def test_replicas_never_exceed_limit_in_any_window(make_limiter: MakeLimiter) -> None:
    limiters = [make_limiter(replica) for replica in range(3)]
    started = time.monotonic()
    permits = await asyncio.gather(*(limiters[i % 3].acquire() for i in range(30)))
    elapsed = time.monotonic() - started

    assert _max_in_any_window(permits, timedelta(seconds=1.0)) <= 10
    # Three rounds of 10 need two window turns (+ margins): waiters must not oversleep.
    assert elapsed < 4.0
    assert max(p.waited_seconds for p in permits) > 2.0


async def test_token_limits_block_and_settle_corrects(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(input_tokens_per_minute=100, output_tokens_per_minute=50)
    first = await limiter.acquire(estimated_input_tokens=60, estimated_output_tokens=10)

    with pytest.raises(LimiterTimeoutError):
        await limiter.acquire(estimated_input_tokens=60, timeout=0.1)
    with pytest.raises(LimiterTimeoutError):
        await limiter.acquire(estimated_output_tokens=45, timeout=0)

    assert await first.settle(actual_input_tokens=30, actual_output_tokens=5)
    second = await limiter.acquire(estimated_input_tokens=60, estimated_output_tokens=45, timeout=0)
    status = await limiter.status()
    assert status.input_tokens is not None
    assert status.output_tokens is not None
    assert (status.input_tokens.used, status.input_tokens.remaining) == (90, 10)
    assert (status.output_tokens.used, status.output_tokens.remaining) == (50, 0)
    assert second.waited_seconds < 0.1


async def test_estimate_above_limit_is_rejected(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(input_tokens_per_minute=100)
    with pytest.raises(ValueError, match="exceeds"):
        await limiter.acquire(estimated_input_tokens=101)


async def test_pause_blocks_every_replica_and_keeps_the_longest(make_limiter: MakeLimiter) -> None:
    pauser, other = make_limiter(0), make_limiter(1)
    until = await pauser.pause(0.4, "http_429")
    assert until is not None
    assert await pauser.pause(0.1, "shorter") == until

    status = await other.status()
    assert (status.paused_until, status.pause_reason) == (until, "http_429")
    permit = await other.acquire()
    assert permit.granted_at >= until
    assert 0.3 < permit.waited_seconds < 0.8


async def test_observe_headers_pauses_until_reset(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(requests_per_minute=50, window_seconds=60.0)
    reset_at = datetime.now(UTC) + timedelta(seconds=0.3)

    headers = HeaderLimits(requests_remaining=20, requests_reset=reset_at)
    assert await limiter.observe_headers(headers) == 0
    assert (await limiter.status()).paused_until is None

    paused = await limiter.observe_headers(
        HeaderLimits(
            requests_remaining=20, requests_reset=reset_at, input_remaining=0,
            input_reset=reset_at,
        )
    )  # fmt: skip
    assert 0.1 < paused <= 0.3
    assert (await limiter.status()).pause_reason == "input_tokens_nearly_exhausted"
    permit = await limiter.acquire()
    assert permit.waited_seconds > 0.1


async def test_status_reports_usage_and_reset(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(requests_per_minute=5, window_seconds=30.0, output_tokens_per_minute=900)
    permits = [await limiter.acquire(estimated_output_tokens=100) for _ in range(3)]

    status = await limiter.status()
    assert (status.requests_per_minute, status.used, status.remaining) == (5, 3, 2)
    assert status.reset_at == permits[0].granted_at + timedelta(seconds=30.25)
    assert status.input_tokens is None
    assert status.output_tokens is not None
    assert (status.output_tokens.used, status.output_tokens.remaining) == (300, 600)
    assert (status.waiting, status.paused_until) == (0, None)


async def test_waiters_are_counted_across_replicas(make_limiter: MakeLimiter) -> None:
    limiters = [
        make_limiter(replica, requests_per_minute=1, window_seconds=10.0) for replica in (0, 1)
    ]
    await limiters[0].acquire()
    waiters = [asyncio.create_task(limiters[i % 2].acquire()) for i in range(3)]
    await asyncio.sleep(0.2)

    assert (await limiters[0].status()).waiting == 3
    for task in waiters:
        task.cancel()
    await asyncio.gather(*waiters, return_exceptions=True)
    assert (await limiters[1].status()).waiting == 0


async def test_timeout_raises_typed_error_without_waiting_the_window(
    make_limiter: MakeLimiter,
) -> None:
    limiter = make_limiter(requests_per_minute=1, window_seconds=10.0)
    await limiter.acquire()
    started = time.monotonic()
    with pytest.raises(LimiterTimeoutError):
        await limiter.acquire(timeout=0.2)
    assert time.monotonic() - started < 1.0
    assert (await limiter.status()).waiting == 0


async def test_injected_clock_drives_the_window(make_limiter: MakeLimiter) -> None:
    now = [1_700_000_000.0]
    limiter = make_limiter(requests_per_minute=2, window_seconds=60.0, clock=lambda: now[0])
    await limiter.acquire()
    await limiter.acquire()
    with pytest.raises(LimiterTimeoutError):
        await limiter.acquire(timeout=0)

    now[0] += 60.25
    permit = await limiter.acquire(timeout=0)
    assert permit.granted_at == datetime.fromtimestamp(now[0], UTC)


async def test_keys_expire(
    make_limiter: MakeLimiter, replicas: list[Redis], key_prefix: str
) -> None:
    limiter = make_limiter(input_tokens_per_minute=100)
    await limiter.acquire(estimated_input_tokens=10, estimated_output_tokens=5)
    await limiter.pause(1.0, "test")
    keys = [key async for key in replicas[0].scan_iter(match=f"{key_prefix}:*")]
    assert len(keys) == 4  # requests, input, output, pause (no waiters left)
    for key in keys:
        assert 0 < await replicas[0].pttl(key) <= 2_250


async def test_advertised_limits_slow_every_replica_and_the_lowest_wins(
    make_limiter: MakeLimiter,
) -> None:
    ours = [make_limiter(replica, requests_per_minute=100) for replica in range(3)]
    # One answer says the API allows 4 requests per window and 500 output tokens.
    await ours[0].observe_headers(HeaderLimits(requests_limit=4, output_limit=500, input_limit=9))
    status = await ours[1].status()
    assert status.advertised == {"requests": 4, "input_tokens": 9, "output_tokens": 500}

    permits = await asyncio.gather(*(ours[i % 3].acquire() for i in range(8)))
    assert _max_in_any_window(permits, timedelta(seconds=1.0)) <= 4
    # Input and output budgets are kept apart: 400 output tokens fit, a further 200 must wait.
    await asyncio.sleep(1.3)
    await ours[2].acquire(estimated_output_tokens=400, estimated_input_tokens=5)
    with pytest.raises(LimiterTimeoutError):
        await ours[0].acquire(estimated_output_tokens=200, timeout=0.2)
    # An advertised limit above ours changes nothing: ours stays the most restrictive.
    await ours[0].observe_headers(HeaderLimits(requests_limit=1000))
    assert (await ours[0].status()).advertised["requests"] == 1000


async def test_a_fresh_fleet_ramps_up_instead_of_bursting(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(requests_per_minute=20, window_seconds=10.0, ramp_seconds=1.0)
    started = time.monotonic()
    permits = [await limiter.acquire() for _ in range(10)]
    offsets = [(p.granted_at - permits[0].granted_at).total_seconds() for p in permits]
    # 10 % of the limit (2) at once, then one more every ramp / limit = 50 ms.
    assert offsets[1] < 0.03
    assert offsets[-1] >= 0.4
    assert time.monotonic() - started < 2.0
