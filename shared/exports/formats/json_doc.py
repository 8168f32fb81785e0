"""JSON: one pretty-printed (2-space) document, streamed without holding the conversations.

Layout and key order (JSON key order carries no meaning; this one is what streaming allows)::

    {
      "version": "1.0",
      "export_date": "...",
      "conversations": [
        {"conversation_id", "title", "status", "tier", "turns": [...], "metadata"?},
        ...
      ],
      "conversation_count": N,
      "summary"?: {"total_turns", "average_quality_score"?, "tier_distribution"}
    }

``conversation_count`` comes after the array because it is only known at the end. Turns are
``{"turn_number", "role", "content"}``, plus the emotion/strategy/tone annotations when both
``include_metadata`` and ``include_full_content`` are on. ``metadata`` and ``summary`` appear
only with ``include_metadata``; ``average_quality_score`` only with ``include_quality_scores``.
The bytes equal ``orjson.dumps(document, option=OPT_INDENT_2)`` plus a final newline, except
that an empty export's array spans ``[`` and ``]`` on one line as ``[]``.
"""

from __future__ import annotations

from typing import Any

import orjson

from shared.exports.formats.base import (
    ExportConversation,
    ExportSummary,
    ExportTurn,
    RenderError,
    Transformer,
    export_turns,
)
from shared.exports.formats.fields import optional_fields, turn_annotations

VERSION = "1.0"
_INDENT = orjson.OPT_INDENT_2
# An array element sits two levels deep: every line of it is shifted by four spaces.
_ELEMENT_SHIFT = b"\n    "


class JsonTransformer(Transformer):
    """A single JSON document with a summary."""

    content_type = "application/json"
    extension = "json"

    _started = False

    def header(self) -> bytes:
        """The document up to and including ``"conversations": [``."""
        opening = {"version": VERSION, "export_date": self.options.export_date, "conversations": []}
        # Dump with an empty array and cut its "]\n}" so the layout is orjson's own.
        return orjson.dumps(opening, option=_INDENT)[: -len(b"]\n}")]

    def render(self, conv: ExportConversation) -> bytes:
        """One array element, preceded by the comma that separates it from the previous one."""
        try:
            element = orjson.dumps(self._element(conv), option=_INDENT)
        except orjson.JSONEncodeError as exc:
            raise RenderError(conv.conversation_id, f"not serializable: {exc}") from exc
        lead = b",\n    " if self._started else b"\n    "
        self._started = True
        return lead + element.replace(b"\n", _ELEMENT_SHIFT)

    def footer(self, summary: ExportSummary) -> bytes:
        """Closes the array, then writes conversation_count and the summary."""
        tail: dict[str, Any] = {"conversation_count": summary.conversation_count}
        if self.options.include_metadata:
            tail["summary"] = self._summary(summary)
        body = orjson.dumps(tail, option=_INDENT)
        close = b"\n  ]" if self._started else b"]"
        # body[2:] drops the tail object's own "{\n"; its closing "}" ends the document.
        return close + b",\n" + body[2:] + b"\n"

    def _element(self, conv: ExportConversation) -> dict[str, Any]:
        """The conversation as a dict, metadata included when asked for."""
        element: dict[str, Any] = {
            "conversation_id": conv.conversation_id,
            "title": conv.title,
            "status": conv.status,
            "tier": conv.tier,
            "turns": [self._turn(t) for t in export_turns(conv)],
        }
        if self.options.include_metadata:
            element["metadata"] = self._metadata(conv)
        return element

    def _turn(self, turn: ExportTurn) -> dict[str, Any]:
        """One turn, with its annotations when the options ask for full metadata."""
        out: dict[str, Any] = {
            "turn_number": turn.turn_number,
            "role": turn.role,
            "content": turn.content,
        }
        if self.options.include_metadata and self.options.include_full_content:
            out.update(turn_annotations(turn))
        return out

    def _metadata(self, conv: ExportConversation) -> dict[str, Any]:
        """Descriptive fields plus what the include flags add."""
        meta: dict[str, Any] = {
            "persona": conv.persona,
            "emotion": conv.emotion,
            "topic": conv.topic,
            "intent": conv.intent,
            "tone": conv.tone,
            "category": conv.category,
            "tags": conv.tags,
            "is_flagged": conv.is_flagged,
            "model": conv.model,
        }
        meta.update(optional_fields(conv, self.options))
        return meta

    def _summary(self, summary: ExportSummary) -> dict[str, Any]:
        """The summary object; the average only with include_quality_scores."""
        out: dict[str, Any] = {"total_turns": summary.total_turns}
        if self.options.include_quality_scores:
            out["average_quality_score"] = summary.average_quality_score
        out["tier_distribution"] = summary.tier_distribution
        return out
