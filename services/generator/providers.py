"""What a generator process talks to: the Claude client (or the offline one) and the limiter."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from redis.asyncio import Redis

from services.generator.judging.offline import OfflineJudge
from services.generator.llm.batches import BatchClient
from services.generator.llm.client import AuthFailed, ClaudeClient, LLMResponse
from services.generator.llm.offline import OfflineProvider
from shared.llm.limiter import FleetLimiter, build_limiter
from shared.llm.pricing import CacheTtl
from shared.logging import get_logger
from shared.settings import Settings

log = get_logger(__name__)


class Provider(Protocol):
    """Anything that answers a Messages call."""

    @property
    def model(self) -> str:
        """The model name recorded with every attempt."""
        ...

    async def create_message(
        self,
        *,
        system: str | None,
        messages: list[dict[str, Any]],
        max_tokens: int,
        temperature: float | None,
        cache_ttl: CacheTtl | None = None,
    ) -> LLMResponse:
        """One call; raises an LLMError subclass on failure."""
        ...


class MissingKeyProvider:
    """`LLM_PROVIDER=anthropic` without a key: every call fails as an auth error (batch stops)."""

    def __init__(self, model: str) -> None:
        self.model = model

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
        """Refuse: there is no key to call Claude with."""
        raise AuthFailed("LLM_PROVIDER is anthropic but ANTHROPIC_API_KEY is not set")


@dataclass(frozen=True)
class Fleet:
    """Per-process generation services: the provider, for Claude the shared limiter, and the
    Redis client (limiter, near-duplicate index)."""

    settings: Settings
    provider: Provider
    limiter: FleetLimiter | None
    redis: Redis

    @property
    def offline(self) -> bool:
        """Whether answers come from a labelled offline provider (sample writer or judge)."""
        return bool(getattr(self.provider, "offline", False))


def build_provider(http: httpx.AsyncClient, settings: Settings) -> Provider:
    """Claude when the provider is anthropic, else the offline sample provider."""
    if settings.offline_llm:
        return OfflineProvider()
    if settings.anthropic_api_key is None:
        return MissingKeyProvider(settings.llm_model)
    return ClaudeClient(
        http,
        api_key=settings.anthropic_api_key.get_secret_value(),
        base_url=settings.anthropic_base_url,
        model=settings.llm_model,
        anthropic_version=settings.anthropic_version,
        timeout=settings.llm_timeout_seconds,
    )


def build_batch_client(http: httpx.AsyncClient, settings: Settings) -> BatchClient | None:
    """The Message Batches client, when Claude is the provider and a key is set."""
    if settings.offline_llm or settings.anthropic_api_key is None:
        return None
    return BatchClient(
        http,
        api_key=settings.anthropic_api_key.get_secret_value(),
        base_url=settings.anthropic_base_url,
        anthropic_version=settings.anthropic_version,
        timeout=settings.llm_timeout_seconds,
    )


def build_fleet(http: httpx.AsyncClient, redis: Redis, settings: Settings) -> Fleet:
    """Provider plus limiter (the offline provider protects no API, so it skips the limiter)."""
    provider = build_provider(http, settings)
    limiter = None if isinstance(provider, OfflineProvider) else build_limiter(redis, settings)
    return Fleet(settings=settings, provider=provider, limiter=limiter, redis=redis)


def build_judge_fleet(http: httpx.AsyncClient, redis: Redis, settings: Settings) -> Fleet:
    """The judge's provider (JUDGE_MODEL, or the offline judge) behind the same fleet limiter."""
    if settings.offline_llm:
        return Fleet(settings=settings, provider=OfflineJudge(), limiter=None, redis=redis)
    provider: Provider = MissingKeyProvider(settings.judge_model)
    if settings.anthropic_api_key is not None:
        provider = ClaudeClient(
            http, api_key=settings.anthropic_api_key.get_secret_value(),
            base_url=settings.anthropic_base_url, model=settings.judge_model,
            anthropic_version=settings.anthropic_version, timeout=settings.llm_timeout_seconds,
        )  # fmt: skip
    return Fleet(
        settings=settings, provider=provider, limiter=build_limiter(redis, settings), redis=redis
    )


def announce(settings: Settings) -> None:
    """Say loudly which provider this process uses (DESIGN §5: never silently offline)."""
    if settings.offline_llm:
        log.warning(
            "generator.llm.offline_provider",
            message="OFFLINE PROVIDER: conversations are canned samples (model=offline-sample), "
            "not Claude output; set ANTHROPIC_API_KEY to generate for real",
            api_key_set=settings.anthropic_api_key is not None,
        )
    elif settings.anthropic_api_key is None:
        log.error("generator.llm.missing_key", message="LLM_PROVIDER=anthropic but no API key")
    else:
        log.info(
            "generator.llm.provider",
            provider="anthropic",
            model=settings.llm_model,
            requests_per_minute=settings.llm_requests_per_minute,
        )
