"""TRL ``SFTTrainer`` / Hugging Face chat templates: ``{"messages": [{role, content}, ...]}``.

Rules: only the key ``messages``; messages exactly ``{role, content}`` with non-blank string
content; ``system`` only as the first message; after it user and assistant strictly
alternate, user first, assistant last (what ``apply_chat_template`` of most models demands).
``fold_system: true`` is for chat templates without a system role: the system prompt is put
before the first user message's text (``{system}\\n\\n{user}``) and no system message is
written; the rules then allow none.
"""

from __future__ import annotations

from typing import Any

from shared.exports.formats.base import ExportConversation, ExportOptions
from shared.exports.formats.targets.rules import alternation_problem, pairs_problem

NAMES = ("trl", "hf-chat")
FOLD_SEPARATOR = "\n\n"
_ROLES = frozenset({"system", "user", "assistant"})


def build(conv: ExportConversation, turns: list[Any], options: ExportOptions) -> dict[str, Any]:
    """The chat-template record of a conversation, the system prompt folded when asked."""
    messages = [{"role": t.role, "content": t.content} for t in turns]
    if options.fold_system and messages and messages[0]["role"] == "system":
        system = messages.pop(0)["content"]
        if messages and messages[0]["role"] == "user":
            messages[0]["content"] = system + FOLD_SEPARATOR + messages[0]["content"]
    return {"messages": messages}


def check(record: Any, *, folded: bool) -> str | None:
    """Why a line breaks the chat-template rules, or None."""
    if type(record) is not dict or record.keys() != {"messages"}:
        return "must be an object with exactly the key 'messages'"
    messages = record["messages"]
    problem = pairs_problem(messages, role_key="role", text_key="content", roles=_ROLES)
    if problem:
        return problem
    roles = [m["role"] for m in messages]
    if roles[0] == "system":
        if folded:
            return "fold_system is on: no system message may remain"
        roles = roles[1:]
    return alternation_problem(roles, first="user", second="assistant")


def turns(record: dict[str, Any]) -> int:
    """Turns a valid record holds."""
    return len(record["messages"])
