"""Message Batches API client: create, retrieve, list, stream results (JSONL), cancel.

Batches cost half the price on every token and answer within 24 hours. A batch holds at most
100,000 requests and 256 MB; each request carries a ``custom_id`` matching
``^[a-zA-Z0-9_-]{1,64}$`` that its result names again (results come in any order).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import httpx
import orjson

from services.generator.llm.client import (
    ConnectionFailed,
    InvalidResponse,
    Timeout,
    error_from_response,
)

BATCHES_PATH: Final = "/v1/messages/batches"
MAX_REQUESTS: Final = 100_000
MAX_BYTES: Final = 256 * 1024 * 1024
CUSTOM_ID: Final = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


@dataclass(frozen=True, slots=True)
class BatchInfo:
    """A Message Batch as the API describes it."""

    id: str
    processing_status: str
    request_counts: dict[str, int]
    created_at: datetime | None = None

    @property
    def ended(self) -> bool:
        """Whether every result is available."""
        return self.processing_status == "ended"

    @property
    def request_total(self) -> int:
        """How many requests the batch holds (every count, processing included)."""
        return sum(self.request_counts.values())


@dataclass(frozen=True, slots=True)
class BatchResult:
    """One line of the results file: the request's custom_id, its type and payload."""

    custom_id: str
    kind: str
    message: dict[str, Any] | None = None
    error_type: str | None = None
    error_message: str = ""


class BatchClient:
    """Calls the batch endpoints; the caller owns the ``httpx.AsyncClient``."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        api_key: str,
        base_url: str,
        anthropic_version: str = "2023-06-01",
        timeout: float = 60.0,
    ) -> None:
        self._http = http
        self._url = base_url.rstrip("/") + BATCHES_PATH
        self._headers = {
            "x-api-key": api_key,
            "anthropic-version": anthropic_version,
            "content-type": "application/json",
        }
        self.timeout = timeout

    async def create(self, requests: list[dict[str, Any]]) -> BatchInfo:
        """Submit `requests` (``{"custom_id", "params"}`` each) as one batch."""
        if not 1 <= len(requests) <= MAX_REQUESTS:
            raise ValueError(f"a batch holds 1 to {MAX_REQUESTS} requests")
        body = orjson.dumps({"requests": requests})
        if len(body) > MAX_BYTES:
            raise ValueError("a batch body may not exceed 256 MB")
        return _info(await self._call("POST", self._url, content=body))

    async def retrieve(self, batch_id: str) -> BatchInfo:
        """The batch's processing status and request counts."""
        return _info(await self._call("GET", f"{self._url}/{batch_id}"))

    async def list_page(
        self, *, after_id: str | None = None, limit: int = 100
    ) -> tuple[list[BatchInfo], str | None]:
        """One page of the workspace's batches, newest first, and the cursor of the next page."""
        query = f"?limit={limit}" + (f"&after_id={after_id}" if after_id else "")
        body = await self._call("GET", self._url + query)
        try:
            infos = [_info(item) for item in body["data"]]
            cursor = str(body["last_id"]) if body.get("has_more") and body.get("last_id") else None
        except (KeyError, TypeError):
            raise InvalidResponse("answer is not a Message Batch list") from None
        return infos, cursor

    async def cancel(self, batch_id: str) -> BatchInfo:
        """Ask the API to stop processing; results not yet produced become ``canceled``."""
        return _info(await self._call("POST", f"{self._url}/{batch_id}/cancel"))

    async def results(self, batch_id: str) -> AsyncIterator[BatchResult]:
        """Stream the ended batch's results file, one parsed line at a time."""
        url = f"{self._url}/{batch_id}/results"
        try:
            async with self._http.stream(
                "GET", url, headers=self._headers, timeout=self.timeout
            ) as response:
                if not response.is_success:
                    await response.aread()
                    raise error_from_response(response)
                async for line in response.aiter_lines():
                    if line.strip():
                        yield parse_result(line)
        except httpx.TimeoutException:
            raise Timeout("batch results stream timed out") from None
        except httpx.TransportError as exc:
            raise ConnectionFailed(f"transport error: {type(exc).__name__}") from None

    async def _call(self, method: str, url: str, content: bytes | None = None) -> Any:
        try:
            response = await self._http.request(
                method, url, content=content, headers=self._headers, timeout=self.timeout
            )
        except httpx.TimeoutException:
            raise Timeout(f"no answer within {self.timeout:g}s") from None
        except httpx.TransportError as exc:
            raise ConnectionFailed(f"transport error: {type(exc).__name__}") from None
        if not response.is_success:
            raise error_from_response(response)
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise InvalidResponse("batch answer is not JSON", status=response.status_code) from None


def _info(body: Any) -> BatchInfo:
    try:
        counts = {str(k): int(v) for k, v in body["request_counts"].items()}
        created = body.get("created_at")
        when = datetime.fromisoformat(created.replace("Z", "+00:00")) if created else None
        return BatchInfo(str(body["id"]), str(body["processing_status"]), counts, when)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise InvalidResponse("answer is not a Message Batch object") from None


def parse_result(line: str) -> BatchResult:
    """One results line; a line that is not a result raises ``InvalidResponse``."""
    try:
        body = orjson.loads(line)
        custom_id, result = str(body["custom_id"]), body["result"]
        kind = str(result["type"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        raise InvalidResponse("results line is not a batch result") from None
    if kind == "succeeded":
        return BatchResult(custom_id, kind, message=result.get("message"))
    if kind == "errored":
        inner = (result.get("error") or {}).get("error") or {}
        return BatchResult(
            custom_id, kind, error_type=inner.get("type"), error_message=inner.get("message", "")
        )
    return BatchResult(custom_id, kind)
