"""Token cost arithmetic in Decimal dollars, and a rough token estimate for planning."""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal
from typing import Final

DEFAULT_INPUT_PER_1K: Final = Decimal("0.015")
DEFAULT_OUTPUT_PER_1K: Final = Decimal("0.075")
COST_QUANTUM: Final = Decimal("0.000001")
CHARS_PER_TOKEN: Final = 4
_THOUSAND: Final = Decimal(1000)


def cost_usd(
    input_tokens: int,
    output_tokens: int,
    *,
    input_per_1k: Decimal = DEFAULT_INPUT_PER_1K,
    output_per_1k: Decimal = DEFAULT_OUTPUT_PER_1K,
) -> Decimal:
    """Return the dollar cost of one call, rounded half-up to six decimal places."""
    if input_tokens < 0 or output_tokens < 0:
        raise ValueError("token counts must not be negative")
    raw = (input_tokens * input_per_1k + output_tokens * output_per_1k) / _THOUSAND
    return raw.quantize(COST_QUANTUM, rounding=ROUND_HALF_UP)


def estimate_tokens(text: str) -> int:
    """Estimate tokens as one per four characters, rounded up (0 for empty text)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)
