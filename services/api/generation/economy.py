"""What a job costs run live or in Message Batches, with prompt caching, from the price table.

Caching in the estimate: items that share a system prompt (the cached prefix) of at least the
model's minimum length pay one cache write for the first item and cache reads for the rest; a
shorter prefix is not cached at all (the API ignores the marker), which `cache_warning` says.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Final

import httpx

from services.api.generation.schemas import (
    CostDay,
    CostSummary,
    ModeEstimate,
    PriceOut,
    PricingOut,
)
from shared.llm.count_tokens import CountTokensFailed, can_count, count_tokens
from shared.llm.pricing import (
    CacheTtl,
    ModelPrice,
    Usage,
    cost_usd,
    estimate_tokens,
    list_cost_usd,
    table_for,
)
from shared.logging import get_logger
from shared.models.generation import CostRow, ItemRequest, JobMode
from shared.settings import Settings

log = get_logger(__name__)
# Message Batches answer within 24 h, most within the hour: the estimate plans for the hour.
BATCH_TYPICAL_SECONDS: Final = 3600.0
BATCH_WINDOW: Final = timedelta(hours=24)


@dataclass(frozen=True)
class TokenScale:
    """How to turn the 4-characters heuristic into counted tokens (1.0 = heuristic)."""

    method: str = "heuristic"
    prompt: float = 1.0
    prefix: float = 1.0


@dataclass(frozen=True)
class Planned:
    """One request's expected tokens: the cacheable prefix and the rest of the input."""

    prefix_key: str
    prefix_tokens: int
    input_tokens: int
    output_tokens: int


def pricing(settings: Settings) -> PricingOut:
    """The whole price table and the entry the configured model resolves to."""
    table = table_for(settings)
    entry, _ = table.price_for(settings.llm_model)
    models = {
        name: PriceOut.model_validate(price.model_dump(mode="json"))
        for name, price in sorted(table.entries.items())
    }
    return PricingOut(
        model=settings.llm_model, model_entry=entry, unit="USD per million tokens", models=models
    )


def choose_mode(
    mode: JobMode, requests: int, deadline: datetime | None, settings: Settings
) -> JobMode:
    """`auto`: batch when the job has at least LLM_BATCH_AUTO_MIN_ITEMS and no deadline < 24 h."""
    if mode != JobMode.AUTO:
        return mode
    if requests < settings.llm_batch_auto_min_items:
        return JobMode.LIVE
    if deadline is not None and deadline - datetime.now(UTC) < BATCH_WINDOW:
        return JobMode.LIVE
    return JobMode.BATCH


async def measure(
    http: httpx.AsyncClient, settings: Settings, requests: Sequence[ItemRequest]
) -> TokenScale:
    """Count a sample of the prompts with count_tokens; the heuristic when that is not possible."""
    sample = _sample(requests, settings.llm_count_tokens_sample)
    if not sample or not can_count(settings):
        return TokenScale()
    counted = heuristic = prefix_counted = prefix_heuristic = 0
    try:
        for request in sample:
            counted += await count_tokens(
                http, settings, system=request.prefix, user=request.user_prompt
            )
            heuristic += request.estimated_input_tokens
            if request.prefix:
                prefix_counted += await count_tokens(
                    http, settings, system=None, user=request.prefix
                )
                prefix_heuristic += estimate_tokens(request.prefix)
    except CountTokensFailed as exc:
        log.warning("api.generation.count_tokens_failed", error=str(exc))
        return TokenScale()
    return TokenScale(
        method="count_tokens",
        prompt=counted / heuristic if heuristic else 1.0,
        prefix=prefix_counted / prefix_heuristic if prefix_heuristic else 1.0,
    )


def _sample(requests: Sequence[ItemRequest], size: int) -> list[ItemRequest]:
    if size <= 0:
        return []
    distinct: dict[tuple[str, str], ItemRequest] = {}
    for request in requests:
        distinct.setdefault((request.prefix, request.user_prompt), request)
    chosen = list(distinct.values())
    if len(chosen) <= size:
        return chosen
    step = len(chosen) / size
    return [chosen[int(i * step)] for i in range(size)]


def plan(requests: Sequence[ItemRequest], scale: TokenScale) -> list[Planned]:
    """Expected tokens per request, scaled by what count_tokens found."""
    planned = []
    for request in requests:
        total = round(request.estimated_input_tokens * scale.prompt)
        prefix = min(total, round(estimate_tokens(request.prefix) * scale.prefix))
        key = hashlib.sha256(request.prefix.encode()).hexdigest()
        planned.append(Planned(key, prefix, total, request.estimated_output_tokens))
    return planned


def by_mode(
    planned: Sequence[Planned], price: ModelPrice, settings: Settings
) -> dict[str, ModeEstimate]:
    """The job's cost run live (5-minute cache) and as Message Batches (1-hour cache)."""
    live_seconds = (
        len(planned) * settings.llm_rate_window_seconds / settings.llm_requests_per_minute
    )
    return {
        JobMode.LIVE.value: _mode(planned, price, settings, batch=False, seconds=live_seconds),
        JobMode.BATCH.value: _mode(
            planned, price, settings, batch=True, seconds=BATCH_TYPICAL_SECONDS
        ),
    }


def _mode(
    planned: Sequence[Planned],
    price: ModelPrice,
    settings: Settings,
    *,
    batch: bool,
    seconds: float,
) -> ModeEstimate:
    ttl = CacheTtl.ONE_HOUR if batch else CacheTtl.FIVE_MINUTES
    seen: set[str] = set()
    cost = listed = Decimal(0)
    totals = [0, 0, 0, 0]
    for item in planned:
        usage = _usage(item, price, settings, seen)
        cost += cost_usd(price, usage, batch=batch, cache_ttl=ttl)
        listed += list_cost_usd(price, usage)
        for i, n in enumerate(
            (usage.input_tokens, usage.cache_write_tokens, usage.cache_read_tokens,
             usage.output_tokens)
        ):  # fmt: skip
            totals[i] += n
    return ModeEstimate(
        requests=len(planned), input_tokens=totals[0], cache_write_tokens=totals[1],
        cache_read_tokens=totals[2], output_tokens=totals[3], cost_usd=float(cost),
        list_cost_usd=float(listed), estimated_duration_seconds=round(seconds, 1),
    )  # fmt: skip


def _usage(item: Planned, price: ModelPrice, settings: Settings, seen: set[str]) -> Usage:
    cacheable = settings.llm_prompt_caching and item.prefix_tokens >= price.min_cacheable_tokens
    if not cacheable:
        return Usage(input_tokens=item.input_tokens, output_tokens=item.output_tokens)
    rest = item.input_tokens - item.prefix_tokens
    first = item.prefix_key not in seen
    seen.add(item.prefix_key)
    return Usage(
        input_tokens=rest,
        output_tokens=item.output_tokens,
        cache_write_tokens=item.prefix_tokens if first else 0,
        cache_read_tokens=0 if first else item.prefix_tokens,
    )


def cache_warning(planned: Sequence[Planned], price: ModelPrice, settings: Settings) -> str | None:
    """Say so when the shared prefix is too short to cache (the API would cache nothing)."""
    if not settings.llm_prompt_caching or not planned:
        return None
    short = [p for p in planned if p.prefix_tokens < price.min_cacheable_tokens]
    if not short:
        return None
    longest = max(p.prefix_tokens for p in short)
    return (
        f"{len(short)} of {len(planned)} request(s) have a shared prefix (system prompt and "
        f"fixed instructions) of at most {longest} tokens, below {settings.llm_model}'s minimum "
        f"of {price.min_cacheable_tokens} cacheable tokens: they are not cached"
    )


def cost_summary(rows: Sequence[CostRow]) -> CostSummary:
    """Totals of the per-day rows, what caching and batches saved, and the cache hit rate."""
    days = [
        CostDay(
            **row.model_dump(exclude={"cost_usd", "list_cost_usd"}),
            cost_usd=float(row.cost_usd), list_cost_usd=float(row.list_cost_usd),
        )
        for row in rows
    ]  # fmt: skip
    cost = sum((row.cost_usd for row in rows), Decimal(0))
    listed = sum((row.list_cost_usd for row in rows), Decimal(0))
    fresh, written, read = (
        sum(getattr(row, name) for row in rows)
        for name in ("input_tokens", "cache_write_tokens", "cache_read_tokens")
    )
    every_input = fresh + written + read
    return CostSummary(
        days=days, requests=sum(row.requests for row in rows), input_tokens=fresh,
        output_tokens=sum(row.output_tokens for row in rows), cache_write_tokens=written,
        cache_read_tokens=read, cost_usd=float(cost), list_cost_usd=float(listed),
        saved_usd=float(max(Decimal(0), listed - cost)),
        cache_hit_rate=round(read / every_input, 4) if every_input else None,
    )  # fmt: skip
