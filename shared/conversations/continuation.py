"""Regenerate from a turn: the prompt that shows the kept turns and asks for the rest.

The API builds the revision prompt when it plans the job; the generator parses the answer as
the turns that follow and lands kept + new turns; the offline provider reads the same prompt
back to answer deterministically. The markers below are that shared vocabulary.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal

import orjson

SpeakerRole = Literal["user", "assistant"]
FIRST_ROLE: Final = re.compile(r"The first new turn is spoken by the (user|assistant)\.")
INSTRUCTIONS_OPEN: Final = "Reviewer's instructions for this version (follow them):\n<<<\n"
INSTRUCTIONS_CLOSE: Final = "\n>>>"
_INSTRUCTIONS: Final = re.compile(
    re.escape(INSTRUCTIONS_OPEN) + r"(.*?)" + re.escape(INSTRUCTIONS_CLOSE), re.DOTALL
)


def next_role(kept: Sequence[Mapping[str, Any]]) -> SpeakerRole:
    """Who speaks first after the kept turns (the user when no dialogue turn is kept)."""
    dialogue = [turn["role"] for turn in kept if turn["role"] != "system"]
    return "assistant" if dialogue and dialogue[-1] == "user" else "user"


def revision_prompt(
    kept: Sequence[Mapping[str, Any]], from_turn: int | None, instructions: str | None
) -> str:
    """The part of the user message a regenerate adds: kept turns, then the instructions."""
    parts: list[str] = []
    if from_turn is not None and from_turn > 1:
        parts.append(_continuation(kept, from_turn))
    if instructions:
        parts.append(f"{INSTRUCTIONS_OPEN}{instructions}{INSTRUCTIONS_CLOSE}")
    return "\n\n".join(parts)


def _continuation(kept: Sequence[Mapping[str, Any]], from_turn: int) -> str:
    shown = [{"role": t["role"], "content": t["content"]} for t in kept if t["role"] != "system"]
    body = orjson.dumps({"turns": shown}, option=orjson.OPT_INDENT_2).decode()
    role = next_role(kept)
    return (
        f"This is a revision of an existing conversation. Its turns before turn {from_turn} "
        "stay exactly as they are (the system prompt counts as turn 1 when there is one):\n"
        f"```json\n{body}\n```\n"
        f"Write only the turns that come after them, continuing the same conversation naturally "
        f"and alternating user and assistant; do not repeat the turns above. "
        f"The first new turn is spoken by the {role}. "
        'Reply with only the JSON object {"title": "<short title>", "turns": [...]} holding '
        "the new turns."
    )


def requested_first_role(prompt: str) -> SpeakerRole | None:
    """The first role a continuation prompt asks for, None when it asks for a whole one."""
    match = FIRST_ROLE.search(prompt)
    return "assistant" if match and match.group(1) == "assistant" else "user" if match else None


def requested_instructions(prompt: str) -> str | None:
    """The reviewer's instructions a prompt carries, if any."""
    match = _INSTRUCTIONS.search(prompt)
    return match.group(1) if match else None
