"""Amazon Bedrock fine-tuning for Claude: ``{"system"?, "messages": [{role, content}, ...]}``.

Rules (checked on every line before it is written): only the keys ``system`` and
``messages``; ``system`` a non-blank string when present; messages exactly ``{role, content}``
with non-blank string content; roles ``user``/``assistant`` only, user first, strictly
alternating, the last one ``assistant``. The conversation's system turn (or system prompt)
becomes ``system``; a system turn anywhere but first cannot be expressed and fails the row.
"""

from __future__ import annotations

from typing import Any

from shared.exports.formats.base import ExportConversation, ExportOptions, RenderError
from shared.exports.formats.targets.rules import alternation_problem, pairs_problem, text_problem

NAME = "bedrock-claude"
_KEYS = frozenset({"system", "messages"})
_ROLES = frozenset({"user", "assistant"})


def build(conv: ExportConversation, turns: list[Any], options: ExportOptions) -> dict[str, Any]:
    """The Bedrock record of a conversation (RenderError for a misplaced system turn)."""
    record: dict[str, Any] = {}
    if turns and turns[0].role == "system":
        record["system"] = turns[0].content
        turns = turns[1:]
    if any(t.role == "system" for t in turns):
        raise RenderError(conv.conversation_id, f"{NAME}: a system turn after the first message")
    record["messages"] = [{"role": t.role, "content": t.content} for t in turns]
    return record


def check(record: Any) -> str | None:
    """Why a line breaks Bedrock's rules, or None."""
    if type(record) is not dict or "messages" not in record or not record.keys() <= _KEYS:
        return "must be an object with 'messages' and at most 'system'"
    if "system" in record and (problem := text_problem(record["system"], "system")):
        return problem
    messages = record["messages"]
    problem = pairs_problem(messages, role_key="role", text_key="content", roles=_ROLES)
    if problem:
        return problem
    return alternation_problem([m["role"] for m in messages], first="user", second="assistant")


def turns(record: dict[str, Any]) -> int:
    """Turns a valid record holds (the system prompt counts as one)."""
    return len(record["messages"]) + ("system" in record)
