"""Per-model Claude prices (dollars per million tokens) and every cost computed from them.

One table, shipped with list prices and overridable with ``LLM_PRICING`` (JSON of the same shape),
feeds the estimate, the cost-cap reservation, each log row and the summaries. A model the table
does not know is priced with the seeds' legacy pair (``LLM_INPUT/OUTPUT_PRICE_PER_1K``), the
dearest entry, so a cost cap errs on the safe side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from functools import lru_cache
from typing import TYPE_CHECKING, Annotated, Final

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

if TYPE_CHECKING:
    from shared.settings import Settings

COST_QUANTUM: Final = Decimal("0.000001")
CHARS_PER_TOKEN: Final = 4
MILLION: Final = Decimal(1_000_000)
LEGACY_ENTRY: Final = "seed-legacy"
Price = Annotated[Decimal, Field(ge=0, le=10_000)]


class CacheTtl(StrEnum):
    """Prompt-cache lifetimes the API offers: 5 minutes (live calls) and 1 hour (batches)."""

    FIVE_MINUTES = "5m"
    ONE_HOUR = "1h"


class ModelPrice(BaseModel):
    """List prices of one model in dollars per million tokens, and its cache facts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: Price
    output: Price
    cache_write_5m: Price
    cache_write_1h: Price
    cache_read: Price
    batch_discount: Annotated[Decimal, Field(ge=0, le=1)] = Decimal("0.5")
    min_cacheable_tokens: Annotated[int, Field(ge=0, le=1_000_000)] = 1024

    def cache_write(self, ttl: CacheTtl) -> Decimal:
        """The write price for a cache lifetime."""
        return self.cache_write_5m if ttl == CacheTtl.FIVE_MINUTES else self.cache_write_1h


def _entry(inp: str, out: str, w5: str, w1h: str, read: str, minimum: int) -> ModelPrice:
    return ModelPrice(
        input=Decimal(inp), output=Decimal(out), cache_write_5m=Decimal(w5),
        cache_write_1h=Decimal(w1h), cache_read=Decimal(read), min_cacheable_tokens=minimum,
    )  # fmt: skip


# Anthropic list prices; keys match a model name exactly or as its prefix (dated snapshots).
SHIPPED: Final[dict[str, ModelPrice]] = {
    "claude-opus-4-6": _entry("5", "25", "6.25", "10", "0.50", 4096),
    "claude-opus-4-5": _entry("5", "25", "6.25", "10", "0.50", 4096),
    "claude-opus-4-1": _entry("15", "75", "18.75", "30", "1.50", 1024),
    "claude-opus-4": _entry("15", "75", "18.75", "30", "1.50", 1024),
    "claude-sonnet-4-5": _entry("3", "15", "3.75", "6", "0.30", 1024),
    "claude-sonnet-4": _entry("3", "15", "3.75", "6", "0.30", 1024),
    "claude-3-7-sonnet": _entry("3", "15", "3.75", "6", "0.30", 1024),
    "claude-haiku-4-5": _entry("1", "5", "1.25", "2", "0.10", 4096),
    "claude-3-5-haiku": _entry("0.80", "4", "1", "1.6", "0.08", 2048),
    "claude-3-haiku": _entry("0.25", "1.25", "0.30", "0.50", "0.03", 2048),
}


class PricingError(ValueError):
    """``LLM_PRICING`` is not a JSON object of valid price entries."""


@dataclass(frozen=True)
class PriceTable:
    """Model name (or prefix) to prices; ``price_for`` resolves a model to its entry."""

    entries: dict[str, ModelPrice]

    def price_for(self, model: str) -> tuple[str, ModelPrice]:
        """The entry name and prices for `model`: exact, longest prefix, else the legacy pair."""
        if model in self.entries:
            return model, self.entries[model]
        matches = [name for name in self.entries if model.startswith(name)]
        name = max(matches, key=len) if matches else LEGACY_ENTRY
        return name, self.entries[name]


def legacy_entry(input_per_1k: Decimal, output_per_1k: Decimal) -> ModelPrice:
    """The seeds' price pair (per 1K tokens) as an entry; cache prices use the API's ratios."""
    per_m_in, per_m_out = input_per_1k * 1000, output_per_1k * 1000
    return ModelPrice(
        input=per_m_in, output=per_m_out, cache_write_5m=per_m_in * Decimal("1.25"),
        cache_write_1h=per_m_in * 2, cache_read=per_m_in * Decimal("0.1"),
    )  # fmt: skip


def build_table(
    override_json: str | None, *, legacy_input_per_1k: Decimal, legacy_output_per_1k: Decimal
) -> PriceTable:
    """Shipped prices, the legacy pair, then the ``LLM_PRICING`` entries on top."""
    entries = dict(SHIPPED)
    entries[LEGACY_ENTRY] = legacy_entry(legacy_input_per_1k, legacy_output_per_1k)
    entries |= parse_override(override_json)
    return PriceTable(entries)


def table_for(settings: Settings) -> PriceTable:
    """The price table the settings describe (built once per distinct setting values)."""
    return _cached_table(
        settings.llm_pricing, settings.llm_input_price_per_1k, settings.llm_output_price_per_1k
    )


@lru_cache(maxsize=16)
def _cached_table(override: str | None, legacy_in: Decimal, legacy_out: Decimal) -> PriceTable:
    return build_table(override, legacy_input_per_1k=legacy_in, legacy_output_per_1k=legacy_out)


def parse_override(override_json: str | None) -> dict[str, ModelPrice]:
    """Parse ``{"<model>": {"input": .., "output": .., ...}}``; every problem in one error."""
    if not override_json or not override_json.strip():
        return {}
    try:
        raw = orjson.loads(override_json)
    except orjson.JSONDecodeError as exc:
        raise PricingError(f"LLM_PRICING is not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise PricingError("LLM_PRICING must be a JSON object keyed by model name")
    parsed, problems = {}, []
    for name, value in raw.items():
        try:
            parsed[name] = ModelPrice.model_validate(value)
        except ValidationError as exc:
            fields = ", ".join(".".join(map(str, e["loc"])) or "$" for e in exc.errors())
            problems.append(f"{name}: {fields}")
    if problems:
        raise PricingError("LLM_PRICING has invalid entries: " + "; ".join(problems))
    return parsed


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens of one call by kind (input excludes cached tokens, as the API reports it)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0


def cost_usd(
    price: ModelPrice,
    usage: Usage,
    *,
    batch: bool = False,
    cache_ttl: CacheTtl = CacheTtl.FIVE_MINUTES,
) -> Decimal:
    """Dollars for one call, batch discount applied, rounded half-up to six decimal places."""
    counts = (usage.input_tokens, usage.output_tokens, usage.cache_write_tokens)
    if min(*counts, usage.cache_read_tokens) < 0:
        raise ValueError("token counts must not be negative")
    raw = (
        usage.input_tokens * price.input
        + usage.output_tokens * price.output
        + usage.cache_write_tokens * price.cache_write(cache_ttl)
        + usage.cache_read_tokens * price.cache_read
    ) / MILLION
    if batch:
        raw *= price.batch_discount
    return raw.quantize(COST_QUANTUM, rounding=ROUND_HALF_UP)


def list_cost_usd(price: ModelPrice, usage: Usage) -> Decimal:
    """What the same tokens cost at list price: no cache, no batch discount (for `saved_usd`)."""
    every_input = usage.input_tokens + usage.cache_write_tokens + usage.cache_read_tokens
    return cost_usd(price, Usage(input_tokens=every_input, output_tokens=usage.output_tokens))


def estimate_tokens(text: str) -> int:
    """Estimate tokens as one per four characters, rounded up (0 for empty text)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)
