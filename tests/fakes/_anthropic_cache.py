"""Prompt-cache accounting of the fake Claude API, as the real one reports it in ``usage``.

The prefix is every system and message block up to the last one carrying ``cache_control``. At or
above the model's minimum length it is written on first use (``cache_creation_input_tokens``) and
read while its TTL lasts (``cache_read_input_tokens``, each read renewing the TTL); shorter, the
marker is ignored silently. ``input_tokens`` counts only what was neither written nor read.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}
# Minimum cacheable prompt length by model family (longest prefix wins), as documented.
MIN_TOKENS = {
    "claude-opus-4-6": 4096, "claude-opus-4-5": 4096, "claude-haiku-4-5": 4096,
    "claude-3-5-haiku": 2048, "claude-3-haiku": 2048, "claude-sonnet-4-6": 2048,
}  # fmt: skip
DEFAULT_MIN_TOKENS = 1024


def tokens(text: str) -> int:
    """Characters / 4, rounded up: the fake's one tokenizer."""
    return math.ceil(len(text) / 4)


def min_tokens(model: str) -> int:
    """The model's minimum cacheable length."""
    matches = [name for name in MIN_TOKENS if model.startswith(name)]
    return MIN_TOKENS[max(matches, key=len)] if matches else DEFAULT_MIN_TOKENS


@dataclass(frozen=True)
class CacheUsage:
    """How one request's prompt tokens split between fresh, written and read."""

    input_tokens: int
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0


def _blocks(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Tools, system, then message content as text blocks, in prompt order."""
    tools = body.get("tools")
    out: list[Mapping[str, Any]] = [{"text": orjson.dumps(tools).decode()}] if tools else []
    for part in [body.get("system") or "", *(m.get("content", "") for m in body["messages"])]:
        if isinstance(part, str):
            out.append({"text": part})
        elif isinstance(part, list):
            out.extend(block for block in part if isinstance(block, dict))
    return out


class PromptCache:
    """Prefix hash -> expiry; thread-safe (the server thread writes, tests read)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: dict[str, float] = {}
        self.min_tokens_override: int | None = None

    def reset(self) -> None:
        """Forget every cached prefix."""
        with self.lock:
            self.entries.clear()

    def account(self, body: Mapping[str, Any], total: int) -> CacheUsage:
        """Split the request's `total` prompt tokens as the API would, updating the cache."""
        blocks = _blocks(body)
        marked = [i for i, b in enumerate(blocks) if isinstance(b.get("cache_control"), dict)]
        if not marked:
            return CacheUsage(total)
        last = marked[-1]
        prefix_text = "\x00".join(str(b.get("text", "")) for b in blocks[: last + 1])
        prefix = sum(tokens(str(b.get("text", ""))) for b in blocks[: last + 1])
        floor = self.min_tokens_override
        if prefix < (min_tokens(str(body["model"])) if floor is None else floor):
            return CacheUsage(total)
        ttl = TTL_SECONDS.get(str(blocks[last]["cache_control"].get("ttl", "5m")), 300.0)
        key = hashlib.sha256(f"{body['model']}\x00{prefix_text}".encode()).hexdigest()
        moment = time.monotonic()
        with self.lock:
            hit = self.entries.get(key, 0.0) > moment
            self.entries[key] = moment + ttl
        rest = max(0, total - prefix)
        if hit:
            return CacheUsage(rest, cache_read_input_tokens=prefix)
        return CacheUsage(rest, cache_creation_input_tokens=prefix)
