"""The offline provider: sample conversations without an API key, clearly labelled as such.

Used only when `LLM_PROVIDER` resolves to `offline` (no `ANTHROPIC_API_KEY`); it answers like the
Messages API (a JSON conversation in a code fence) so the whole pipeline can be tried, with
`model = "offline-sample"`, zero cost, and every conversation flagged in its metadata.
"""

from __future__ import annotations

import hashlib
import random
import time
from typing import Any, Final

import orjson

from services.generator.llm.client import LLMResponse, RateLimitHeaders
from shared.conversations.continuation import requested_first_role, requested_instructions
from shared.llm.pricing import CacheTtl, estimate_tokens

OFFLINE_MODEL: Final = "offline-sample"
_OPENERS: Final = (
    "I have been going back and forth about this for weeks and I honestly do not know "
    "where to start. Could you help me think it through step by step?",
    "Something happened today that left me unsettled, and I would like to talk about what "
    "my options are before I decide anything important.",
)
_USER: Final = (
    "That makes sense, but I keep worrying that I am missing something obvious. What "
    "would you look at first if you were in my position right now?",
    "Okay, I can see that. The part I struggle with is staying calm when things change "
    "quickly. How do people usually handle that without overreacting?",
    "I appreciate that. If I try what you suggest, how will I know whether it is working "
    "or whether I should change course after a few weeks?",
    "Thank you, this already feels more manageable. Could you summarise the next steps so "
    "I can write them down and come back to them later?",
)
_ASSISTANT: Final = (
    "That is a very understandable place to be, and it is good that you are pausing to "
    "think before acting. Let us start with what matters most to you and work outward.",
    "A useful first step is to separate what you can control from what you cannot. Write "
    "both lists down; it usually takes the edge off the worry straight away.",
    "Most people find that a simple routine helps: decide in advance how you will respond, "
    "then give yourself a short pause before acting on any strong feeling.",
    "You will notice it working when decisions feel less rushed. Check in with yourself "
    "every couple of weeks and adjust one thing at a time, not everything at once.",
    "Of course. First, list your priorities. Second, set one small action for this week. "
    "Third, schedule a check-in. You are already doing the hardest part: asking.",
)


class OfflineProvider:
    """Answers every call locally with a deterministic sample conversation (no network)."""

    model = OFFLINE_MODEL
    offline = True

    def __repr__(self) -> str:
        return "OfflineProvider(model='offline-sample')"

    async def create_message(
        self,
        *,
        system: str | None,
        messages: list[dict[str, Any]],
        max_tokens: int,
        temperature: float | None,
        cache_ttl: CacheTtl | None = None,
    ) -> LLMResponse:
        """A Messages-shaped answer built from the prompt's hash (nothing is cached)."""
        started = time.perf_counter()
        prompt = (system or "") + "".join(str(m.get("content", "")) for m in messages)
        text = sample_text(prompt)
        return LLMResponse(
            text=text,
            stop_reason="end_turn",
            input_tokens=estimate_tokens(prompt),
            output_tokens=min(max_tokens, estimate_tokens(text)),
            model=OFFLINE_MODEL,
            request_id=None,
            message_id=None,
            rate_limits=RateLimitHeaders(),
            duration_s=time.perf_counter() - started,
        )


def sample_text(prompt: str) -> str:
    """A fenced JSON conversation (10 turns) chosen by the prompt's hash.

    A regenerate's continuation prompt gets only the turns after the kept ones (starting with
    the role it asks for, 4 of them), and reviewer instructions are echoed in the title, so a
    revision through the offline provider shows what it was asked for.
    """
    seed = int.from_bytes(hashlib.sha256(prompt.encode()).digest()[:8], "big")
    rng = random.Random(seed)
    first = requested_first_role(prompt)
    turns: list[dict[str, str]] = []
    if first is None:
        turns.append({"role": "user", "content": rng.choice(_OPENERS)})
    offset = 1 if first == "assistant" else 0
    for index in range(len(turns), 4 if first else 10):
        speaker = (index + offset) % 2
        pool = _ASSISTANT if speaker else _USER
        turns.append({"role": "assistant" if speaker else "user", "content": rng.choice(pool)})
    title = "[offline sample] Talking it through"
    instructions = requested_instructions(prompt)
    if instructions:
        title += f" (revised: {' '.join(instructions.split())[:80]})"
    document = {"title": title, "turns": turns}
    body = orjson.dumps(document, option=orjson.OPT_INDENT_2).decode()
    return f"(offline sample — not written by Claude)\n```json\n{body}\n```\n"
