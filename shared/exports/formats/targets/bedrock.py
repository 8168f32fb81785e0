"""Amazon Bedrock fine-tuning for Claude: ``{"system"?, "messages": [{role, content}, ...]}``.

Rules (checked on every line before it is written): only the keys ``system`` and
``messages``; ``system`` a non-blank string when present; messages exactly ``{role, content}``
with non-blank string content; roles ``user``/``assistant`` only, user first, strictly
alternating, the last one ``assistant``. The conversation's system turn (or system prompt)
becomes ``system``; a system turn anywhere but first cannot be expressed and fails the row.

PostgreSQL renders the lines (`LINE_SQL`, byte-identical to `build` + orjson, proven by
tests/exporter/test_database_render.py) and decides the rules it can on roles alone: a missing
user or assistant turn and a misplaced system turn fail the row there. A line whose roles are
not exactly user, assistant, ... assistant, or one of whose texts does not start with a visible
ASCII character (the only texts that may be blank), comes with `needs_check` and the exporter
runs `check` on it, so every line is still checked, most of them without being parsed (the
validator parses every stored line and applies `check` again).
"""

from __future__ import annotations

from typing import Any

from shared.exports.formats.base import (
    NOT_TRAINABLE,
    ExportConversation,
    ExportOptions,
    RenderError,
    sql_literal,
)
from shared.exports.formats.targets.rules import alternation_problem, pairs_problem, text_problem

NAME = "bedrock-claude"
_KEYS = frozenset({"system", "messages"})
_ROLES = frozenset({"user", "assistant"})
MISPLACED_SYSTEM = f"{NAME}: a system turn after the first message"

# One conversation's Bedrock line (a SELECT over the turns of `c`, see
# export_source.rendered_batch). `codes` is the roles' first letters in turn order (s, u, a);
# the system text is the conversation's system turn when it comes first, else its system
# prompt (the synthetic turn of base.export_turns); `plain` says every text starts with a
# visible ASCII character, so none can be blank.
LINE_SQL = """
SELECT b.turns + b.synthetic::int AS turn_count,
       CASE WHEN b.failure IS NULL THEN convert_to(
           '{' || CASE WHEN b.system IS NOT NULL
                       THEN '"system":' || to_json(b.system)::text || ',' ELSE '' END
           || '"messages":[' || b.messages || E']}\\n', 'UTF8') END AS data,
       b.failure,
       b.failure IS NULL AND NOT (b.plain AND b.pattern ~ '^(ua)+$') AS needs_check
  FROM (SELECT a.turns, a.synthetic, a.messages,
               CASE WHEN NOT a.trainable THEN NOT_TRAINABLE
                    WHEN position('s' IN substr(a.codes, 2)) > 0 THEN MISPLACED_SYSTEM
               END AS failure,
               CASE WHEN a.synthetic THEN c.system_prompt
                    WHEN left(a.codes, 1) = 's' THEN a.system_text END AS system,
               CASE WHEN left(a.codes, 1) = 's' THEN substr(a.codes, 2) ELSE a.codes END
                   AS pattern,
               a.plain AND (NOT a.synthetic OR ascii(c.system_prompt) BETWEEN 33 AND 126)
                   AS plain
          FROM (SELECT count(*) AS turns,
                       coalesce(bool_or(t.role = 'user') AND bool_or(t.role = 'assistant'),
                                false) AS trainable,
                       coalesce(c.system_prompt, '') <> ''
                           AND NOT coalesce(bool_or(t.role = 'system'), false) AS synthetic,
                       coalesce(string_agg(left(t.role, 1), '' ORDER BY t.turn_number), '')
                           AS codes,
                       string_agg(t.content, '') FILTER (WHERE t.role = 'system') AS system_text,
                       string_agg('{"role":' || to_json(t.role)::text
                                  || ',"content":' || to_json(t.content)::text || '}',
                                  ',' ORDER BY t.turn_number) FILTER (WHERE t.role <> 'system')
                           AS messages,
                       coalesce(bool_and(ascii(t.content) BETWEEN 33 AND 126), true) AS plain
                  FROM conversation_turns t
                 WHERE t.conversation_id = c.id) AS a) AS b
""".replace("NOT_TRAINABLE", sql_literal(NOT_TRAINABLE)).replace(
    "MISPLACED_SYSTEM", sql_literal(MISPLACED_SYSTEM)
)


def build(conv: ExportConversation, turns: list[Any], options: ExportOptions) -> dict[str, Any]:
    """The Bedrock record of a conversation (RenderError for a misplaced system turn)."""
    record: dict[str, Any] = {}
    if turns and turns[0].role == "system":
        record["system"] = turns[0].content
        turns = turns[1:]
    if any(t.role == "system" for t in turns):
        raise RenderError(conv.conversation_id, MISPLACED_SYSTEM)
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
