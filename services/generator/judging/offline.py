"""The offline judge: deterministic, clearly labelled placeholder scores without an API key.

Used when the offline provider is (`make run` without ANTHROPIC_API_KEY). It answers the judge's
call with a `record_scores` tool input computed from the conversation's text (turn count,
average length, alternation, and a hash of the text), so the same conversation always gets the
same scores; every rationale says they are not a Claude judgement. Cost is zero.
"""

from __future__ import annotations

import hashlib
import re
import time
from typing import Any, Final

from services.generator.llm.client import LLMResponse, RateLimitHeaders
from shared.llm.pricing import CacheTtl, estimate_tokens
from shared.quality.enqueue import OFFLINE_JUDGE_MODEL
from shared.quality.rubric import CRITERIA, SCALES

LABEL: Final = "offline judge: deterministic placeholder computed from the text, not Claude"
_TURN: Final = re.compile(r"^\[(\d+)\] (user|assistant|system): ?(.*)$", re.MULTILINE)


class OfflineJudge:
    """Answers the judge's call locally (no network, no cost)."""

    model = OFFLINE_JUDGE_MODEL
    offline = True

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
        """A Messages-shaped answer whose tool input is `offline_scores` of the transcript."""
        started = time.perf_counter()
        text = "".join(str(m.get("content", "")) for m in messages)
        scores = offline_scores(text)
        return LLMResponse(
            text="", stop_reason="tool_use", input_tokens=estimate_tokens((system or "") + text),
            output_tokens=60, model=OFFLINE_JUDGE_MODEL, request_id=None, message_id=None,
            rate_limits=RateLimitHeaders(), duration_s=time.perf_counter() - started,
            tool_inputs={"record_scores": scores},
        )  # fmt: skip


def offline_scores(transcript: str) -> dict[str, Any]:
    """Scores derived from the transcript: the same text always scores the same."""
    turns = [(int(n), role, content) for n, role, content in _TURN.findall(transcript)]
    dialogue = [t for t in turns if t[1] != "system"]
    count = len(dialogue)
    average = sum(len(t[2]) for t in dialogue) / count if count else 0.0
    alternates = all(t[1] == ("user", "assistant")[i % 2] for i, t in enumerate(dialogue))
    digest = hashlib.sha256(transcript.encode()).digest()
    base = {
        "coherence": 0.9 if alternates else 0.4,
        "relevance": 0.5 + 0.4 * min(1.0, average / 200),
        "completeness": min(1.0, count / 10),
    }
    shortest = min(dialogue, key=lambda t: len(t[2]))[0] if dialogue else None
    answer: dict[str, Any] = {}
    for index, name in enumerate(CRITERIA):
        jitter = (digest[index] / 255 - 0.5) * 0.1  # ±0.05, from the text
        unit = min(1.0, max(0.0, base.get(name, 0.6 + 0.1 * min(1.0, average / 200)) + jitter))
        score = round(unit, 2) if SCALES[name] == "0-1" else round(1 + 4 * unit, 1)
        answer[name] = {
            "score": score,
            "rationale": LABEL,
            "weakest_turns": [shortest] if shortest is not None else [],
        }
    return answer
