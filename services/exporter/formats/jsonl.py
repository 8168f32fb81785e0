"""JSONL: one OpenAI chat fine-tuning example per line, ``{"messages": [...]}``.

- ``messages`` holds every rendered turn as ``{"role", "content"}``, the system prompt first
  when present (see `base.export_turns`). Content is never shortened, whatever
  ``include_full_content`` says: training data must be whole.
- With ``include_metadata`` a ``metadata`` object follows: conversation_id, title, tier,
  persona, emotion, topic, plus the fields the other flags add (`fields.optional_fields`);
  ``include_full_content`` off drops ``quality_metrics`` and review notes from it.
- No other top-level key; no blank lines; every line, the last included, ends with ``\\n``.
"""

from __future__ import annotations

from typing import Any

import orjson

from services.exporter.formats.base import (
    ExportConversation,
    RenderError,
    Transformer,
    export_turns,
)
from services.exporter.formats.fields import optional_fields


class JsonlTransformer(Transformer):
    """OpenAI chat fine-tuning JSONL."""

    content_type = "application/x-ndjson"
    extension = "jsonl"

    def render(self, conv: ExportConversation) -> bytes:
        """One line: the messages, and metadata when asked for."""
        line: dict[str, Any] = {
            "messages": [{"role": t.role, "content": t.content} for t in export_turns(conv)]
        }
        if self.options.include_metadata:
            line["metadata"] = self._metadata(conv)
        try:
            return orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE)
        except orjson.JSONEncodeError as exc:
            raise RenderError(conv.conversation_id, f"not serializable: {exc}") from exc

    def _metadata(self, conv: ExportConversation) -> dict[str, Any]:
        """The metadata object for one line."""
        meta: dict[str, Any] = {
            "conversation_id": conv.conversation_id,
            "title": conv.title,
            "tier": conv.tier,
            "persona": conv.persona,
            "emotion": conv.emotion,
            "topic": conv.topic,
        }
        meta.update(optional_fields(conv, self.options))
        return meta
