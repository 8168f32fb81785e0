"""Generator metrics (DESIGN.md §9): Claude calls, tokens, cost, limiter wait, conversations."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from shared.models.conversation import Tier

LLM_REQUESTS = Counter(
    "convoforge_llm_requests_total",
    "Claude Messages calls by model and outcome (success, rate_limited, overloaded, ...).",
    ["model", "outcome"],
)
LLM_TOKENS = Counter(
    "convoforge_llm_tokens_total",
    "Tokens billed by model and direction (input/output).",
    ["model", "direction"],
)
LLM_COST = Counter(
    "convoforge_llm_cost_usd_total",
    "Dollars spent on Claude calls, by model.",
    ["model"],
)
CACHE_TOKENS = Counter(
    "convoforge_llm_cache_tokens_total",
    "Prompt-cache tokens by model and kind (write: cache creation, read: cache hits).",
    ["model", "kind"],
)
LLM_LATENCY = Histogram(
    "convoforge_llm_request_duration_seconds",
    "Time from sending a Claude call to its answer (or failure), by model.",
    ["model"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 45, 60, 90, 120),
)
LIMITER_WAIT = Histogram(
    "convoforge_llm_limiter_wait_seconds",
    "Time a call waited for a permit from the fleet-wide rate limiter.",
    buckets=(0.001, 0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300),
)
FLEET_PAUSES = Counter(
    "convoforge_llm_fleet_pauses_total",
    "Times this replica paused the whole fleet, by reason (429, headers nearly exhausted).",
    ["reason"],
)
CONVERSATIONS = Counter(
    "convoforge_generation_conversations_total",
    "Generation items finished, by tier and outcome "
    "(pending_review, needs_revision, failed, skipped, cancelled).",
    ["tier", "outcome"],
)
QUALITY = Histogram(
    "convoforge_generation_quality_score",
    "Quality score (0-10) of generated conversations.",
    buckets=(1, 2, 3, 4, 5, 6, 7, 8, 9, 10),
)
DEFERRALS = Counter(
    "convoforge_generation_deferrals_total",
    "Item jobs put back on the queue, by reason (limiter, backoff, parked, busy, error).",
    ["reason"],
)


def initialise(model: str) -> None:
    """Create every known label set at 0, so rates and alerts work from the first scrape."""
    LLM_REQUESTS.labels(model, "success")
    for direction in ("input", "output"):
        LLM_TOKENS.labels(model, direction)
    LLM_COST.labels(model)
    LLM_LATENCY.labels(model)
    for tier in Tier:
        for outcome in ("pending_review", "needs_revision", "failed", "skipped", "cancelled"):
            CONVERSATIONS.labels(tier.value, outcome)
