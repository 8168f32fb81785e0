"""The retry policy: backoff arithmetic and what each failure leads to."""

from __future__ import annotations

import pytest

from services.generator.llm.client import (
    AuthFailed,
    BadRequest,
    ConnectionFailed,
    InvalidResponse,
    LLMError,
    NotFoundError,
    Overloaded,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    SpendLimitReached,
    Timeout,
    UnexpectedStatus,
)
from services.generator.llm.retry import RetryAction, backoff_seconds, decide


def zero() -> float:
    return 0.0


def half() -> float:
    return 0.5


@pytest.mark.parametrize(("attempt", "expected"), [(0, 1.0), (1, 2.0), (2, 4.0), (8, 256.0)])
def test_backoff_doubles_from_base(attempt: int, expected: float) -> None:
    assert backoff_seconds(attempt, rng=zero) == expected


def test_backoff_is_capped_at_five_minutes_plus_jitter() -> None:
    assert backoff_seconds(9, rng=zero) == 300.0
    assert backoff_seconds(10_000, rng=half) == 300.5


def test_backoff_jitter_and_base_are_configurable() -> None:
    assert backoff_seconds(1, base=0.5, jitter=2.0, rng=half) == 2.0
    assert backoff_seconds(3, base=10.0, cap=30.0, jitter=0.0) == 30.0


def test_default_jitter_is_at_most_one_second() -> None:
    delays = [backoff_seconds(0) for _ in range(200)]

    assert all(1.0 <= d < 2.0 for d in delays)


@pytest.mark.parametrize("error", [Overloaded, ServerError, Timeout, ConnectionFailed])
def test_transient_failures_back_off_and_use_an_attempt(error: type[LLMError]) -> None:
    decision = decide(error("x"), attempt=1, max_attempts=3, rng=zero)

    assert decision.action is RetryAction.RETRY
    assert decision.delay_s == 2.0
    assert decision.consumes_attempt is True


def test_invalid_response_is_retried() -> None:
    assert decide(InvalidResponse("x"), 0, 3).action is RetryAction.RETRY


def test_retries_stop_when_attempts_are_used_up() -> None:
    decision = decide(Overloaded("x", status=529), attempt=2, max_attempts=3)

    assert decision.action is RetryAction.GIVE_UP
    assert "exhausted" in decision.reason


def test_server_retry_after_lengthens_the_backoff() -> None:
    decision = decide(Overloaded("x", retry_after=30.0), attempt=0, max_attempts=3, rng=zero)

    assert decision.delay_s == 30.0


@pytest.mark.parametrize(
    "error",
    [BadRequest, AuthFailed, NotFoundError, PayloadTooLarge, SpendLimitReached, UnexpectedStatus],
)
def test_permanent_failures_give_up_at_once(error: type[LLMError]) -> None:
    decision = decide(error("x", retry_after=5.0), attempt=0, max_attempts=3)

    assert decision.action is RetryAction.GIVE_UP
    assert decision.reason == error.code


def test_plain_429_pauses_the_fleet_without_using_an_attempt() -> None:
    decision = decide(RateLimited("x", status=429, retry_after=12.0), attempt=2, max_attempts=3)

    assert decision.action is RetryAction.PAUSE_FLEET
    assert decision.delay_s == 12.0
    assert decision.consumes_attempt is False


def test_plain_429_without_retry_after_backs_off() -> None:
    decision = decide(RateLimited("x"), attempt=1, max_attempts=3, rng=zero)

    assert decision.action is RetryAction.PAUSE_FLEET
    assert decision.delay_s == 2.0


def test_many_429s_never_exhaust_an_item() -> None:
    errors: list[LLMError] = [RateLimited("x", retry_after=1.0)] * 10 + [Overloaded("x")] * 2
    attempt = 0
    for error in errors:
        decision = decide(error, attempt, max_attempts=3, rng=zero)
        assert decision.action is not RetryAction.GIVE_UP
        attempt += decision.consumes_attempt

    assert attempt == 2
    assert decide(Overloaded("x"), attempt, max_attempts=3).action is RetryAction.GIVE_UP
