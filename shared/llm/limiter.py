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
# Callers put every wait in a metric (Permit.waited_seconds); only long waits are worth a log line.
SLOW_WAIT_LOG_SECONDS: Final = 1.0

# Shared helpers. Numbers are formatted with %.0f because Lua's default number-to-string
# conversion keeps 14 significant digits, which would truncate epoch microseconds.
_PRELUDE = """
local function fmt(x) return string.format('%.0f', x) end
local function clock(arg)
  if arg ~= '' then return tonumber(arg) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function chunked(cmd, key, items)
  -- unpack() of a long list overflows the Lua C stack, so send at most 500 items per call.
  local out = {}
  for i = 1, #items, 500 do
    local part = redis.call(cmd, key, unpack(items, i, math.min(i + 499, #items)))
    if type(part) == 'table' then
      for _, v in ipairs(part) do out[#out + 1] = v end
    end
  end
  return out
end
local function sum(values)
  local total = 0
  for i = 1, #values do total = total + (tonumber(values[i]) or 0) end
  return total
end
"""

# KEYS: requests zset, input hash, output hash, pause string, waiters zset.
# ARGV: now ('' = TIME), window us, request limit, input limit (-1 none), output limit (-1 none),
#       estimated input, estimated output, reservation id, waiter id, waiter lease slack us.
# Returns {granted 1|0, wait us, now us}.
_ACQUIRE_LUA = """
local now = clock(ARGV[1])
local window = tonumber(ARGV[2])

local function park(wait)
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', fmt(now))
  redis.call('ZADD', KEYS[5], fmt(now + wait + tonumber(ARGV[10])), ARGV[9])
  -- Expire with the longest lease; PEXPIRE GT would never set a TTL on a fresh key.
  local last = redis.call('ZRANGE', KEYS[5], -1, -1, 'WITHSCORES')
  redis.call('PEXPIRE', KEYS[5], fmt(math.ceil((tonumber(last[2]) - now) / 1000)))
  return {0, wait, now}
end

local function prune()
  local cutoff = fmt(now - window)
  local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', cutoff)
  if #expired == 0 then return end
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', cutoff)
  chunked('HDEL', KEYS[2], expired)
  chunked('HDEL', KEYS[3], expired)
end

local function request_wait(limit)
  local count = redis.call('ZCARD', KEYS[1])
  if count < limit then return 0 end
  -- The (count - limit)-th oldest reservation must leave before one more fits.
  local entry = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
  return tonumber(entry[2]) + window - now
end

local function token_wait(hash, limit, estimate)
  if limit < 0 then return 0 end
  local entries = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
  local ids, scores = {}, {}
  for i = 1, #entries, 2 do
    ids[#ids + 1] = entries[i]
    scores[#scores + 1] = tonumber(entries[i + 1])
  end
  local amounts = chunked('HMGET', hash, ids)
  local used = sum(amounts)
  if used + estimate <= limit then return 0 end
  -- Oldest first: we can go once enough tokens have left the window.
  for i = 1, #ids do
    used = used - (tonumber(amounts[i]) or 0)
    if used + estimate <= limit then return scores[i] + window - now end
  end
  return window
end

local pause = redis.call('GET', KEYS[4])
if pause then
  local until_us = tonumber(string.match(pause, '^%d+'))
  if until_us and until_us > now then return park(until_us - now) end
end
prune()
local wait = math.max(
  request_wait(tonumber(ARGV[3])),
  token_wait(KEYS[2], tonumber(ARGV[4]), tonumber(ARGV[6])),
  token_wait(KEYS[3], tonumber(ARGV[5]), tonumber(ARGV[7])))
if wait > 0 then return park(wait) end
redis.call('ZADD', KEYS[1], fmt(now), ARGV[8])
redis.call('HSET', KEYS[2], ARGV[8], ARGV[6])
redis.call('HSET', KEYS[3], ARGV[8], ARGV[7])
local ttl = fmt(math.ceil(window / 1000) + 1000)
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ttl) end
redis.call('ZREM', KEYS[5], ARGV[9])
return {1, 0, now}
"""

# ARGV: reservation id, actual input, actual output. Returns 1 if the reservation was still live.
_SETTLE_LUA = """
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
return 1
"""

# ARGV: now ('' = TIME), pause us, reason. Keeps the later of the current and the new pause.
# Returns {changed 1|0, paused until us}.
_PAUSE_LUA = """
local now = clock(ARGV[1])
local until_us = now + tonumber(ARGV[2])
local current = redis.call('GET', KEYS[4])
if current then
  local current_until = tonumber(string.match(current, '^%d+'))
  if current_until and current_until >= until_us then return {0, current_until} end
end
local ttl = fmt(math.ceil((until_us - now) / 1000))
redis.call('SET', KEYS[4], fmt(until_us) .. '|' .. ARGV[3], 'PX', ttl)
return {1, until_us}
"""

# ARGV: now ('' = TIME), window us.
# Returns {now, used, oldest us (-1 none), input used, output used, waiting, pause value or ''}.
_STATUS_LUA = """
local now = clock(ARGV[1])
local entries = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. fmt(now - tonumber(ARGV[2])), '+inf',
  'WITHSCORES')
local ids = {}
for i = 1, #entries, 2 do ids[#ids + 1] = entries[i] end
local oldest = -1
if #entries > 0 then oldest = tonumber(entries[2]) end
local input_used = sum(chunked('HMGET', KEYS[2], ids))
local output_used = sum(chunked('HMGET', KEYS[3], ids))
local waiting = redis.call('ZCOUNT', KEYS[5], '(' .. fmt(now), '+inf')
local pause = redis.call('GET', KEYS[4]) or ''
return {now, #ids, oldest, input_used, output_used, waiting, pause}
"""


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

    @classmethod
    def under(cls, prefix: str) -> _Keys:
        return cls(*(f"{prefix}:{name}" for name in ("requests", "in", "out", "pause", "waiters")))

    @property
    def all(self) -> list[str]:
        # Every script receives every key, so each declares what it touches (Redis Cluster).
        return [self.requests, self.input_tokens, self.output_tokens, self.pause, self.waiters]


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
        # clock=None means "Redis TIME"; a clock (epoch seconds) is for tests and exotic setups.
        self._clock = clock
        self._acquire_script = self._script(_ACQUIRE_LUA)
        self._settle_script = self._script(_SETTLE_LUA)
        self._pause_script = self._script(_PAUSE_LUA)
        self._status_script = self._script(_STATUS_LUA)

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

    async def observe_headers(
        self,
        *,
        remaining_requests: int | None = None,
        requests_reset_at: datetime | None = None,
        remaining_input_tokens: int | None = None,
        input_reset_at: datetime | None = None,
        remaining_output_tokens: int | None = None,
        output_reset_at: datetime | None = None,
    ) -> float:
        """Pause the fleet until reset when the API says a budget is nearly out; return seconds."""
        budgets = (
            ("requests", remaining_requests, requests_reset_at, self.requests_per_minute),
            ("input_tokens", remaining_input_tokens, input_reset_at, self.input_tokens_per_minute),
            (
                "output_tokens",
                remaining_output_tokens,
                output_reset_at,
                self.output_tokens_per_minute,
            ),
        )
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

    async def status(self) -> LimiterStatus:
        """Return a fleet-wide snapshot: usage, reset time, pause and waiters."""
        now_arg = self._now_arg()
        row = await self._run(self._status_script, [now_arg, self._window_us])
        now_us, used, oldest_us, input_used, output_used, waiting, pause_raw = row
        paused_until, pause_reason = _parse_pause(_text(pause_raw), int(now_us))
        return LimiterStatus(
            requests_per_minute=self.requests_per_minute,
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
        return self._redis.register_script(_PRELUDE + body)

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
    )
