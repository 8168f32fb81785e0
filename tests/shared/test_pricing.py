"""The per-model price table: shipped entries, prefix lookup, overrides, cache and batch costs."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from shared.llm.pricing import (
    LEGACY_ENTRY,
    CacheTtl,
    PricingError,
    Usage,
    build_table,
    cost_usd,
    list_cost_usd,
    parse_override,
    table_for,
)
from shared.settings import Settings

SEED = {"legacy_input_per_1k": Decimal("0.015"), "legacy_output_per_1k": Decimal("0.075")}


def test_seed_pair_gives_the_documented_cost_exactly() -> None:
    _, price = build_table(None, **SEED).price_for("some-model-nobody-knows")
    assert cost_usd(price, Usage(1500, 2000)) == Decimal("0.1725")
    assert str(cost_usd(price, Usage(1500, 2000))) == "0.172500"
    assert cost_usd(price, Usage(1, 0)) == Decimal("0.000015")
    with pytest.raises(ValueError, match="negative"):
        cost_usd(price, Usage(-1, 0))


def test_dated_snapshots_resolve_to_their_family_by_longest_prefix() -> None:
    table = build_table(None, **SEED)
    assert table.price_for("claude-sonnet-4-5-20250929")[0] == "claude-sonnet-4-5"
    assert table.price_for("claude-opus-4-1-20250805")[0] == "claude-opus-4-1"
    assert table.price_for("claude-opus-4-20250514")[0] == "claude-opus-4"
    assert table.price_for("gpt-4o")[0] == LEGACY_ENTRY


def test_cache_and_batch_costs_come_from_the_entry() -> None:
    _, sonnet = build_table(None, **SEED).price_for("claude-sonnet-4-5")
    usage = Usage(input_tokens=100, output_tokens=1000, cache_write_tokens=2000)
    # 100 x $3 + 1000 x $15 + 2000 x $3.75 (5m write), per million
    assert cost_usd(sonnet, usage) == Decimal("0.022800")
    assert cost_usd(sonnet, usage, cache_ttl=CacheTtl.ONE_HOUR) == Decimal("0.027300")
    read = Usage(input_tokens=100, output_tokens=1000, cache_read_tokens=2000)
    assert cost_usd(sonnet, read) == Decimal("0.015900")  # 2000 x $0.30
    assert cost_usd(sonnet, read, batch=True) == Decimal("0.007950")
    assert list_cost_usd(sonnet, read) == Decimal("0.021300")  # 2100 in at $3, no discount


def test_override_replaces_and_adds_entries() -> None:
    override = (
        '{"claude-sonnet-4-5": {"input": 2, "output": 10, "cache_write_5m": 2.5, '
        '"cache_write_1h": 4, "cache_read": 0.2, "batch_discount": 0.4}, '
        '"my-proxy-model": {"input": 1, "output": 1, "cache_write_5m": 1, "cache_write_1h": 1, '
        '"cache_read": 1, "min_cacheable_tokens": 0}}'
    )
    settings = Settings(llm_pricing=override)
    table = table_for(settings)
    assert table.price_for("claude-sonnet-4-5-20250929")[1].input == Decimal(2)
    assert table.price_for("my-proxy-model")[1].min_cacheable_tokens == 0
    assert table.price_for("claude-haiku-4-5")[1].input == Decimal(1)  # shipped entry kept


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "JSON object"),
        ('{"m": {"input": -1, "output": "x"}}', "m: input, output, cache_write_5m"),
        ('{"m": {"input": 1, "output": 1, "cache_write_5m": 1, "cache_write_1h": 1, '
         '"cache_read": 1, "surprise": 1}}', "m: surprise"),
    ],
)  # fmt: skip
def test_bad_override_names_every_problem(raw: str, message: str) -> None:
    with pytest.raises(PricingError, match=message):
        parse_override(raw)
    with pytest.raises(ValidationError, match="LLM_PRICING"):
        Settings(llm_pricing=raw)
