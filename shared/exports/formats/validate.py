"""Streaming validators: each reads a format's bytes chunk by chunk and counts what it holds.

Feed the exact bytes written (header, every rendered conversation, footer) with `feed`, then
call `finish`: it returns the conversation and turn counts, which the worker compares with its
`ExportSummary`, or raises `OutputInvalid`. Memory is bounded by one line (JSONL, Markdown),
one record (CSV) or one conversation (JSON): the JSON validator relies on the transformer's
layout (one array element starts at ``    {`` and ends at ``    }``) to parse element by
element instead of buffering the document, so it validates our output, not any JSON.
"""

from __future__ import annotations

import csv
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, NoReturn

import orjson

from shared.exports.formats.base import ExportOptions
from shared.exports.formats.csv_format import BOM, csv_columns
from shared.exports.formats.markdown import HEADING, LABELS, SEPARATOR, TRAILER_PREFIX

ROLES = frozenset(("system", "user", "assistant"))
_JSONL_KEYS = frozenset(("messages", "metadata"))
_MALFORMED = object()
# Bounds on the parts of a JSON document that are not conversations, so garbage cannot grow them.
_MAX_JSON_HEAD_LINES = 16
_MAX_JSON_TAIL_LINES = 10_000


class OutputInvalid(Exception):
    """The produced bytes are not a valid file of the format."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ValidationReport:
    """What a valid file holds."""

    conversations: int
    turns: int
    byte_count: int


class Validator(ABC):
    """Splits the stream into LF-terminated lines and hands each to the format's check."""

    def __init__(self) -> None:
        self._pending = bytearray()
        self._byte_count = 0
        self._line_number = 0
        self.conversations = 0
        self.turns = 0

    def feed(self, chunk: bytes) -> None:
        """Consume the next chunk of output."""
        self._byte_count += len(chunk)
        if not self._pending and chunk.endswith(b"\n"):
            # Whole lines (what the exporter feeds): split in place, no copy into the buffer.
            lines = chunk.split(b"\n")
            lines.pop()  # the empty piece after the last LF
            self._lines(lines)
            return
        start = len(self._pending)
        self._pending += chunk
        # Search only the new bytes: feeding one byte at a time stays linear.
        last = self._pending.rfind(b"\n", start)
        if last < 0:
            return
        complete = bytes(self._pending[:last])
        del self._pending[: last + 1]
        self._lines(complete.split(b"\n"))

    def feed_parts(self, parts: list[bytes]) -> None:
        """Consume the next output as the pieces it was rendered in (same result as feeding
        their concatenation)."""
        for part in parts:
            self.feed(part)

    def _lines(self, lines: list[bytes]) -> None:
        """Check complete lines in order."""
        for line in lines:
            self._line_number += 1
            self._line(line)
        self._after_lines()

    def finish(self) -> ValidationReport:
        """Check the end of the stream and return the counts."""
        if self._pending:
            self._fail("the last line has no line ending (truncated output)")
        self._end()
        return ValidationReport(self.conversations, self.turns, self._byte_count)

    @abstractmethod
    def _line(self, line: bytes) -> None:
        """Check one line (without its LF)."""

    def _after_lines(self) -> None:  # noqa: B027 - optional hook, only CSV needs it
        """Hook run after each fed chunk's complete lines."""

    @abstractmethod
    def _end(self) -> None:
        """Checks that need the whole stream."""

    def _fail(self, reason: str) -> NoReturn:
        """Raise OutputInvalid naming the current line."""
        raise OutputInvalid(f"line {self._line_number}: {reason}")

    def _check_roles(self, roles: list[Any]) -> int:
        """Check a conversation's roles; return its turn count."""
        try:
            known = ROLES.issuperset(roles)
        except TypeError:  # an unhashable "role" (a list, an object) is not a role either
            known = False
        if not known:
            self._fail(f"unknown role in {roles!r}")
        if "user" not in roles or "assistant" not in roles:
            self._fail("a conversation needs a user and an assistant turn")
        return len(roles)


class JsonlValidator(Validator):
    """One ``{"messages": [...], "metadata"?: {...}}`` object per line."""

    def feed_parts(self, parts: list[bytes]) -> None:
        """Each rendered conversation is one whole line: check it where it is, without the
        split's copy (a memoryview without the LF); anything else goes through `feed`."""
        for part in parts:
            if self._pending or part.count(b"\n") != 1 or not part.endswith(b"\n"):
                self.feed(part)
                continue
            self._byte_count += len(part)
            self._line_number += 1
            self._line(memoryview(part)[:-1])

    def _line(self, line: bytes | memoryview) -> None:
        """Parse one example and count its messages."""
        # Exact type() checks: orjson builds plain dict/list/str, and this runs once per line
        # of files with millions of lines.
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            self._fail(f"not JSON: {exc}")
        if type(obj) is not dict or type(obj.get("messages")) is not list:
            self._fail("expected an object with a messages list")
        if len(obj) > 1 and not obj.keys() <= _JSONL_KEYS:
            self._fail(f"unexpected keys {sorted(obj.keys() - _JSONL_KEYS)}")
        if "metadata" in obj and type(obj["metadata"]) is not dict:
            self._fail("metadata must be an object")
        roles = [
            m.get("role", _MALFORMED)
            if type(m) is dict and len(m) == 2 and type(m.get("content")) is str
            else _MALFORMED
            for m in obj["messages"]
        ]
        if _MALFORMED in roles:
            self._fail("a message must be exactly {role, content} with string content")
        self.turns += self._check_roles(roles)
        self.conversations += 1

    def _end(self) -> None:
        """Nothing spans lines in JSONL."""


class JsonValidator(Validator):
    """The JSON document, parsed head, element by element, then tail."""

    _OPEN = b'  "conversations": ['
    _OPEN_EMPTY = b'  "conversations": [],'
    _ELEMENT_START = b"    {"
    _ELEMENT_END = b"    }"
    _ELEMENT_END_MORE = b"    },"
    _ARRAY_END = b"  ],"

    def __init__(self) -> None:
        super().__init__()
        self._state = "head"
        self._head: list[bytes] = []
        self._element: list[bytes] = []
        self._tail: list[bytes] = []

    def _line(self, line: bytes) -> None:
        """Advance the layout state machine by one line."""
        state = self._state
        if state == "head":
            self._head_line(line)
        elif state == "element_start":
            if line != self._ELEMENT_START:
                self._fail("expected the start of a conversation object")
            self._element = [line]
            self._state = "element"
        elif state == "element":
            self._element_line(line)
        elif state == "after_last":
            if line != self._ARRAY_END:
                self._fail("expected the end of the conversations array")
            self._state = "tail"
        else:
            if len(self._tail) >= _MAX_JSON_TAIL_LINES:
                self._fail("the document's tail is too long")
            self._tail.append(line)

    def _head_line(self, line: bytes) -> None:
        """Collect the opening lines up to the conversations array."""
        if len(self._head) >= _MAX_JSON_HEAD_LINES:
            self._fail("no conversations array near the start")
        if line in (self._OPEN, self._OPEN_EMPTY):
            self._check_head()
            self._state = "element_start" if line == self._OPEN else "tail"
        else:
            self._head.append(line)

    def _check_head(self) -> None:
        """The opening must be a valid object prefix with version and export_date."""
        head = self._parse(b"\n".join([*self._head, self._OPEN]) + b"]}")
        if head.keys() != {"version", "export_date", "conversations"}:
            self._fail(f"unexpected document keys {sorted(head)}")
        if not isinstance(head["version"], str) or not isinstance(head["export_date"], str):
            self._fail("version and export_date must be strings")

    def _element_line(self, line: bytes) -> None:
        """Collect one conversation object; parse it when its closing line arrives."""
        if line == self._ELEMENT_END_MORE:
            self._element.append(self._ELEMENT_END)
            self._check_element()
            self._state = "element_start"
        elif line == self._ELEMENT_END:
            self._element.append(line)
            self._check_element()
            self._state = "after_last"
        else:
            self._element.append(line)

    def _check_element(self) -> None:
        """Validate one conversation object and count it."""
        conv = self._parse(b"\n".join(self._element))
        self._element = []
        keys = conv.keys() - {"metadata"}
        if keys != {"conversation_id", "title", "status", "tier", "turns"}:
            self._fail(f"unexpected conversation keys {sorted(conv)}")
        if not isinstance(conv["turns"], list) or not isinstance(conv.get("metadata", {}), dict):
            self._fail("turns must be a list and metadata an object")
        for turn in conv["turns"]:
            if not isinstance(turn, dict) or not isinstance(turn.get("content"), str):
                self._fail("a turn must be an object with string content")
            if not isinstance(turn.get("turn_number"), int):
                self._fail("a turn needs an integer turn_number")
        self.turns += self._check_roles([turn.get("role") for turn in conv["turns"]])
        self.conversations += 1

    def _end(self) -> None:
        """The tail closes the document and its counts agree with what was seen."""
        if self._state != "tail":
            self._fail("the document ends before the conversations array is closed")
        tail = self._parse(b"{\n" + b"\n".join(self._tail))
        if tail.keys() - {"summary"} != {"conversation_count"}:
            self._fail(f"unexpected closing keys {sorted(tail)}")
        if tail["conversation_count"] != self.conversations:
            self._fail(f"conversation_count says {tail['conversation_count']}")
        summary = tail.get("summary", {"total_turns": self.turns})
        if not isinstance(summary, dict) or summary.get("total_turns") != self.turns:
            self._fail("summary.total_turns does not match the turns written")

    def _parse(self, data: bytes) -> dict[str, Any]:
        """Parse a JSON object or fail."""
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            self._fail(f"not JSON: {exc}")
        if not isinstance(value, dict):
            self._fail("expected a JSON object")
        return value


class CsvValidator(Validator):
    """BOM, the expected header, then rows of the right width grouped by conversation_id."""

    def __init__(self, options: ExportOptions) -> None:
        super().__init__()
        self._columns = csv_columns(options)
        self._role_index = self._columns.index("role")
        self._turn_index = self._columns.index("turn_number")
        self._record: list[str] = []
        self._in_quotes = False
        self._ready: list[str] = []
        self._header_seen = False
        self._current_id: str | None = None
        self._last_turn = -1
        self._roles: list[str] = []

    def _line(self, line: bytes) -> None:
        """Group lines into records: a record ends where the quotes are balanced."""
        if self._line_number == 1:
            if not line.startswith(BOM):
                self._fail("missing UTF-8 byte order mark")
            line = line[len(BOM) :]
        try:
            text = line.decode()
        except UnicodeDecodeError as exc:
            self._fail(f"not UTF-8: {exc}")
        self._record.append(text + "\n")
        # Doubled quotes inside a field add two, so an odd count flips in or out of a field.
        if text.count('"') % 2:
            self._in_quotes = not self._in_quotes
        if not self._in_quotes:
            if not text.endswith("\r"):
                self._fail("row does not end with CRLF")
            self._ready.append("".join(self._record))
            self._record = []

    def _after_lines(self) -> None:
        """Parse the complete records of this chunk."""
        try:
            for row in csv.reader(self._ready, strict=True):
                self._row(row)
        except csv.Error as exc:
            self._fail(f"malformed CSV: {exc}")
        self._ready = []

    def _row(self, row: list[str]) -> None:
        """Check one parsed record."""
        if not self._header_seen:
            if row != self._columns:
                self._fail(f"header {row} differs from {self._columns}")
            self._header_seen = True
            return
        if len(row) != len(self._columns):
            self._fail(f"{len(row)} cells, expected {len(self._columns)}")
        number = row[self._turn_index]
        if not (number.isascii() and number.isdigit()):
            self._fail(f"turn_number {number!r} is not a number")
        # Turn numbers rise within a conversation, so a repeat or a drop starts the next one
        # even when two adjacent conversations share a conversation_id.
        if row[0] != self._current_id or int(number) <= self._last_turn:
            self._close_conversation()
            self._current_id = row[0]
        self._last_turn = int(number)
        self._roles.append(row[self._role_index])

    def _close_conversation(self) -> None:
        """Count the rows seen for the previous conversation_id."""
        if self._current_id is not None:
            self.turns += self._check_roles(self._roles)
            self.conversations += 1
        self._roles = []

    def _end(self) -> None:
        """The header was present, no quoted field is left open, the last group is counted."""
        if self._in_quotes:
            self._fail("unterminated quoted field")
        if not self._header_seen:
            self._fail("no header row")
        self._close_conversation()


_TRAILER = re.compile(r"conversations=(\d+) turns=(\d+) -->")


class MarkdownValidator(Validator):
    """Headings, metadata bullets, labels each followed by a blank line and quote lines."""

    _LABELS = frozenset(LABELS.values())
    _ROLE_OF = {label: role for role, label in LABELS.items()}

    def __init__(self) -> None:
        super().__init__()
        self._state = "start"
        self._roles: list[str] = []

    def _line(self, line: bytes) -> None:
        """Classify the line and check it may follow the previous one."""
        try:
            text = line.decode()
        except UnicodeDecodeError as exc:
            self._fail(f"not UTF-8: {exc}")
        kind = self._kind(text)
        nxt = _MD_TRANSITIONS.get((self._state, kind))
        if nxt is None:
            self._fail(f"{kind} line not allowed after {self._state}")
        if kind == "label":
            self._roles.append(self._ROLE_OF[text])
        elif self._state == "gap" and kind in ("separator", "trailer"):
            self._close_conversation()
        if kind == "trailer":
            self._check_trailer(text)
        self._state = nxt

    def _kind(self, text: str) -> str:
        """What a line is, by its prefix."""
        if not text:
            return "blank"
        if text == ">" or text.startswith("> "):
            return "quote"
        if text in self._LABELS:
            return "label"
        if text.startswith(("- ", "  - ")):
            return "bullet"
        if text.startswith(HEADING):
            return "heading"
        if text == SEPARATOR:
            return "separator"
        if text.startswith(TRAILER_PREFIX):
            return "trailer"
        return "other"

    def _close_conversation(self) -> None:
        """Count the conversation whose turns were just read."""
        self.turns += self._check_roles(self._roles)
        self.conversations += 1
        self._roles = []

    def _check_trailer(self, text: str) -> None:
        """The trailer's counts must match the sections seen."""
        match = _TRAILER.fullmatch(text, len(TRAILER_PREFIX))
        if match is None:
            self._fail("malformed trailer")
        if (int(match[1]), int(match[2])) != (self.conversations, self.turns):
            self._fail(f"trailer says {match[1]} conversations and {match[2]} turns")

    def _end(self) -> None:
        """The trailer must be the last line."""
        if self._state != "done":
            self._fail("the file ends before its trailer (truncated output)")


# (state, line kind) -> next state; anything missing is invalid. A conversation is
# heading, blank, bullets, blank, then per turn: label, blank, quote lines, blank.
_MD_TRANSITIONS = {
    ("start", "heading"): "head",
    ("start", "trailer"): "done",
    ("head", "blank"): "meta_gap",
    ("meta_gap", "bullet"): "meta",
    ("meta", "bullet"): "meta",
    ("meta", "blank"): "gap",
    ("gap", "label"): "label",
    ("gap", "separator"): "separator",
    ("gap", "trailer"): "done",
    ("label", "blank"): "label_gap",
    ("label_gap", "quote"): "quote",
    ("quote", "quote"): "quote",
    ("quote", "blank"): "gap",
    ("separator", "blank"): "separator_gap",
    ("separator_gap", "heading"): "head",
}


def get_validator(options: ExportOptions) -> Validator:
    """A fresh validator for the options' format (and JSONL target)."""
    # Imported here: these modules build on this one.
    from shared.exports.formats.parquet import ParquetValidator
    from shared.exports.formats.targets import TargetValidator
    from shared.exports.formats.txt import TxtValidator

    if options.format == "jsonl":
        return JsonlValidator() if options.target == "openai" else TargetValidator(options)
    if options.format == "parquet":
        return ParquetValidator(options)
    if options.format == "txt":
        return TxtValidator()
    if options.format == "json":
        return JsonValidator()
    if options.format == "csv":
        return CsvValidator(options)
    return MarkdownValidator()
