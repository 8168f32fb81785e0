"""One claimed item's attempt loop: gate (cancel, cost cap), limiter, call, book, retry or land.

Retries (DESIGN §5) happen in this loop while the job's time budget allows and become a deferred
re-run of the job (arq `Retry(defer=...)`, raised by worker.py for `Deferred`) when they do not:
a job never sleeps past its timeout, and a long wait does not hold a worker slot.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
import weakref
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final
from uuid import UUID

import asyncpg

from services.generator import items, metrics
from services.generator.attempts import held
from services.generator.items import Gate, ItemRef
from services.generator.landing import LandingHook, Produced, build_draft, land
from services.generator.llm.client import (
    AuthFailed,
    LLMError,
    LLMResponse,
    RateLimited,
    RateLimitHeaders,
    SpendLimitReached,
    Timeout,
)
from services.generator.llm.retry import RetryAction, decide
from services.generator.parsing import GenerationParseError, ParsedGeneration, extract_conversation
from services.generator.providers import Fleet
from shared.conversations.continuation import next_role
from shared.dedup.service import Deduplicator
from shared.llm.limiter import LimiterTimeoutError, Permit
from shared.llm.pricing import CacheTtl, Usage, cost_usd, list_cost_usd, table_for
from shared.logging import get_logger
from shared.models.generation import (
    BatchJob,
    GenerationItem,
    ItemRequest,
    JobMode,
    LogStatus,
    NewLog,
    StopReason,
)
from shared.runtime import JobDeferred
from shared.storage import ObjectStore

log = get_logger(__name__)
# A prompt tokenizes at >= 2 characters per token in practice (English is ~4): reserving twice the
# chars/4 estimate plus max_tokens of output bounds a call's cost for the cost cap.
INPUT_RESERVE_FACTOR: Final = 2
# Plain 429s do not use up attempts, but an API that never stops answering 429 ends the item.
MAX_PLAIN_429: Final = 50
LANDING_MARGIN_SECONDS: Final = 2.0
# One task per process waits in the Redis limiter at a time; the others queue here. Every waiter
# in Redis wakes when a slot frees, so without this each freed slot would wake every waiting job
# of the fleet (a thundering herd of Redis calls); with it, one per replica.
_PERMIT_QUEUES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def _permit_queue() -> asyncio.Lock:
    loop = asyncio.get_running_loop()
    queue = _PERMIT_QUEUES.get(loop)
    if queue is None:
        queue = _PERMIT_QUEUES[loop] = asyncio.Lock()
    return queue


def _loop_time(monotonic_deadline: float) -> float:
    """A time.monotonic() deadline on the event loop's clock."""
    return asyncio.get_running_loop().time() + (monotonic_deadline - time.monotonic())


class Deferred(JobDeferred):
    """Run this job again in `seconds` (the item is back in the queue, or was never taken)."""

    def __init__(self, seconds: float, reason: str) -> None:
        super().__init__(f"deferred {seconds:.1f}s: {reason}")
        self.seconds = max(0.0, seconds)
        self.reason = reason


@dataclass(frozen=True)
class Budget:
    """The time a job may still use before arq's timeout, minus what one call and landing need."""

    deadline: float
    call_need: float

    def spare(self) -> float:
        """Seconds left for waiting (limiter, backoff) while still fitting one call."""
        return self.deadline - time.monotonic() - self.call_need


@dataclass(frozen=True)
class Step:
    """An attempt's result: finished with `outcome`, or try again after `delay` seconds."""

    outcome: str | None
    attempts: int = 0
    delay: float = 0.0
    reason: str = ""


class ItemRun:
    """Runs one item that this job holds the lease of."""

    def __init__(
        self,
        fleet: Fleet,
        pool: asyncpg.Pool,
        storage: ObjectStore,
        ref: ItemRef,
        claimed: tuple[BatchJob, GenerationItem],
        budget: Budget,
    ) -> None:
        self.fleet, self.pool, self.storage = fleet, pool, storage
        self.ref, self.budget = ref, budget
        self.batch, self.item = claimed
        self.request: ItemRequest = self.item.request
        self.settings = fleet.settings
        self.dedup = Deduplicator(pool, fleet.redis, fleet.settings)
        self.spent = self.item.cost_usd
        self.plain_429 = 0
        self.attempt_id: UUID | None = None
        self.mode = JobMode.LIVE
        self.price_entry, self.price = table_for(self.settings).price_for(fleet.provider.model)
        # Work done in the landing's transaction and after its commit (the judge's job).
        self.on_landed: LandingHook | None = None
        self.prompt_sha256 = hashlib.sha256(
            f"{self.request.prefix}\x00{self.request.user_message}".encode()
        ).hexdigest()

    async def run(self) -> str:
        """Attempt until the item completes, fails, stops or is deferred."""
        attempts, reservation = self.item.attempts, self._reservation()
        # The claim just checked cancel/stop under the batch lock; without a cost cap there is
        # nothing to reserve, so the first call needs no second look.
        gated = self.batch.cost_cap_usd is None
        while True:
            if not gated:
                gate = await items.gate(self.pool, self.ref, reservation)
                if gate in (Gate.STOP, Gate.LOST):
                    return "stopped" if gate == Gate.STOP else "lost"
                if gate == Gate.WAIT:
                    await self._pause(0.5 + random.random(), "cost_cap_room")
                    continue
            gated = False
            step = await self._attempt(attempts)
            if step.outcome is not None:
                return step.outcome
            attempts = step.attempts
            await self._pause(step.delay, step.reason)

    def _reservation(self) -> Decimal:
        # Worst case: every prompt token written to the cache (the dearest input price).
        prompt = INPUT_RESERVE_FACTOR * self.request.estimated_input_tokens
        return self._cost(Usage(cache_write_tokens=prompt, output_tokens=self.request.max_tokens))

    @property
    def cache_ttl(self) -> CacheTtl | None:
        """The cache lifetime this run's calls ask for (None with caching off)."""
        if not self.settings.llm_prompt_caching:
            return None
        return CacheTtl.ONE_HOUR if self.mode == JobMode.BATCH else CacheTtl.FIVE_MINUTES

    def _cost(self, usage: Usage) -> Decimal:
        if self.fleet.offline:
            return Decimal(0)
        ttl = self.cache_ttl or CacheTtl.FIVE_MINUTES
        return cost_usd(self.price, usage, batch=self.mode == JobMode.BATCH, cache_ttl=ttl)

    async def _attempt(self, attempts: int) -> Step:
        # On the books before it leaves: no row (lease lost, database down), no request. The
        # row comes before the permit so that nothing delays a permitted request from leaving
        # (the fleet's rate window is measured at the permit).
        self.attempt_id = await items.open_attempt(
            self.pool, self.ref, self.request.template_id,
            self._log(attempts, LogStatus.IN_FLIGHT, 0.0), self._reservation(),
        )  # fmt: skip
        if self.attempt_id is None:
            return Step("lost")
        try:
            permit = await self._permit()
        except BaseException:
            await asyncio.shield(items.discard_attempt(self.pool, self.ref, self.attempt_id))
            raise
        started = time.perf_counter()
        try:
            response = await self._call()
        except LLMError as error:
            elapsed = time.perf_counter() - started
            return await self._call_failed(error, permit, attempts, elapsed)
        except asyncio.CancelledError:
            # Shutdown mid-call: the request may still be billed; say so in the log.
            await asyncio.shield(self._book_cancelled(attempts, time.perf_counter() - started))
            raise
        return await self._answered(response, permit, attempts)

    async def _call(self) -> LLMResponse:
        """The Messages call itself (the judge's run adds its tool)."""
        return await self.fleet.provider.create_message(
            system=self.request.prefix or None,
            messages=[{"role": "user", "content": self.request.user_message}],
            max_tokens=self.request.max_tokens,
            temperature=self.request.temperature,
            cache_ttl=self.cache_ttl,
        )

    async def _permit(self) -> Permit | None:
        limiter = self.fleet.limiter
        if limiter is None:
            return None
        deadline = time.monotonic() + self.budget.spare()
        started = time.monotonic()
        queue = _permit_queue()
        try:
            async with asyncio.timeout_at(_loop_time(deadline)):
                await queue.acquire()
        except TimeoutError:
            raise await self._defer(random.uniform(0.2, 1.0), "limiter") from None
        try:
            permit = await limiter.acquire(
                estimated_input_tokens=_clamp(
                    self.request.estimated_input_tokens, limiter.input_tokens_per_minute
                ),
                estimated_output_tokens=_clamp(
                    self.request.max_tokens, limiter.output_tokens_per_minute
                ),
                timeout=deadline - time.monotonic(),
            )
        except LimiterTimeoutError:
            raise await self._defer(random.uniform(0.2, 1.0), "limiter") from None
        finally:
            queue.release()
        metrics.LIMITER_WAIT.observe(time.monotonic() - started)
        return permit

    async def _call_failed(
        self, error: LLMError, permit: Permit | None, attempts: int, elapsed: float
    ) -> Step:
        await self._settle(permit, 0, 0)
        await self._observe_headers(error.rate_limits)
        decision = decide(
            error, attempts, self.settings.llm_max_attempts,
            base=self.settings.llm_backoff_base_seconds,
        )  # fmt: skip
        booked = await self._book(
            self._failure_log(error, attempts, elapsed), consumed=decision.consumes_attempt
        )
        self._count_call(error.code, elapsed)
        if booked is None:
            return Step("lost")
        log.info(
            "generator.llm.call_failed", code=error.code, status=error.status,
            action=decision.action.value, attempts=booked, delay_s=round(decision.delay_s, 2),
        )  # fmt: skip
        if decision.action == RetryAction.PAUSE_FLEET:
            return await self._rate_limited(decision.delay_s, booked)
        if decision.action == RetryAction.RETRY:
            return Step(None, booked, decision.delay_s, error.code)
        return await self._give_up(error)

    async def _rate_limited(self, delay: float, attempts: int) -> Step:
        self.plain_429 += 1
        if self.plain_429 > MAX_PLAIN_429:
            await self._fail("rate_limited", f"{MAX_PLAIN_429} rate-limit answers in a row")
            return Step("failed")
        if self.fleet.limiter is not None:
            await self.fleet.limiter.pause(delay, "rate_limited_429")
            metrics.FLEET_PAUSES.labels("rate_limited_429").inc()
        # The next acquire() waits out the fleet-wide pause; no extra sleep here.
        return Step(None, attempts, 0.0, "rate_limited")

    async def _give_up(self, error: LLMError) -> Step:
        stop = None
        if isinstance(error, SpendLimitReached):
            stop = StopReason.SPEND_LIMIT
        elif isinstance(error, AuthFailed):
            stop = StopReason.AUTH_FAILED
        await self._fail(error.code, error.message, stop=stop)
        return Step("failed")

    async def land_answer(self, response: LLMResponse, attempts: int) -> str:
        """Parse, score, store and book an answer that arrived outside a live call (a batch)."""
        step = await self._answered(response, None, attempts)
        assert step.outcome is not None
        return step.outcome

    async def _settle_answer(self, response: LLMResponse, permit: Permit | None) -> Decimal:
        """Settle the permit with the tokens used, learn the limits, count and cost the call."""
        prompt_tokens = response.input_tokens + response.cache_write_tokens
        await self._settle(
            permit, prompt_tokens + response.cache_read_tokens, response.output_tokens
        )
        await self._observe_headers(response.rate_limits)
        cost = self._cost(usage_of(response))
        self._count_call("success", response.duration_s, response, cost)
        return cost

    async def _answered(self, response: LLMResponse, permit: Permit | None, attempts: int) -> Step:
        cost = await self._settle_answer(response, permit)
        try:
            parsed = extract_conversation(response.text, response.stop_reason, **self._shape())
        except GenerationParseError as error:
            await self._book(self._answer_log(response, cost, attempts, error), consumed=True)
            await self._fail(error.code, error.message)
            return Step("failed")
        self.spent += cost
        entry = self._answer_log(response, cost, attempts, None)
        return Step(await self._land(parsed, response, entry))

    def _shape(self) -> dict[str, Any]:
        """What the answer must look like: a whole conversation, or the turns after the kept."""
        if not self.request.kept_turns:
            return {}
        return {"first_role": next_role(self.request.kept_turns), "min_turns": 1}

    async def _land(self, parsed: ParsedGeneration, response: LLMResponse, entry: NewLog) -> str:
        produced = Produced(
            parsed=parsed,
            model=response.model or self.fleet.provider.model,
            offline=self.fleet.offline,
            cost_usd=self.spent,
            estimated_cost_usd=self._cost(
                Usage(self.request.estimated_input_tokens, self.request.estimated_output_tokens)
            ),
            duration_ms=round(response.duration_s * 1000),
        )
        draft = build_draft(self.ref, self.request, produced)
        landed = await held(
            lambda: land(
                self.pool, self.storage, self.dedup, self.ref, draft, entry,
                self.request.template_id, self.on_landed,
            ),
            deadline=self.budget.deadline, what="land",
        )  # fmt: skip
        return "completed" if landed is not None else "lost"

    async def _book(self, entry: NewLog, *, consumed: bool) -> int | None:
        attempts, _ = await held(
            lambda: items.book(
                self.pool, self.ref, self.request.template_id, entry, consumed=consumed
            ),
            deadline=self.budget.deadline, what="book",
        )  # fmt: skip
        self.spent += entry.cost_usd
        return attempts

    async def _book_cancelled(self, attempts: int, elapsed: float) -> None:
        entry = self._log(
            attempts, LogStatus.CANCELLED, elapsed, error_code="cancelled",
            error_message="worker shut down during the call; booked at its worst-case cost",
            cost_usd=self._reservation(),
        )  # fmt: skip
        try:
            await items.book(self.pool, self.ref, self.request.template_id, entry, consumed=False)
        except Exception as exc:  # left in flight: the next claim books it as lost
            log.warning("generator.item.cancel_log_failed", error=str(exc))

    async def _fail(self, code: str, message: str, *, stop: StopReason | None = None) -> None:
        await held(
            lambda: items.fail(self.pool, self.ref, code, message, stop=stop),
            deadline=self.budget.deadline, what="fail",
        )  # fmt: skip
        metrics.CONVERSATIONS.labels(self.request.tier.value, "failed").inc()
        log.info("generator.item.failed", code=code, stop=stop.value if stop else None)

    async def _pause(self, delay: float, reason: str) -> None:
        if delay <= 0:
            return
        if self.budget.spare() - delay <= 0:
            raise await self._defer(delay, reason)
        await asyncio.sleep(delay)

    async def _defer(self, seconds: float, reason: str) -> Deferred:
        await items.release(self.pool, self.ref)
        metrics.DEFERRALS.labels(reason).inc()
        return Deferred(seconds, reason)

    async def _settle(self, permit: Permit | None, input_tokens: int, output_tokens: int) -> None:
        """Replace the permit's token estimates with actual usage (only token limits care)."""
        limiter = self.fleet.limiter
        if permit is None or limiter is None:
            return
        if limiter.input_tokens_per_minute or limiter.output_tokens_per_minute:
            await permit.settle(input_tokens, output_tokens)

    async def _observe_headers(self, limits: RateLimitHeaders | None) -> None:
        limiter = self.fleet.limiter
        if limiter is None or limits is None:
            return
        paused = await limiter.observe_headers(limits.as_limits())
        if paused > 0:
            metrics.FLEET_PAUSES.labels("headers_nearly_exhausted").inc()

    def _count_call(
        self,
        outcome: str,
        elapsed: float,
        response: LLMResponse | None = None,
        cost: Decimal = Decimal(0),
    ) -> None:
        model = self.fleet.provider.model
        metrics.LLM_REQUESTS.labels(model, outcome).inc()
        metrics.LLM_LATENCY.labels(model).observe(elapsed)
        if response is not None:
            metrics.LLM_TOKENS.labels(model, "input").inc(response.input_tokens)
            metrics.LLM_TOKENS.labels(model, "output").inc(response.output_tokens)
            metrics.LLM_COST.labels(model).inc(float(cost))
            metrics.CACHE_TOKENS.labels(model, "write").inc(response.cache_write_tokens)
            metrics.CACHE_TOKENS.labels(model, "read").inc(response.cache_read_tokens)

    def _log(self, attempts: int, status: LogStatus, elapsed: float, **fields: Any) -> NewLog:
        request_excerpt = None
        if self.settings.llm_debug_logging:
            request_excerpt = {
                "system": self.request.prefix,
                "user": self.request.user_message,
            }
        return NewLog(
            attempt=attempts + 1,
            model=self.fleet.provider.model,
            parameters={
                "temperature": self.request.temperature,
                "max_tokens": self.request.max_tokens,
            },
            prompt_sha256=self.prompt_sha256,
            request_excerpt=request_excerpt,
            duration_ms=round(elapsed * 1000),
            status=status,
            attempt_id=self.attempt_id,
            price_entry=self.price_entry,
            prices=self.price.model_dump(mode="json"),
            mode=self.mode.value,
            cache_ttl=self.cache_ttl.value if self.cache_ttl else None,
            **fields,
        )

    def _failure_log(self, error: LLMError, attempts: int, elapsed: float) -> NewLog:
        status = LogStatus.FAILED
        if isinstance(error, RateLimited):
            status = LogStatus.RATE_LIMITED
        elif isinstance(error, Timeout):
            status = LogStatus.TIMEOUT
        excerpt = {"http_status": error.status, "error_type": error.error_type}
        excerpt["request_id"] = error.request_id
        return self._log(
            attempts, status, elapsed, error_code=error.code, error_message=error.message,
            response_excerpt=excerpt,
        )  # fmt: skip

    def _answer_log(
        self,
        response: LLMResponse,
        cost: Decimal,
        attempts: int,
        error: GenerationParseError | None,
    ) -> NewLog:
        excerpt: dict[str, Any] = {
            "stop_reason": response.stop_reason,
            "message_id": response.message_id,
            "request_id": response.request_id,
        }
        if error is not None:
            excerpt["excerpt"] = error.excerpt
        if self.settings.llm_debug_logging:
            excerpt["text"] = response.text
        return self._log(
            attempts,
            LogStatus.SUCCESS if error is None else LogStatus.FAILED,
            response.duration_s,
            response_excerpt=excerpt,
            input_tokens=response.input_tokens,
            output_tokens=response.output_tokens,
            cache_write_tokens=response.cache_write_tokens,
            cache_read_tokens=response.cache_read_tokens,
            cost_usd=cost,
            list_cost_usd=Decimal(0)
            if self.fleet.offline
            else list_cost_usd(self.price, usage_of(response)),
            error_code=None if error is None else error.code,
            error_message=None if error is None else error.message,
        )


def usage_of(response: LLMResponse) -> Usage:
    """The answer's tokens by kind, for pricing."""
    return Usage(
        input_tokens=response.input_tokens,
        output_tokens=response.output_tokens,
        cache_write_tokens=response.cache_write_tokens,
        cache_read_tokens=response.cache_read_tokens,
    )


def _clamp(estimate: int, limit: int | None) -> int:
    return estimate if limit is None else min(estimate, limit)
