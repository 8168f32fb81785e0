"""JSONL: one OpenAI chat fine-tuning example per line, ``{"messages": [...]}``.

- ``messages`` holds every rendered turn as ``{"role", "content"}``, the system prompt first
  when present (see `base.export_turns`). Content is never shortened, whatever
  ``include_full_content`` says: training data must be whole.
- With ``include_metadata`` a ``metadata`` object follows: conversation_id, title, tier,
  persona, emotion, topic, plus the fields the other flags add (`fields.optional_fields`);
  ``include_full_content`` off drops ``quality_metrics`` and review notes from it.
- No other top-level key; no blank lines; every line, the last included, ends with ``\\n``.

Without metadata (the default, and what fine-tuning APIs take as is) PostgreSQL builds the
lines itself (`PLAIN_LINE_SQL`): the exporter then only checks and stores them, and the
rendering runs on the database's core while the exporter validates the previous batch. Its
output is byte-identical to `JsonlTransformer.render` (tests/exporter/test_jsonl_sql.py):
``to_json(text)`` escapes exactly what orjson escapes (``"``, ``\\``, and the control
characters below U+0020, as ``\\b \\t \\n \\f \\r`` or ``\\u00xx``) and keeps every
other character as UTF-8.
"""

from __future__ import annotations

from typing import Any

import orjson

from shared.exports.formats.base import (
    NOT_TRAINABLE,
    ExportConversation,
    ExportOptions,
    RenderError,
    Transformer,
    export_turns,
    sql_literal,
)
from shared.exports.formats.fields import optional_fields

# One conversation's line as `JsonlTransformer.render` writes it without metadata: the turns in
# turn_number order, the system prompt first as a synthetic turn when there is no system turn
# (base.export_turns), NULL when a user or an assistant turn is missing (RenderError there),
# `failure` then saying so.
# A SELECT over the turns of `c` (see export_source.rendered_batch).
PLAIN_LINE_SQL = """
SELECT a.turns + a.synthetic::int AS turn_count,
       CASE WHEN a.trainable THEN convert_to(
           '{"messages":['
           || CASE WHEN a.synthetic
                   THEN '{"role":"system","content":' || to_json(c.system_prompt)::text || '},'
                   ELSE '' END
           || a.messages || E']}\\n', 'UTF8') END AS data,
       CASE WHEN NOT a.trainable THEN NOT_TRAINABLE END AS failure,
       false AS needs_check
  FROM (SELECT count(*) AS turns,
               coalesce(bool_or(t.role = 'user') AND bool_or(t.role = 'assistant'), false)
                   AS trainable,
               coalesce(c.system_prompt, '') <> ''
                   AND NOT coalesce(bool_or(t.role = 'system'), false) AS synthetic,
               string_agg('{"role":' || to_json(t.role)::text
                          || ',"content":' || to_json(t.content)::text || '}',
                          ',' ORDER BY t.turn_number) AS messages
          FROM conversation_turns t
         WHERE t.conversation_id = c.id) AS a
""".replace("NOT_TRAINABLE", sql_literal(NOT_TRAINABLE))


class JsonlTransformer(Transformer):
    """OpenAI chat fine-tuning JSONL."""

    content_type = "application/jsonl"
    extension = "jsonl"

    def render(self, conv: ExportConversation) -> bytes:
        """One line: the messages, and metadata when asked for."""
        line: dict[str, Any] = {
            "messages": [{"role": t.role, "content": t.content} for t in export_turns(conv)]
        }
        if self.options.include_metadata:
            line["metadata"] = line_metadata(conv, self.options)
        try:
            return orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE)
        except orjson.JSONEncodeError as exc:
            raise RenderError(conv.conversation_id, f"not serializable: {exc}") from exc


def line_metadata(conv: ExportConversation, options: ExportOptions) -> dict[str, Any]:
    """The metadata object of one JSONL line (openai and sharegpt targets)."""
    meta: dict[str, Any] = {
        "conversation_id": conv.conversation_id,
        "title": conv.title,
        "tier": conv.tier,
        "persona": conv.persona,
        "emotion": conv.emotion,
        "topic": conv.topic,
    }
    meta.update(optional_fields(conv, options))
    return meta
