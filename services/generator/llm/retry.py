"""Pure retry policy for Claude calls: what to do after a failed attempt, and how long to wait."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from services.generator.llm.client import LLMError, RateLimited

DEFAULT_BASE_SECONDS = 1.0
DEFAULT_CAP_SECONDS = 300.0
DEFAULT_JITTER_SECONDS = 1.0


class RetryAction(StrEnum):
    """What the caller does next."""

    RETRY = "retry"
    GIVE_UP = "give_up"
    PAUSE_FLEET = "pause_fleet"


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """The verdict on one failed attempt."""

    action: RetryAction
    delay_s: float
    consumes_attempt: bool
    reason: str


def backoff_seconds(
    attempt: int,
    *,
    base: float = DEFAULT_BASE_SECONDS,
    cap: float = DEFAULT_CAP_SECONDS,
    jitter: float = DEFAULT_JITTER_SECONDS,
    rng: Callable[[], float] = random.random,
) -> float:
    """Return ``min(cap, base * 2**attempt) + jitter * rng()``."""
    exponent = min(max(attempt, 0), 64)  # 2**64 s is past any cap; avoids float overflow
    return min(cap, base * 2.0**exponent) + jitter * rng()


def decide(
    error: LLMError,
    attempt: int,
    max_attempts: int,
    *,
    base: float = DEFAULT_BASE_SECONDS,
    rng: Callable[[], float] = random.random,
) -> RetryDecision:
    """Decide after the failure of attempt number ``attempt`` (0-based, attempts used so far).

    A plain 429 pauses the whole fleet for ``retry-after`` and does not use up an attempt;
    permanent errors give up at once; retryable ones back off until ``max_attempts`` are used.
    """
    if isinstance(error, RateLimited):
        delay = error.retry_after
        if delay is None:
            delay = backoff_seconds(attempt, base=base, rng=rng)
        return RetryDecision(RetryAction.PAUSE_FLEET, delay, False, error.code)
    if not error.retryable:
        return RetryDecision(RetryAction.GIVE_UP, 0.0, True, error.code)
    if attempt + 1 >= max_attempts:
        return RetryDecision(RetryAction.GIVE_UP, 0.0, True, f"{error.code}: attempts exhausted")
    delay = backoff_seconds(attempt, base=base, rng=rng)
    if error.retry_after is not None:
        delay = max(delay, error.retry_after)
    return RetryDecision(RetryAction.RETRY, delay, True, error.code)
