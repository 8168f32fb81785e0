"""Claude Messages API client on httpx, with typed errors split into retryable and permanent."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

import httpx
import orjson

from shared.llm.limiter import HeaderLimits
from shared.llm.params import message_params
from shared.llm.pricing import CacheTtl

MESSAGES_PATH = "/v1/messages"
# A 429 carrying this wording is a billing stop, not back-pressure: waiting will not clear it.
_SPEND_LIMIT = re.compile(
    r"credit balance|usage limit|spend(ing)? limit|billing|purchase credits", re.IGNORECASE
)
_FRACTION = re.compile(r"(\.\d{6})\d+")
_MAX_ERROR_MESSAGE = 300


@dataclass(frozen=True, slots=True)
class RateLimitHeaders:
    """Snapshot of the ``anthropic-ratelimit-*`` and ``retry-after`` response headers."""

    requests_limit: int | None = None
    requests_remaining: int | None = None
    requests_reset: datetime | None = None
    tokens_limit: int | None = None
    tokens_remaining: int | None = None
    tokens_reset: datetime | None = None
    input_tokens_limit: int | None = None
    input_tokens_remaining: int | None = None
    input_tokens_reset: datetime | None = None
    output_tokens_limit: int | None = None
    output_tokens_remaining: int | None = None
    output_tokens_reset: datetime | None = None
    retry_after: float | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> RateLimitHeaders:
        """Parse the headers; absent or unparseable values become None."""
        values: dict[str, Any] = {"retry_after": parse_retry_after(headers.get("retry-after"))}
        for name in ("requests", "tokens", "input-tokens", "output-tokens"):
            prefix, key = f"anthropic-ratelimit-{name}", name.replace("-", "_")
            values[f"{key}_limit"] = _int(headers.get(f"{prefix}-limit"))
            values[f"{key}_remaining"] = _int(headers.get(f"{prefix}-remaining"))
            values[f"{key}_reset"] = parse_rfc3339(headers.get(f"{prefix}-reset"))
        return cls(**values)

    def as_limits(self) -> HeaderLimits:
        """What the limiter adopts: limits, remaining and reset per budget."""
        return HeaderLimits(
            requests_limit=self.requests_limit, requests_remaining=self.requests_remaining,
            requests_reset=self.requests_reset, input_limit=self.input_tokens_limit,
            input_remaining=self.input_tokens_remaining, input_reset=self.input_tokens_reset,
            output_limit=self.output_tokens_limit,
            output_remaining=self.output_tokens_remaining,
            output_reset=self.output_tokens_reset,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class LLMResponse:
    """One successful Messages API answer."""

    text: str
    stop_reason: str
    input_tokens: int
    output_tokens: int
    model: str
    request_id: str | None
    message_id: str | None
    rate_limits: RateLimitHeaders
    duration_s: float
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    # The input of each tool_use block, by tool name (the judge's `record_scores`).
    tool_inputs: dict[str, Any] = field(default_factory=dict)


class LLMError(Exception):
    """Base of every client failure; ``retryable`` says whether trying again can help."""

    retryable: ClassVar[bool] = False
    code: ClassVar[str] = "llm_error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_type: str | None = None,
        retry_after: float | None = None,
        request_id: str | None = None,
        rate_limits: RateLimitHeaders | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.error_type = error_type
        self.retry_after = retry_after
        self.request_id = request_id
        self.rate_limits = rate_limits


class RateLimited(LLMError):
    """Plain 429: back-pressure; pause the fleet for ``retry_after`` and try again."""

    retryable = True
    code = "rate_limited"


class SpendLimitReached(LLMError):
    """429 (or 400) saying a spend limit or the credit balance was reached: permanent."""

    code = "spend_limit_reached"


class Overloaded(LLMError):
    """529: the API is overloaded."""

    retryable = True
    code = "overloaded"


class ServerError(LLMError):
    """Any other 5xx."""

    retryable = True
    code = "server_error"


class Timeout(LLMError):
    """No complete answer within the client timeout."""

    retryable = True
    code = "timeout"


class ConnectionFailed(LLMError):
    """The connection could not be made or broke mid-request."""

    retryable = True
    code = "connection_failed"


class InvalidResponse(LLMError):
    """A 2xx whose body is not a Messages response (e.g. a proxy's HTML page)."""

    retryable = True
    code = "invalid_response"


class BadRequest(LLMError):
    """400: our request is wrong; retrying will not help."""

    code = "bad_request"


class AuthFailed(LLMError):
    """401/403: the key is missing, wrong or lacks permission."""

    code = "auth_failed"


class NotFoundError(LLMError):
    """404: unknown model or path."""

    code = "not_found"


class PayloadTooLarge(LLMError):
    """413: the request body is over the API's limit."""

    code = "payload_too_large"


class UnexpectedStatus(LLMError):
    """Any other non-2xx status: treated as permanent."""

    code = "unexpected_status"


_BY_STATUS: dict[int, type[LLMError]] = {
    400: BadRequest,
    401: AuthFailed,
    403: AuthFailed,
    404: NotFoundError,
    408: Timeout,
    413: PayloadTooLarge,
    529: Overloaded,
}


class ClaudeClient:
    """Calls ``POST /v1/messages``; the caller owns the ``httpx.AsyncClient`` and the limiter."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        api_key: str,
        base_url: str,
        model: str,
        anthropic_version: str = "2023-06-01",
        timeout: float = 60.0,
    ) -> None:
        self._http = http
        self._api_key = api_key
        self._url = base_url.rstrip("/") + MESSAGES_PATH
        self.model = model
        self.anthropic_version = anthropic_version
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"ClaudeClient(url={self._url!r}, model={self.model!r})"

    async def create_message(
        self,
        *,
        system: str | None,
        messages: list[dict[str, Any]],
        max_tokens: int,
        temperature: float | None,
        cache_ttl: CacheTtl | None = None,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: dict[str, Any] | None = None,
    ) -> LLMResponse:
        """Send one Messages request; raise an ``LLMError`` subclass on any failure."""
        payload = message_params(
            model=self.model, system=system, messages=messages, max_tokens=max_tokens,
            temperature=temperature, cache_ttl=cache_ttl, tools=tools, tool_choice=tool_choice,
        )  # fmt: skip
        started = time.perf_counter()
        response = await self._post(orjson.dumps(payload))
        duration = time.perf_counter() - started
        if not response.is_success:
            raise error_from_response(response)
        return parse_response(response, duration)

    async def _post(self, body: bytes) -> httpx.Response:
        headers = {
            "x-api-key": self._api_key,
            "anthropic-version": self.anthropic_version,
            "content-type": "application/json",
            "accept": "application/json",
        }
        try:
            return await self._http.post(
                self._url, content=body, headers=headers, timeout=self.timeout
            )
        except httpx.TimeoutException as exc:
            raise Timeout(f"no answer within {self.timeout:g}s ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise ConnectionFailed(f"transport error: {type(exc).__name__}") from None


def error_from_response(response: httpx.Response) -> LLMError:
    """Map a non-2xx response to the matching typed error."""
    status = response.status_code
    error_type, api_message = _error_fields(response.content)
    limits = RateLimitHeaders.from_headers(response.headers)
    cls = _error_class(status, api_message)
    message = f"{status} {error_type or 'error'}: {api_message or response.reason_phrase}"
    return cls(
        message[:_MAX_ERROR_MESSAGE],
        status=status,
        error_type=error_type,
        retry_after=limits.retry_after,
        request_id=response.headers.get("request-id"),
        rate_limits=limits,
    )


def is_spend_limit(api_message: str) -> bool:
    """Whether an API error message says a spend limit or the credit balance was reached."""
    return _SPEND_LIMIT.search(api_message) is not None


def _error_class(status: int, api_message: str) -> type[LLMError]:
    if status in (400, 429) and is_spend_limit(api_message):
        return SpendLimitReached
    if status == 429:
        return RateLimited
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    return ServerError if status >= 500 else UnexpectedStatus


def _error_fields(content: bytes) -> tuple[str | None, str]:
    """Return the API's error type and message from an error body, if it has them."""
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        return None, ""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, ""
    kind, message = error.get("type"), error.get("message")
    return (kind if isinstance(kind, str) else None), (message if isinstance(message, str) else "")


def parse_response(response: httpx.Response, duration: float) -> LLMResponse:
    """Build an ``LLMResponse`` from a 2xx body; raise ``InvalidResponse`` if it is not one."""
    request_id = response.headers.get("request-id")
    try:
        return message_from_body(
            orjson.loads(response.content),
            request_id=request_id,
            rate_limits=RateLimitHeaders.from_headers(response.headers),
            duration=duration,
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        message = f"{response.status_code} response is not a Messages body ({type(exc).__name__})"
        raise InvalidResponse(message, status=response.status_code, request_id=request_id) from None


def message_from_body(
    body: Any, *, request_id: str | None, rate_limits: RateLimitHeaders, duration: float
) -> LLMResponse:
    """A Messages body (live answer or batch result) as an ``LLMResponse``; KeyError etc. if not."""
    usage = body["usage"]
    return LLMResponse(
        text="".join(b["text"] for b in body["content"] if b.get("type") == "text"),
        stop_reason=str(body["stop_reason"]),
        input_tokens=int(usage["input_tokens"]),
        output_tokens=int(usage["output_tokens"]),
        model=str(body.get("model", "")),
        request_id=request_id,
        message_id=body.get("id"),
        rate_limits=rate_limits,
        duration_s=duration,
        cache_write_tokens=int(usage.get("cache_creation_input_tokens") or 0),
        cache_read_tokens=int(usage.get("cache_read_input_tokens") or 0),
        tool_inputs={
            str(b["name"]): b.get("input") for b in body["content"] if b.get("type") == "tool_use"
        },
    )


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def parse_rfc3339(value: str | None) -> datetime | None:
    """Parse an RFC 3339 timestamp (``Z`` or offset, any fraction) to an aware datetime."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(_FRACTION.sub(r"\1", value.strip()))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_retry_after(value: str | None) -> float | None:
    """Parse ``retry-after`` as seconds (a number or an HTTP date); negative becomes 0."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError):
            return None
    return max(0.0, seconds) if math.isfinite(seconds) else None
