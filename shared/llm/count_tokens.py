"""``POST /v1/messages/count_tokens`` (free, rate-limited apart from Messages) for estimates."""

from __future__ import annotations

from typing import Any, Final

import httpx
import orjson

from shared.logging import get_logger
from shared.settings import Settings

log = get_logger(__name__)
COUNT_TOKENS_PATH: Final = "/v1/messages/count_tokens"
_TIMEOUT_SECONDS: Final = 10.0


class CountTokensFailed(Exception):
    """The count could not be had (network, non-2xx, unexpected body)."""


async def count_tokens(
    http: httpx.AsyncClient, settings: Settings, *, system: str | None, user: str
) -> int:
    """Input tokens Claude would bill for this prompt (no cache, no output)."""
    assert settings.anthropic_api_key is not None
    body: dict[str, Any] = {
        "model": settings.llm_model,
        "messages": [{"role": "user", "content": user}],
    }
    if system:
        body["system"] = system
    headers = {
        "x-api-key": settings.anthropic_api_key.get_secret_value(),
        "anthropic-version": settings.anthropic_version,
        "content-type": "application/json",
    }
    url = settings.anthropic_base_url.rstrip("/") + COUNT_TOKENS_PATH
    try:
        response = await http.post(
            url, content=orjson.dumps(body), headers=headers, timeout=_TIMEOUT_SECONDS
        )
    except httpx.HTTPError as exc:
        raise CountTokensFailed(f"transport error: {type(exc).__name__}") from None
    if not response.is_success:
        raise CountTokensFailed(f"count_tokens answered {response.status_code}")
    try:
        return int(orjson.loads(response.content)["input_tokens"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        raise CountTokensFailed("count_tokens body has no input_tokens") from None


def can_count(settings: Settings) -> bool:
    """Counting needs Claude with a real key (never the offline provider)."""
    return not settings.offline_llm and settings.anthropic_api_key is not None
