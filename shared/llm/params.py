"""The body of one Messages request, built once for live calls, batch requests and token counts.

Prompt caching: the system prompt (the template's fixed instructions included) is everything
before the per-item part, so it is one text block carrying ``cache_control``; the API caches the
prefix up to that block when it is at least the model's minimum length, and says nothing when not.
"""

from __future__ import annotations

from typing import Any

from shared.llm.pricing import CacheTtl


def system_blocks(system: str, cache_ttl: CacheTtl | None) -> str | list[dict[str, Any]]:
    """The system prompt, as one cache-marked text block when caching is on."""
    if cache_ttl is None:
        return system
    control = {"type": "ephemeral", "ttl": cache_ttl.value}
    return [{"type": "text", "text": system, "cache_control": control}]


def message_params(
    *,
    model: str,
    system: str | None,
    messages: list[dict[str, Any]],
    max_tokens: int,
    temperature: float | None,
    cache_ttl: CacheTtl | None = None,
    tools: list[dict[str, Any]] | None = None,
    tool_choice: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A Messages body: model, max_tokens, messages, and system/temperature/tools when given.

    Tools come before the system prompt in the cached prefix, so a fixed tool list (the
    judge's `record_scores`) is cached together with the system block that carries the mark.
    """
    params: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "messages": messages}
    if tools:
        params["tools"] = tools
    if tool_choice is not None:
        params["tool_choice"] = tool_choice
    if system:
        params["system"] = system_blocks(system, cache_ttl)
    if temperature is not None:
        params["temperature"] = temperature
    return params
