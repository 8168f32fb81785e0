"""Fleet-wide Claude rate limiter shared by every generator replica through Redis.

Algorithm: a sliding-window log. Each granted request is a ZSET member scored with its reservation
time (Redis server microseconds); two hashes hold the estimated, later actual, input and output
tokens per reservation. One Lua script prunes entries older than the window, checks requests and
tokens and reserves atomically, or returns how long the caller must wait; the caller sleeps exactly
that long (no polling loop). Time comes from Redis `TIME` so replicas with skewed clocks agree.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, cast

import structlog
from pydantic import BaseModel
from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from shared.llm.limiter_scripts import ACQUIRE_LUA, PAUSE_LUA, PRELUDE, SETTLE_LUA, STATUS_LUA
from shared.queue import llm_limiter_prefix
from shared.settings import Settings

log = structlog.get_logger(__name__)

US_PER_SECOND: Final = 1_000_000
# Our window is counted this much longer than the API's. A permit is timestamped when Redis grants
# it, but the request reaches Claude after a variable delay (event loop, connection set-up,
# network). If permit A is delayed more than permit B granted one window later, the server would
# see both inside one of its windows, i.e. limit + 1 requests. The margin absorbs that jitter; it
# costs 0.25 / 60 = 0.4 % of throughput with a one-minute window.
DEFAULT_SAFETY_MARGIN_SECONDS: Final = 0.25
# A waiter's lease outlives its sleep by this much, so waiters of a crashed replica disappear.
WAITER_LEASE_SLACK_SECONDS: Final = 5.0
# The API's remaining budget at or below this share of our limit counts as "nearly out".
NEAR_EMPTY_FRACTION: Final = 0.02
# Waking a hair after the computed instant avoids a second round trip for a microsecond shortfall.
WAKE_SLACK_SECONDS: Final = 0.001
_ADVERTISED = ("requests", "input_tokens", "output_tokens")
# What the API's headers said about our limits is trusted this long after the last answer.
ADVERTISED_TTL_SECONDS: Final = 600
# Callers put every wait in a metric (Permit.waited_seconds); only long waits are worth a log line.
SLOW_WAIT_LOG_SECONDS: Final = 1.0


class LimiterError(Exception):
    """Base class for limiter failures."""


class LimiterTimeoutError(LimiterError, TimeoutError):
    """No permit could be reserved before the caller's timeout."""


class TokenBudget(BaseModel):
    """Token usage against one per-window token limit."""

    limit: int
    used: int
    remaining: int


class LimiterStatus(BaseModel):
    """Fleet-wide limiter snapshot, served by GET /v1/generation/rate-limit."""

    requests_per_minute: int
    window_seconds: float
    used: int
    remaining: int
    reset_at: datetime | None
    paused_until: datetime | None
    pause_reason: str | None
    waiting: int
    input_tokens: TokenBudget | None
    output_tokens: TokenBudget | None
    advertised: dict[str, int] = {}


@dataclass(frozen=True, slots=True)
class HeaderLimits:
    """What one answer's rate-limit headers said: limits, remaining budgets and reset times."""

    requests_limit: int | None = None
    requests_remaining: int | None = None
    requests_reset: datetime | None = None
    input_limit: int | None = None
    input_remaining: int | None = None
    input_reset: datetime | None = None
    output_limit: int | None = None
    output_remaining: int | None = None
    output_reset: datetime | None = None


@dataclass(frozen=True, slots=True)
class Permit:
    """One reserved request slot; settle() replaces the token estimates with actual usage."""

    reservation_id: str
    granted_at: datetime
    waited_seconds: float
    estimated_input_tokens: int
    estimated_output_tokens: int
    limiter: FleetLimiter = field(repr=False, compare=False)

    async def settle(self, actual_input_tokens: int, actual_output_tokens: int) -> bool:
        """Record actual token usage; False if the reservation already left the window."""
        return await self.limiter.settle(
            self.reservation_id, actual_input_tokens, actual_output_tokens
        )


@dataclass(frozen=True, slots=True)
class _Keys:
    requests: str
    input_tokens: str
    output_tokens: str
    pause: str
    waiters: str
    advertised: str
    ramp: str

    @classmethod
    def under(cls, prefix: str) -> _Keys:
        names = ("requests", "in", "out", "pause", "waiters", "advertised", "ramp")
        return cls(*(f"{prefix}:{name}" for name in names))

    @property
    def all(self) -> list[str]:
        # Every script receives every key, so each declares what it touches (Redis Cluster).
        return [
            self.requests, self.input_tokens, self.output_tokens, self.pause, self.waiters,
            self.advertised, self.ramp,
        ]  # fmt: skip


class FleetLimiter:
    """Sliding-window request and token limiter shared by all replicas through Redis."""

    def __init__(
        self,
        redis: Redis,
        *,
        key_prefix: str,
        requests_per_minute: int,
        input_tokens_per_minute: int | None = None,
        output_tokens_per_minute: int | None = None,
        window_seconds: float = 60.0,
        safety_margin_seconds: float = DEFAULT_SAFETY_MARGIN_SECONDS,
        clock: Callable[[], float] | None = None,
        ramp_seconds: float = 0.0,
    ) -> None:
        _require(requests_per_minute >= 1, "requests_per_minute must be >= 1")
        _require(window_seconds > 0 and safety_margin_seconds >= 0, "window must be positive")
        for limit in (input_tokens_per_minute, output_tokens_per_minute):
            _require(limit is None or limit >= 1, "token limits must be >= 1 or None")
        self._redis = redis
        self._keys = _Keys.under(key_prefix)
        self.requests_per_minute = requests_per_minute
        self.input_tokens_per_minute = input_tokens_per_minute
        self.output_tokens_per_minute = output_tokens_per_minute
        self.window_seconds = window_seconds
        self._window_us = round((window_seconds + safety_margin_seconds) * US_PER_SECOND)
        self._ramp_us = round(max(0.0, ramp_seconds) * US_PER_SECOND)
        # clock=None means "Redis TIME"; a clock (epoch seconds) is for tests and exotic setups.
        self._clock = clock
        self._acquire_script = self._script(ACQUIRE_LUA)
        self._settle_script = self._script(SETTLE_LUA)
        self._pause_script = self._script(PAUSE_LUA)
        self._status_script = self._script(STATUS_LUA)

    async def acquire(
        self,
        *,
        estimated_input_tokens: int = 0,
        estimated_output_tokens: int = 0,
        # A timeout argument (not asyncio.timeout) so the caller gets a typed, catchable error.
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> Permit:
        """Wait until one request and its estimated tokens fit the window, then reserve them."""
        self._check_fits(estimated_input_tokens, estimated_output_tokens)
        started = time.monotonic()
        deadline = None if timeout is None else started + timeout
        reservation_id, waiter_id = uuid.uuid4().hex, uuid.uuid4().hex
        granted = False
        try:
            while True:
                granted, wait_us, now_us = await self._try_reserve(
                    reservation_id, waiter_id, estimated_input_tokens, estimated_output_tokens
                )
                if granted:
                    break
                await asyncio.sleep(_sleep_seconds(wait_us, deadline))
        finally:
            if not granted:
                await self._redis.zrem(self._keys.waiters, waiter_id)
        waited = time.monotonic() - started
        if waited >= SLOW_WAIT_LOG_SECONDS:
            log.debug("generator.llm.limiter_waited", waited_seconds=round(waited, 3))
        return Permit(
            reservation_id=reservation_id,
            granted_at=_from_us(now_us),
            waited_seconds=waited,
            estimated_input_tokens=estimated_input_tokens,
            estimated_output_tokens=estimated_output_tokens,
            limiter=self,
        )

    async def settle(self, reservation_id: str, actual_input: int, actual_output: int) -> bool:
        """Replace a reservation's token estimates with actual usage."""
        result = await self._run(self._settle_script, [reservation_id, actual_input, actual_output])
        return bool(result)

    async def pause(self, seconds: float, reason: str) -> datetime | None:
        """Pause every replica for `seconds` (never shortening a longer pause); return the end."""
        if seconds <= 0:
            return None
        pause_us = math.ceil(seconds * US_PER_SECOND)
        changed, until_us = await self._run(
            self._pause_script, [self._now_arg(), pause_us, reason.replace("|", "/")]
        )
        paused_until = _from_us(int(until_us))
        if changed:
            log.info(
                "generator.llm.fleet_paused",
                reason=reason,
                seconds=round(seconds, 3),
                paused_until=paused_until.isoformat(),
            )
        return paused_until

    async def observe_headers(self, headers: HeaderLimits) -> float:
        """Adopt the API's advertised limits; pause until reset when a budget is nearly out.

        Returns the seconds paused (0 when nothing is nearly out).
        """
        await self._advertise(headers)
        budgets = (
            ("requests", headers.requests_remaining, headers.requests_reset,
             _lowest(self.requests_per_minute, headers.requests_limit)),
            ("input_tokens", headers.input_remaining, headers.input_reset,
             _lowest(self.input_tokens_per_minute, headers.input_limit)),
            ("output_tokens", headers.output_remaining, headers.output_reset,
             _lowest(self.output_tokens_per_minute, headers.output_limit)),
        )  # fmt: skip
        now = datetime.fromtimestamp(self._now_seconds(), UTC)
        longest, reason = 0.0, ""
        for name, remaining, reset_at, limit in budgets:
            if remaining is None or reset_at is None or remaining > _near_empty(limit):
                continue
            # A bad or far-future reset header must not stall the fleet beyond one window.
            seconds = min((reset_at - now).total_seconds(), self._window_us / US_PER_SECOND)
            if seconds > longest:
                longest, reason = seconds, f"{name}_nearly_exhausted"
        if longest > 0:
            await self.pause(longest, reason)
        return longest

    async def _advertise(self, headers: HeaderLimits) -> None:
        """Keep the limits the API advertises in Redis, where every replica's acquire reads them."""
        fields = {
            name: value
            for name, value in (
                ("requests", headers.requests_limit),
                ("input", headers.input_limit),
                ("output", headers.output_limit),
            )
            if value is not None and value > 0
        }
        if not fields:
            return
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._keys.advertised, mapping=fields)
            pipe.expire(self._keys.advertised, ADVERTISED_TTL_SECONDS)
            await pipe.execute()

    async def status(self) -> LimiterStatus:
        """Return a fleet-wide snapshot: usage, reset time, pause and waiters."""
        now_arg = self._now_arg()
        row = await self._run(self._status_script, [now_arg, self._window_us])
        now_us, used, oldest_us, input_used, output_used, waiting, pause_raw, *limits = row
        paused_until, pause_reason = _parse_pause(_text(pause_raw), int(now_us))
        advertised = {
            name: int(value)
            for name, value in zip(
                ("requests", "input_tokens", "output_tokens"), limits, strict=True
            )
            if int(value) > 0
        }
        return LimiterStatus(
            requests_per_minute=self.requests_per_minute,
            advertised=advertised,
            window_seconds=self.window_seconds,
            used=int(used),
            remaining=max(0, self.requests_per_minute - int(used)),
            reset_at=None if int(oldest_us) < 0 else _from_us(int(oldest_us) + self._window_us),
            paused_until=paused_until,
            pause_reason=pause_reason,
            waiting=int(waiting),
            input_tokens=_budget(self.input_tokens_per_minute, int(input_used)),
            output_tokens=_budget(self.output_tokens_per_minute, int(output_used)),
        )

    async def _try_reserve(
        self, reservation_id: str, waiter_id: str, est_input: int, est_output: int
    ) -> tuple[bool, int, int]:
        args: list[str | int] = [
            self._now_arg(),
            self._window_us,
            self.requests_per_minute,
            _limit_arg(self.input_tokens_per_minute),
            _limit_arg(self.output_tokens_per_minute),
            est_input,
            est_output,
            reservation_id,
            waiter_id,
            round(WAITER_LEASE_SLACK_SECONDS * US_PER_SECOND),
            self._ramp_us,
        ]
        granted, wait_us, now_us = await self._run(self._acquire_script, args)
        return bool(granted), int(wait_us), int(now_us)

    def _check_fits(self, est_input: int, est_output: int) -> None:
        # An estimate above the limit could never be granted; fail instead of waiting forever.
        _require(min(est_input, est_output) >= 0, "token estimates must be >= 0")
        for estimate, limit in (
            (est_input, self.input_tokens_per_minute),
            (est_output, self.output_tokens_per_minute),
        ):
            _require(limit is None or estimate <= limit, "token estimate exceeds the limit")

    def _script(self, body: str) -> AsyncScript:
        return self._redis.register_script(PRELUDE + body)

    async def _run(self, script: AsyncScript, args: Sequence[str | int]) -> list[Any]:
        return cast(list[Any], await script(keys=self._keys.all, args=args))

    def _now_arg(self) -> str:
        return "" if self._clock is None else str(round(self._clock() * US_PER_SECOND))

    def _now_seconds(self) -> float:
        return time.time() if self._clock is None else self._clock()


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _sleep_seconds(wait_us: int, deadline: float | None) -> float:
    wait = wait_us / US_PER_SECOND + WAKE_SLACK_SECONDS
    if deadline is None:
        return wait
    left = deadline - time.monotonic()
    if left <= 0:
        raise LimiterTimeoutError("no rate-limit permit before the timeout")
    # Sleep to the deadline and try once more: a settle() elsewhere may free tokens meanwhile.
    return min(wait, left)


def _lowest(ours: int | None, advertised: int | None) -> int | None:
    if ours is None or advertised is None:
        return ours if advertised is None else advertised
    return min(ours, advertised)


def _near_empty(limit: int | None) -> int:
    return 0 if limit is None else math.floor(limit * NEAR_EMPTY_FRACTION)


def _limit_arg(limit: int | None) -> int:
    return -1 if limit is None else limit


def _budget(limit: int | None, used: int) -> TokenBudget | None:
    if limit is None:
        return None
    return TokenBudget(limit=limit, used=used, remaining=max(0, limit - used))


def _from_us(epoch_us: int) -> datetime:
    seconds, micros = divmod(epoch_us, US_PER_SECOND)
    return datetime.fromtimestamp(seconds, UTC) + timedelta(microseconds=micros)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _parse_pause(raw: str, now_us: int) -> tuple[datetime | None, str | None]:
    if not raw:
        return None, None
    until, _, reason = raw.partition("|")
    if int(until) <= now_us:
        return None, None
    return _from_us(int(until)), reason or None


def build_limiter(redis: Redis, settings: Settings) -> FleetLimiter:
    """The fleet-wide limiter every replica and the API share (same Redis keys)."""
    return FleetLimiter(
        redis,
        key_prefix=llm_limiter_prefix(settings),
        requests_per_minute=settings.llm_requests_per_minute,
        input_tokens_per_minute=settings.llm_input_tokens_per_minute,
        output_tokens_per_minute=settings.llm_output_tokens_per_minute,
        window_seconds=settings.llm_rate_window_seconds,
        safety_margin_seconds=settings.llm_rate_safety_margin_seconds,
        ramp_seconds=settings.llm_ramp_seconds,
    )
