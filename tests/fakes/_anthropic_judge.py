"""The fake Claude as the judge: it answers a request offering `record_scores` with a tool call.

Scores come from the conversation text so a test can compute what to expect: every 0–1
criterion is 0.8 and every 1–5 one 4.2 unless markers in the text say otherwise —
`[judge all=0.2]` sets every criterion (1–5 ones become 1 + 4·x), `[judge coherence=0.1]` one
criterion (a 1–5 one takes the value as given, e.g. `[judge empathy=2.5]`). Turns containing
`[weak]` are named as the weakest. Script steps: `malformed` answers with an unusable tool input,
`truncated`/`max_tokens` with no tool call (cut off), `ok` with scores; errors as for any call.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

import orjson

JUDGE_TOOL: Final = "record_scores"
UNIT: Final = ("coherence", "relevance", "completeness")
FIVE: Final = ("empathy", "clarity", "appropriateness", "brand_voice")
DEFAULT_UNIT: Final = 0.8
_MARK: Final = re.compile(r"\[judge (\w+)=(-?[0-9.]+)\]")
_TURN: Final = re.compile(r"^\[(\d+)\] \w+: (.*)$", re.MULTILINE)


def is_judge_call(body: Mapping[str, Any]) -> bool:
    """Whether the request offers the judge's tool."""
    tools = body.get("tools")
    return isinstance(tools, list) and any(
        isinstance(tool, dict) and tool.get("name") == JUDGE_TOOL for tool in tools
    )


def _text(body: Mapping[str, Any]) -> str:
    parts = []
    for message in body["messages"]:
        content = message.get("content", "")
        if isinstance(content, list):
            content = "".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
        parts.append(str(content))
    return "\n".join(parts)


def expected_scores(text: str) -> dict[str, float]:
    """The scores the fake gives a conversation containing `text` (for tests to compare)."""
    unit = dict.fromkeys(UNIT, DEFAULT_UNIT)
    five = dict.fromkeys(FIVE, round(1 + 4 * DEFAULT_UNIT, 1))
    for name, raw in _MARK.findall(text):
        value = float(raw)
        if name == "all":
            unit = dict.fromkeys(UNIT, value)
            five = dict.fromkeys(FIVE, round(1 + 4 * value, 1))
        elif name in unit:
            unit[name] = value
        elif name in five:
            five[name] = value
    return unit | five


def judge_input(text: str) -> dict[str, Any]:
    """The record_scores input for a conversation."""
    weakest = [int(n) for n, content in _TURN.findall(text) if "[weak]" in content]
    return {
        name: {
            "score": score,
            "rationale": f"fake judge: {name} scored {score} from the markers in the text",
            "weakest_turns": weakest,
        }
        for name, score in expected_scores(text).items()
    }


def judge_content(kind: str, body: Mapping[str, Any], seq: int) -> tuple[list[Any], str]:
    """Content blocks and stop reason of the judge's answer for a script step."""
    if kind in ("truncated", "max_tokens"):
        return [{"type": "text", "text": "Scoring the conversation: coherence is"}], "max_tokens"
    tool_input: Any = judge_input(_text(body))
    if kind == "malformed":
        tool_input = {"coherence": {"score": "high", "rationale": "", "weakest_turns": "3"}}
    block = {"type": "tool_use", "id": f"toolu_fake_{seq:020d}", "name": JUDGE_TOOL,
             "input": tool_input}  # fmt: skip
    return [block], "tool_use"


def output_tokens(content: list[Any]) -> int:
    """Tokens of the answer (characters / 4 of its JSON)."""
    return max(1, len(orjson.dumps(content)) // 4)
