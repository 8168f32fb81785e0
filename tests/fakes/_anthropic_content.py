"""Bodies the fake Claude API answers with: generated conversations, errors, validation."""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping
from typing import Any

import orjson

from tests.fakes import _anthropic_judge as judge

SPEND_LIMIT_MESSAGE = (
    "You have reached your specified API usage limits. "
    "You will regain access on 2030-01-01 at 00:00 UTC."
)
CREDIT_MESSAGE = (
    "Your credit balance is too low to access the Anthropic API. "
    "Please go to Plans & Billing to upgrade or purchase credits."
)
MALFORMED_TEXT = (
    "I'd be glad to help with this conversation. The user opens by describing their worry, "
    "the assistant acknowledges it and asks a clarifying question, and they talk it through."
)
# fmt: off
_WORDS = (
    "plan", "budget", "worry", "savings", "feel", "market", "month", "honest", "steady",
    "account", "question", "goal", "family", "time", "money", "calm", "next", "step", "help",
    "understand", "risk", "choice", "future", "pension", "cash", "think", "really", "maybe",
    "today", "enough", "right", "balance", "option", "simple", "trust", "careful",
)
# fmt: on
_PERSONAS = ("Anxious Investor", "New Parent", "Career Changer", "Frustrated Customer")
_TOPICS = ("Market Volatility", "Emergency Fund", "Salary Negotiation", "Late Delivery")


def error_body(kind: str, message: str) -> dict[str, Any]:
    """Build an Anthropic error body."""
    return {"type": "error", "error": {"type": kind, "message": message}}


AUTH_ERROR = error_body("authentication_error", "invalid x-api-key")
RATE_LIMIT_ERROR = error_body(
    "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"
)
OVERLOADED_ERROR = error_body("overloaded_error", "Overloaded")
SERVER_ERROR = error_body("api_error", "Internal server error")
TOO_LARGE_ERROR = error_body(
    "request_too_large", "Request exceeds the maximum allowed number of bytes."
)


def estimate_tokens(text: str) -> int:
    """Approximate tokens as characters / 4."""
    return max(1, math.ceil(len(text) / 4))


# A regenerate-from-a-turn prompt names who speaks first after the kept turns; like Claude
# following that instruction, the fake then writes only the continuation, starting there.
_FIRST_ROLE = re.compile(r"The first new turn is spoken by the (user|assistant)\.")


def first_role(body: Mapping[str, Any]) -> str:
    """Who the request asks to speak first: the continuation's role, else the user."""
    match = _FIRST_ROLE.search(_flatten(body["messages"][-1].get("content", "")))
    return match.group(1) if match else "user"


def conversation_text(
    seed: int, n: int, min_turns: int, max_turns: int, *, first: str = "user"
) -> str:
    """Deterministic assistant text: a short preamble and a conversation in a json fence."""
    rng = random.Random(seed * 1_000_003 + n)
    offset = 0 if first == "user" else 1
    turns = [
        {"role": "user" if (i + offset) % 2 == 0 else "assistant", "content": _utterance(rng)}
        for i in range(rng.randint(min_turns, max_turns))
    ]
    title = f"{rng.choice(_PERSONAS)} - {rng.choice(_TOPICS)}"
    document = orjson.dumps({"title": title, "turns": turns}, option=orjson.OPT_INDENT_2).decode()
    return f"Here is the conversation in the requested JSON format:\n\n```json\n{document}\n```\n"


def _utterance(rng: random.Random) -> str:
    length = rng.randint(120, 390)
    words: list[str] = []
    while sum(len(w) + 1 for w in words) < length:
        words.append(rng.choice(_WORDS))
    text = " ".join(words)[: length - 1].rstrip()
    return text[0].upper() + text[1:] + "."


def prompt_tokens(body: Mapping[str, Any]) -> int:
    """Input tokens of a request's prompt (characters / 4), as every route counts them."""
    return max(1, math.ceil(_prompt_chars(body) / 4))


def _prompt_chars(body: Mapping[str, Any]) -> int:
    tools = body.get("tools")
    parts: list[Any] = [orjson.dumps(tools).decode() if tools else ""]
    parts.append(body.get("system") or "")
    parts += [m.get("content", "") for m in body["messages"]]
    return sum(len(_flatten(p)) for p in parts)


def _flatten(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
    return ""


def validate_body(body: Any) -> str | None:
    """Return the first problem with a Messages request body, named like the real API."""
    if not isinstance(body, dict):
        return "body: Input should be a valid dictionary"
    for name in ("model", "max_tokens", "messages"):
        if name not in body:
            return f"{name}: Field required"
    if not isinstance(body["model"], str) or not body["model"]:
        return "model: Input should be a valid string"
    max_tokens = body["max_tokens"]
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool):
        return "max_tokens: Input should be a valid integer"
    if max_tokens < 1:
        return "max_tokens: Input should be greater than or equal to 1"
    return _validate_messages(body["messages"]) or _validate_temperature(body.get("temperature"))


def _validate_messages(messages: Any) -> str | None:
    if not isinstance(messages, list):
        return "messages: Input should be a valid list"
    if not messages:
        return "messages: at least one message is required"
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            return f"messages.{i}.role: Input should be 'user' or 'assistant'"
        if not isinstance(message.get("content"), str | list) or not message["content"]:
            return f"messages.{i}.content: Field required"
    return None


def _validate_temperature(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= 1:
        return "temperature: Input should be a number between 0 and 1"
    return None


def build_message(
    kind: str, body: Mapping[str, Any], seq: int, *, seed: int, turns: tuple[int, int]
) -> dict[str, Any]:
    """Build a 200 Messages body for an ok/timeout/truncated/max_tokens/malformed step."""
    if judge.is_judge_call(body):
        return _judge_message(kind, body, seq)
    max_tokens = body["max_tokens"]
    text = conversation_text(seed, seq, *turns, first=first_role(body))
    stop_reason = "max_tokens" if kind == "max_tokens" else "end_turn"
    if kind == "malformed":
        text = MALFORMED_TEXT
    elif kind in ("truncated", "max_tokens"):
        text = text[: len(text) * 11 // 20]
    if estimate_tokens(text) > max_tokens:
        text, stop_reason = text[: max_tokens * 4], "max_tokens"
    output_tokens = max_tokens if stop_reason == "max_tokens" else estimate_tokens(text)
    input_tokens = prompt_tokens(body)
    return {
        "id": f"msg_fake_{seq:020d}",
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": [{"type": "text", "text": text}],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    }


def _judge_message(kind: str, body: Mapping[str, Any], seq: int) -> dict[str, Any]:
    content, stop_reason = judge.judge_content(kind, body, seq)
    return {
        "id": f"msg_fake_{seq:020d}",
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": prompt_tokens(body),
            "output_tokens": min(body["max_tokens"], judge.output_tokens(content)),
        },
    }
