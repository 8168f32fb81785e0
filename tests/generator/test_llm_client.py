"""ClaudeClient against the fake Messages API over real HTTP, plus the cost arithmetic."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import httpx
import pytest

from services.generator.llm.client import (
    AuthFailed,
    BadRequest,
    ClaudeClient,
    ConnectionFailed,
    InvalidResponse,
    LLMError,
    NotFoundError,
    Overloaded,
    PayloadTooLarge,
    RateLimited,
    RateLimitHeaders,
    ServerError,
    SpendLimitReached,
    Timeout,
    UnexpectedStatus,
    error_from_response,
    parse_response,
)
from services.generator.parsing import GenerationParseError, extract_conversation
from shared.llm.pricing import estimate_tokens
from tests.fakes.anthropic import FakeAnthropic, FakeConfig

USER = [{"role": "user", "content": "Write a conversation about an emergency fund."}]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(FakeConfig(rpm=1000, window_seconds=1.0, timeout_sleep=5.0)) as fake:
        yield fake


@pytest.fixture
def fake(server: FakeAnthropic) -> FakeAnthropic:
    server.reset()
    return server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def claude(fake: FakeAnthropic, http: httpx.AsyncClient) -> ClaudeClient:
    return make_client(http, fake.base_url, fake.api_key)


def make_client(
    http: httpx.AsyncClient, base_url: str, api_key: str, timeout: float = 5.0
) -> ClaudeClient:
    return ClaudeClient(
        http, api_key=api_key, base_url=base_url, model="claude-test", timeout=timeout
    )


async def call(claude: ClaudeClient, max_tokens: int = 4096) -> object:
    return await claude.create_message(
        system="You write training conversations.",
        messages=USER,
        max_tokens=max_tokens,
        temperature=0.7,
    )


async def test_success_returns_text_usage_and_rate_limit_snapshot(
    fake: FakeAnthropic, claude: ClaudeClient
) -> None:
    fake.configure(latency=0.1)

    response = await claude.create_message(
        system="sys", messages=USER, max_tokens=4096, temperature=0.5
    )

    assert response.stop_reason == "end_turn"
    assert "```json" in response.text
    assert response.model == "claude-test"
    assert response.input_tokens == estimate_tokens("sys" + USER[0]["content"])
    assert response.output_tokens > 100
    assert response.request_id is not None
    assert response.request_id.startswith("req_")
    assert response.duration_s >= 0.1
    limits = response.rate_limits
    assert (limits.requests_limit, limits.requests_remaining) == (1000, 999)
    assert limits.requests_reset is not None
    assert limits.requests_reset.tzinfo is not None
    assert limits.output_tokens_remaining == 80_000 - response.output_tokens
    assert limits.retry_after is None
    sent = fake.requests[0].body
    assert sent == {
        "model": "claude-test",
        "max_tokens": 4096,
        "messages": USER,
        "system": "sys",
        "temperature": 0.5,
    }
    assert len(extract_conversation(response.text, response.stop_reason).turns) >= 8


async def test_optional_fields_are_omitted(fake: FakeAnthropic, claude: ClaudeClient) -> None:
    await claude.create_message(system=None, messages=USER, max_tokens=100, temperature=None)

    assert set(fake.requests[0].body) == {"model", "max_tokens", "messages"}


async def test_window_429_is_rate_limited_with_retry_after(
    fake: FakeAnthropic, claude: ClaudeClient
) -> None:
    fake.configure(rpm=1, window_seconds=1.0)
    await call(claude)

    with pytest.raises(RateLimited) as caught:
        await call(claude)

    error = caught.value
    assert (error.status, error.retryable, error.retry_after) == (429, True, 1.0)
    assert error.error_type == "rate_limit_error"
    assert error.rate_limits is not None
    assert error.rate_limits.requests_remaining == 0
    assert error.rate_limits.requests_reset is not None
    assert error.rate_limits.requests_reset > datetime.now(UTC)


async def test_scripted_429_carries_its_retry_after(
    fake: FakeAnthropic, claude: ClaudeClient
) -> None:
    fake.configure(scripted_retry_after=7)
    fake.script("429")

    with pytest.raises(RateLimited) as caught:
        await call(claude)

    assert caught.value.retry_after == 7.0


@pytest.mark.parametrize("kind", ["spend_limit_429", "credit_429"])
async def test_spend_limit_429_is_permanent(
    fake: FakeAnthropic, claude: ClaudeClient, kind: str
) -> None:
    fake.script(kind)

    with pytest.raises(SpendLimitReached) as caught:
        await call(claude)

    assert caught.value.status == 429
    assert caught.value.retryable is False
    assert caught.value.code == "spend_limit_reached"


@pytest.mark.parametrize(("kind", "error"), [("529", Overloaded), ("500", ServerError)])
async def test_server_side_failures_are_retryable(
    fake: FakeAnthropic, claude: ClaudeClient, kind: str, error: type[LLMError]
) -> None:
    fake.script(kind)

    with pytest.raises(error) as caught:
        await call(claude)

    assert caught.value.status == int(kind)
    assert caught.value.retryable is True


async def test_slow_answer_is_a_timeout(fake: FakeAnthropic, http: httpx.AsyncClient) -> None:
    fake.script("timeout")
    claude = make_client(http, fake.base_url, fake.api_key, timeout=0.3)

    started = time.monotonic()
    with pytest.raises(Timeout) as caught:
        await call(claude)

    assert time.monotonic() - started < 2.0
    assert caught.value.retryable is True


async def test_bad_key_is_auth_failed_and_never_echoed(
    fake: FakeAnthropic, http: httpx.AsyncClient
) -> None:
    secret = "sk-ant-not-the-right-key-123456"
    claude = make_client(http, fake.base_url, secret)

    with pytest.raises(AuthFailed) as caught:
        await call(claude)

    error = caught.value
    assert (error.status, error.retryable, error.error_type) == (401, False, "authentication_error")
    assert "invalid x-api-key" in str(error)
    assert secret not in f"{error} {error!r} {claude!r}"


async def test_invalid_request_is_bad_request(fake: FakeAnthropic, claude: ClaudeClient) -> None:
    with pytest.raises(BadRequest) as caught:
        await call(claude, max_tokens=0)

    assert caught.value.status == 400
    assert "max_tokens" in caught.value.message
    assert "emergency fund" not in caught.value.message


async def test_oversized_body_is_payload_too_large(
    fake: FakeAnthropic, claude: ClaudeClient
) -> None:
    fake.configure(max_body_bytes=512)

    with pytest.raises(PayloadTooLarge):
        await claude.create_message(
            system="x" * 1024, messages=USER, max_tokens=10, temperature=None
        )


async def test_unknown_path_is_not_found(fake: FakeAnthropic, http: httpx.AsyncClient) -> None:
    claude = make_client(http, f"{fake.base_url}/nowhere", fake.api_key)

    with pytest.raises(NotFoundError) as caught:
        await call(claude)

    assert caught.value.retryable is False


async def test_closed_port_is_connection_failed(http: httpx.AsyncClient) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    claude = make_client(http, f"http://127.0.0.1:{port}", "sk-ant-x")

    with pytest.raises(ConnectionFailed) as caught:
        await call(claude)

    assert caught.value.retryable is True


@pytest.mark.parametrize(
    ("kind", "code"), [("malformed", "no_json"), ("truncated", "invalid_json")]
)
async def test_unusable_answers_fail_parsing(
    fake: FakeAnthropic, claude: ClaudeClient, kind: str, code: str
) -> None:
    fake.script(kind)
    response = await claude.create_message(
        system=None, messages=USER, max_tokens=4096, temperature=None
    )

    with pytest.raises(GenerationParseError) as caught:
        extract_conversation(response.text, response.stop_reason)

    assert caught.value.code == code


async def test_max_tokens_answer_reports_the_stop_reason(
    fake: FakeAnthropic, claude: ClaudeClient
) -> None:
    fake.script("max_tokens")

    response = await claude.create_message(
        system=None, messages=USER, max_tokens=2000, temperature=None
    )

    assert (response.stop_reason, response.output_tokens) == ("max_tokens", 2000)


def response(status: int, content: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    request = httpx.Request("POST", "http://claude.test/v1/messages")
    return httpx.Response(status, content=content, headers=headers, request=request)


@pytest.mark.parametrize(
    ("status", "content", "error"),
    [
        (502, b"<html>Bad gateway</html>", ServerError),
        (503, b"", ServerError),
        (403, b'{"type":"error","error":{"type":"permission_error","message":"no"}}', AuthFailed),
        (
            400,
            b'{"type":"error","error":{"type":"invalid_request_error",'
            b'"message":"Your credit balance is too low to access the Anthropic API."}}',
            SpendLimitReached,
        ),
        (418, b"teapot", UnexpectedStatus),
    ],
)
def test_status_mapping(status: int, content: bytes, error: type[LLMError]) -> None:
    assert type(error_from_response(response(status, content))) is error


def test_rate_limit_headers_tolerate_odd_values() -> None:
    parsed = RateLimitHeaders.from_headers(
        {
            "anthropic-ratelimit-requests-limit": "50",
            "anthropic-ratelimit-requests-remaining": "lots",
            "anthropic-ratelimit-requests-reset": "2025-01-01T00:00:30.123456789Z",
            "anthropic-ratelimit-tokens-reset": "yesterday",
            "retry-after": "Wed, 21 Oct 2015 07:28:00 GMT",
        }
    )

    assert parsed.requests_limit == 50
    assert parsed.requests_remaining is None
    assert parsed.requests_reset == datetime(2025, 1, 1, 0, 0, 30, 123456, tzinfo=UTC)
    assert parsed.tokens_reset is None
    assert parsed.retry_after == 0.0
    assert parsed.input_tokens_limit is None


def test_non_messages_200_is_invalid_response() -> None:
    with pytest.raises(InvalidResponse):
        parse_response(response(200, b"<html>captive portal</html>"), 0.1)


def test_estimate_tokens() -> None:
    assert [estimate_tokens(""), estimate_tokens("abc"), estimate_tokens("a" * 400)] == [0, 1, 100]
