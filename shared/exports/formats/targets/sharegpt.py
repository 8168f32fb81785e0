"""ShareGPT (axolotl, LLaMA-Factory, FastChat): ``{"conversations": [{from, value}, ...]}``.

Rules: ``conversations`` holds exactly ``{from, value}`` objects with non-blank string values;
``from`` is ``system`` (only as the first entry), ``human`` or ``gpt``; after the optional
system entry human and gpt strictly alternate, human first, gpt last. With
``include_metadata`` a ``metadata`` object (as on openai lines) follows; no other key.
"""

from __future__ import annotations

from typing import Any

from shared.exports.formats.base import ExportConversation, ExportOptions
from shared.exports.formats.jsonl import line_metadata
from shared.exports.formats.targets.rules import alternation_problem, pairs_problem

NAME = "sharegpt"
FROM = {"system": "system", "user": "human", "assistant": "gpt"}
_ROLES = frozenset(FROM.values())


def build(conv: ExportConversation, turns: list[Any], options: ExportOptions) -> dict[str, Any]:
    """The ShareGPT record of a conversation."""
    record: dict[str, Any] = {
        "conversations": [{"from": FROM[t.role], "value": t.content} for t in turns]
    }
    if options.include_metadata:
        record["metadata"] = line_metadata(conv, options)
    return record


def check(record: Any) -> str | None:
    """Why a line breaks the ShareGPT rules, or None."""
    if type(record) is not dict or "conversations" not in record:
        return "must be an object with 'conversations'"
    if not record.keys() <= {"conversations", "metadata"}:
        return f"unexpected keys {sorted(record.keys() - {'conversations', 'metadata'})}"
    if "metadata" in record and type(record["metadata"]) is not dict:
        return "metadata must be an object"
    entries = record["conversations"]
    problem = pairs_problem(entries, role_key="from", text_key="value", roles=_ROLES)
    if problem:
        return problem
    speakers = [e["from"] for e in entries]
    if speakers[0] == "system":
        speakers = speakers[1:]
    return alternation_problem(speakers, first="human", second="gpt")


def turns(record: dict[str, Any]) -> int:
    """Turns a valid record holds."""
    return len(record["conversations"])
