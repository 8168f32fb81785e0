"""Markdown: a readable review copy, one section per conversation.

Each conversation is ``# Conversation: {title}`` (the conversation_id when there is no
title), a blank line, a bullet list of metadata (Conversation ID, Status and Tier always; the
rest with ``include_metadata`` and the other flags: with ``include_quality_scores`` the quality
score, its source, the judge's 0-1 scores and 1-5 criteria that are set and the rubric version;
a near-duplicate link when there is one), then per turn a blank line, a label
(``**System:**``, ``**User:**``, ``**Assistant:**``), a blank line and the content as a
blockquote in which every line starts with ``> `` (an empty line is a bare ``>``), so multi-line
content stays inside the quote. Conversations are separated by a blank line, ``---`` and a
blank line (between conversations, never after the last). The file ends with an HTML comment
``<!-- convoforge-export conversations=N turns=M -->`` that renderers hide and the validator
checks, so a truncated file is always detected.

Line endings are LF: CRLF and lone CR inside content become LF, and inside the title and
metadata values any CR/LF becomes a space, since a line break there would end the heading or
bullet. HTML is neutralised everywhere: ``&``, ``<`` and ``>`` become ``&amp;``, ``&lt;`` and
``&gt;``, so a turn holding ``<script>`` or ``</blockquote>`` shows as that text in any
renderer, HTML on or off (un-escape those three entities to get the text back). Content is
otherwise written as is, so Markdown inside a turn renders inside the quote.
"""

from __future__ import annotations

import html
from typing import Any

import orjson

from shared.exports.formats.base import (
    ExportConversation,
    ExportSummary,
    RenderError,
    Transformer,
    export_turns,
)
from shared.models.scores import FIVE_POINT_SCORES, UNIT_SCORES

LABELS = {"system": "**System:**", "user": "**User:**", "assistant": "**Assistant:**"}
HEADING = "# Conversation: "
SEPARATOR = "---"
TRAILER_PREFIX = "<!-- convoforge-export "
_FLATTEN = str.maketrans({"\r": " ", "\n": " "})


def inline(value: object) -> str:
    """A value as one line of text, HTML escaped."""
    return html.escape(str(value).translate(_FLATTEN), quote=False)


def blockquote(content: str) -> str:
    """The content as blockquote lines, HTML escaped, LF line endings, no final newline."""
    text = html.escape(content, quote=False)
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join("> " + line if line else ">" for line in lines)


def trailer(conversations: int, turns: int) -> str:
    """The closing comment that records what the file holds."""
    return f"{TRAILER_PREFIX}conversations={conversations} turns={turns} -->"


class MarkdownTransformer(Transformer):
    """Human-readable Markdown."""

    content_type = "text/markdown; charset=utf-8"
    extension = "md"

    _started = False

    def render(self, conv: ExportConversation) -> bytes:
        """One conversation section, preceded by the separator unless it is the first."""
        turns = export_turns(conv)
        parts = [f"\n{SEPARATOR}\n\n"] if self._started else []
        parts.append(f"{HEADING}{inline(conv.title or conv.conversation_id)}\n\n")
        try:
            parts += self._metadata(conv)
            parts += [f"\n{LABELS[t.role]}\n\n{blockquote(t.content)}\n" for t in turns]
            data = "".join(parts).encode()
        except (UnicodeEncodeError, orjson.JSONEncodeError) as exc:
            raise RenderError(conv.conversation_id, f"cannot be written: {exc}") from exc
        self._started = True
        return data

    def footer(self, summary: ExportSummary) -> bytes:
        """The trailer comment, after a blank line when conversations were written."""
        lead = "\n" if self._started else ""
        return f"{lead}{trailer(summary.conversation_count, summary.total_turns)}\n".encode()

    def _metadata(self, conv: ExportConversation) -> list[str]:
        """The metadata bullet lines, each ending with a newline."""
        items = [("Conversation ID", conv.conversation_id), ("Status", conv.status)]
        items.append(("Tier", conv.tier))
        if self.options.include_metadata:
            items += self._descriptive(conv) + self._optional(conv)
        lines = [f"- **{label}:** {inline(value)}\n" for label, value in items]
        if self.options.include_metadata and self.options.include_approval_history:
            lines += self._history(conv)
        return lines

    def _descriptive(self, conv: ExportConversation) -> list[tuple[str, str]]:
        """Persona, emotion, topic and the like, where set."""
        values = [
            ("Persona", conv.persona),
            ("Emotion", conv.emotion),
            ("Topic", conv.topic),
            ("Intent", conv.intent),
            ("Tone", conv.tone),
            ("Category", ", ".join(conv.category)),
            ("Tags", ", ".join(conv.tags)),
        ]
        return [(label, value) for label, value in values if value]

    def _optional(self, conv: ExportConversation) -> list[tuple[str, str]]:
        """The items the quality, timestamp and parent flags switch on."""
        options = self.options
        items: list[tuple[str, str]] = []
        if options.include_quality_scores:
            score = "n/a" if conv.quality_score is None else str(conv.quality_score)
            items.append(("Quality score", score))
            items += judge_items(conv)
            if options.include_full_content and conv.quality_metrics:
                items.append(("Quality metrics", _metrics(conv.quality_metrics)))
        if conv.duplicate_of is not None:
            items.append(("Near-duplicate of", duplicate_text(conv)))
        if options.include_timestamps:
            items.append(("Created", conv.created_at.isoformat()))
            items.append(("Updated", conv.updated_at.isoformat()))
        if options.include_parent_references:
            items.append(("Parent", _parent(conv)))
        return items

    def _history(self, conv: ExportConversation) -> list[str]:
        """The approval history item with one nested bullet per review, oldest first."""
        if not conv.reviews:
            return ["- **Approval history:** none\n"]
        lines = ["- **Approval history:**\n"]
        for review in sorted(conv.reviews, key=lambda r: r.created_at):
            text = f"{review.created_at.isoformat()} {review.action}: "
            text += f"{review.from_status or '-'} -> {review.to_status}"
            if review.reviewer_id:
                text += f" by {review.reviewer_id}"
            if self.options.include_full_content and review.notes:
                text += f" ({review.notes})"
            lines.append(f"  - {inline(text)}\n")
        return lines


def judge_items(conv: ExportConversation) -> list[tuple[str, str]]:
    """Where the score came from, the judge's 0-1 and 1-5 scores and its rubric version."""
    items = [("Quality source", conv.quality_source or "none")]
    unit = score_pairs(conv, UNIT_SCORES)
    if unit:
        items.append(("Judge scores (0-1)", unit))
    five = score_pairs(conv, FIVE_POINT_SCORES)
    if five:
        items.append(("Criteria (1-5)", five))
    if conv.judge_rubric_version is not None:
        items.append(("Rubric version", str(conv.judge_rubric_version)))
    return items


def score_pairs(conv: ExportConversation, names: tuple[str, ...]) -> str:
    """``coherence 0.9, relevance 0.8`` for the scores that are set (empty when none is)."""
    pairs = []
    for name in names:
        value = getattr(conv, name)
        if value is not None:
            pairs.append(f"{name.removesuffix('_score')} {value:g}")
    return ", ".join(pairs)


def duplicate_text(conv: ExportConversation) -> str:
    """The conversation this one nearly copies and how similar they are."""
    similarity = conv.duplicate_similarity
    return f"{conv.duplicate_of}" + ("" if similarity is None else f" (similarity {similarity:g})")


def _metrics(metrics: dict[str, Any]) -> str:
    """Quality metrics as ``name: value`` pairs on one line."""
    pairs = (
        f"{k}: {v if isinstance(v, str) else orjson.dumps(v).decode()}" for k, v in metrics.items()
    )
    return ", ".join(pairs)


def _parent(conv: ExportConversation) -> str:
    """The parent reference and the generation sources that are set."""
    refs = [
        ("parent", conv.parent_type, conv.parent_id),
        ("template", None, conv.template_id),
        ("scenario", None, conv.scenario_id),
        ("edge case", None, conv.edge_case_id),
    ]
    parts = [f"{kind} {extra + ' ' if extra else ''}{ref}" for kind, extra, ref in refs if ref]
    return ", ".join(parts) if parts else "none"
