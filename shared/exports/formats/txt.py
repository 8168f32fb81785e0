"""Plain text transcript: what a person reads, one block per conversation.

Each conversation is a heading line ``=== {title} ===`` (the conversation_id without a
title), an info line ``id: {conversation_id} | status: {status} | tier: {tier}``, with
``include_metadata`` and ``include_quality_scores`` a scores line (``scores: quality 8.8 (judge)
| coherence 0.9, relevance 0.8, ... | empathy 4.5, ... | rubric v3``, only the scores that are
set), a blank line,
then per turn the speaker label and the first line of its text (``User: Hello``), every
further line of the text indented by two spaces, and a blank line. The file ends with
``=== end of export: conversations=N turns=M ===`` so a truncated file is detected. Line
endings are LF (CRLF and CR in text become LF; in the heading and info line a space). Reading a
turn back: drop the label, drop two spaces from each further line, join with LF.
"""

from __future__ import annotations

import re

from shared.exports.formats.base import (
    ExportConversation,
    ExportSummary,
    RenderError,
    Transformer,
    export_turns,
)
from shared.exports.formats.markdown import score_pairs
from shared.exports.formats.validate import Validator
from shared.models.scores import FIVE_POINT_SCORES, UNIT_SCORES

LABELS = {"system": "System: ", "user": "User: ", "assistant": "Assistant: "}
INDENT = "  "
SCORES_PREFIX = "scores: "
_ROLE_OF = {label: role for role, label in LABELS.items()}
_FLATTEN = str.maketrans({"\r": " ", "\n": " "})
_TRAILER = re.compile(r"=== end of export: conversations=(\d+) turns=(\d+) ===")


def _lines(text: str) -> list[str]:
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def turn_block(role: str, content: str) -> str:
    """One turn: label and first line, indented continuation lines, a blank line."""
    first, *rest = _lines(content)
    return "".join([LABELS[role], first, "\n", *(f"{INDENT}{line}\n" for line in rest), "\n"])


def scores_line(conv: ExportConversation) -> str:
    """``scores: quality 8.8 (judge) | coherence 0.9, ... | empathy 4.5, ... | rubric v3``."""
    quality = "n/a" if conv.quality_score is None else f"{conv.quality_score:g}"
    parts = [f"quality {quality} ({conv.quality_source or 'none'})"]
    parts += [
        text for names in (UNIT_SCORES, FIVE_POINT_SCORES) if (text := score_pairs(conv, names))
    ]
    if conv.judge_rubric_version is not None:
        parts.append(f"rubric v{conv.judge_rubric_version}")
    return SCORES_PREFIX + " | ".join(parts) + "\n"


class TxtTransformer(Transformer):
    """A readable transcript."""

    content_type = "text/plain; charset=utf-8"
    extension = "txt"

    def render(self, conv: ExportConversation) -> bytes:
        """One conversation block."""
        turns = export_turns(conv)
        title = str(conv.title or conv.conversation_id).translate(_FLATTEN)
        info = f"id: {conv.conversation_id} | status: {conv.status} | tier: {conv.tier}"
        parts = [f"=== {title} ===\n", info.translate(_FLATTEN), "\n"]
        if self.options.include_metadata and self.options.include_quality_scores:
            parts.append(scores_line(conv))
        parts.append("\n")
        parts += [turn_block(t.role, t.content) for t in turns]
        try:
            return "".join(parts).encode()
        except UnicodeEncodeError as exc:
            raise RenderError(conv.conversation_id, f"not encodable as UTF-8: {exc}") from exc

    def footer(self, summary: ExportSummary) -> bytes:
        """The trailer line with the counts."""
        counts = f"conversations={summary.conversation_count} turns={summary.total_turns}"
        return f"=== end of export: {counts} ===\n".encode()


class TxtValidator(Validator):
    """Heading, info, blank, then label/continuation/blank turn blocks, then the trailer."""

    def __init__(self) -> None:
        super().__init__()
        self._state = "start"
        self._roles: list[str] = []

    def _line(self, line: bytes) -> None:
        """Advance by one line."""
        try:
            text = line.decode()
        except UnicodeDecodeError as exc:
            self._fail(f"not UTF-8: {exc}")
        state = self._state
        if state == "done":
            self._fail("text after the trailer")
        if state == "info":
            if not text.startswith("id: "):
                self._fail("expected the info line")
            self._state = "info_gap"
        elif state == "info_gap" and text.startswith(SCORES_PREFIX):
            self._state = "scores_gap"
        elif state in ("info_gap", "scores_gap", "turn_gap"):
            if text:
                self._fail("expected a blank line")
            self._state = "between"
        elif state == "turn":
            self._state = "turn" if text.startswith(INDENT) else self._after_turn(text)
        else:
            self._boundary(text)

    def _after_turn(self, text: str) -> str:
        if text:
            self._fail("a turn must end with a blank line")
        return "between"

    def _boundary(self, text: str) -> None:
        """A label, a new heading or the trailer."""
        label = next((lab for lab in _ROLE_OF if text.startswith(lab)), None)
        if label is not None and self._state == "between":
            self._roles.append(_ROLE_OF[label])
            self._state = "turn"
            return
        if self._state == "between":
            self._close_conversation()
        if (match := _TRAILER.fullmatch(text)) is not None:
            if (int(match[1]), int(match[2])) != (self.conversations, self.turns):
                self._fail(f"trailer says {match[1]} conversations and {match[2]} turns")
            self._state = "done"
        elif text.startswith("=== ") and text.endswith(" ==="):
            self._state = "info"
        else:
            self._fail(f"unexpected line in state {self._state}")

    def _close_conversation(self) -> None:
        self.turns += self._check_roles(self._roles)
        self.conversations += 1
        self._roles = []

    def _end(self) -> None:
        """The trailer must be the last line."""
        if self._state != "done":
            self._fail("the file ends before its trailer (truncated output)")
