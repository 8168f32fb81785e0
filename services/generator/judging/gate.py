"""The structural gate: a conversation that is broken in shape is not worth a judge call.

It uses the structural score's own measures (shared/conversations/scoring.py: alternation, turn
count, length) and says every reason it refuses, which becomes the conversation's judge_error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from shared.conversations.scoring import score_conversation

MIN_DIALOGUE_TURNS: Final = 2


def structural_problems(turns: Sequence[Mapping[str, Any]], max_chars: int) -> list[str]:
    """Why the conversation cannot be judged (empty: send it to the judge)."""
    dialogue = [t for t in turns if t.get("role") != "system"]
    parts = score_conversation([{"role": t["role"], "content": t["content"]} for t in turns]).parts
    problems = []
    if len(dialogue) < MIN_DIALOGUE_TURNS:
        problems.append(f"{len(dialogue)} dialogue turns (at least {MIN_DIALOGUE_TURNS} needed)")
    elif not parts["alternates_from_user"]:
        problems.append("turns do not alternate user/assistant starting with the user")
    empty = [str(t.get("turn_number", "?")) for t in dialogue if not str(t["content"]).strip()]
    if empty:
        problems.append(f"empty turns: {', '.join(empty)}")
    chars = sum(len(str(t["content"])) for t in turns)
    if chars > max_chars:
        problems.append(f"{chars} characters, over the judge's limit of {max_chars}")
    return problems


def structural_score(turns: Sequence[Mapping[str, Any]]) -> float:
    """The 0–10 structural score (what quality_score falls back to without a judgement)."""
    return score_conversation([{"role": t["role"], "content": t["content"]} for t in turns]).score
