"""CSV: UTF-8 with a BOM (so Excel reads it as UTF-8), one row per rendered turn.

- Columns: conversation_id, title, status, tier, turn_number, role, content; with
  ``include_metadata`` also quality_score and the judge's columns (coherence_score,
  relevance_score, completeness_score, quality_overall, empathy_score, clarity_score,
  appropriateness_score, brand_voice_score, quality_source, judge_rubric_version; with
  ``include_quality_scores``), persona, emotion, topic, duplicate_of, duplicate_similarity, then
  created_at, updated_at (``include_timestamps``) and parent_id (``include_parent_references``).
  Approval history and ``include_full_content`` do not apply: content is never shortened.
- Standard ``csv`` quoting (QUOTE_MINIMAL, ``"`` doubled, ``\\r\\n`` row ends), so quotes,
  commas and CR/LF inside a cell survive Excel and any conforming reader.
- Formula injection: every cell whose text starts with ``=``, ``+``, ``-``, ``@``, tab, CR *or*
  ``'`` gets one leading ``'`` so spreadsheets show it as text. That prefix is the only change a
  cell's text undergoes, and it is reversible: reading a cell back, drop one leading ``'``
  when the cell starts with ``'`` (a source text ``'=x`` is written ``''=x``, so two different
  texts never read back the same).
- A cell longer than 32,767 characters (what a spreadsheet cell holds) is written whole; the
  export's ``warnings`` names how many there were and the first one.
- None is written as an empty cell; numbers with ``str()``, datetimes with ``isoformat()``.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

from shared.exports.formats.base import (
    ExportConversation,
    ExportOptions,
    RenderError,
    Transformer,
    export_turns,
)
from shared.exports.formats.fields import DUPLICATE_FIELDS, JUDGE_FIELDS

BOM = b"\xef\xbb\xbf"
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "'")
SPREADSHEET_CELL_LIMIT = 32_767
_BASE_COLUMNS = ("conversation_id", "title", "status", "tier", "turn_number", "role", "content")


def csv_columns(options: ExportOptions) -> list[str]:
    """The header row the options produce."""
    columns = list(_BASE_COLUMNS)
    if options.include_metadata:
        if options.include_quality_scores:
            columns += ["quality_score", *JUDGE_FIELDS]
        columns += ["persona", "emotion", "topic", *DUPLICATE_FIELDS]
        if options.include_timestamps:
            columns += ["created_at", "updated_at"]
        if options.include_parent_references:
            columns.append("parent_id")
    return columns


def unescape_cell(text: str) -> str:
    """The reverse of safe_cell's prefix: one leading ' dropped."""
    return text[1:] if text.startswith("'") else text


def safe_cell(value: object) -> str:
    """The cell's text, with a leading ' when a spreadsheet would read it as a formula."""
    if value is None:
        return ""
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


class CsvTransformer(Transformer):
    """Spreadsheet-friendly CSV, one row per turn."""

    content_type = "text/csv; charset=utf-8"
    extension = "csv"

    def __init__(self, options: ExportOptions) -> None:
        super().__init__(options)
        # One reusable buffer and writer: no per-conversation csv machinery.
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
        self._columns = csv_columns(options)
        self._long_cells = 0
        self._first_long: str | None = None

    def header(self) -> bytes:
        """The BOM and the header row."""
        return BOM + self._rows([self._columns])

    def render(self, conv: ExportConversation) -> bytes:
        """One row per turn of the conversation."""
        turns = export_turns(conv)
        lead = [safe_cell(v) for v in (conv.conversation_id, conv.title, conv.status, conv.tier)]
        tail = [safe_cell(v) for v in self._trailing_values(conv)]
        rows = [
            [*lead, safe_cell(t.turn_number), t.role, safe_cell(t.content), *tail] for t in turns
        ]
        try:
            data = self._rows(rows)
        except UnicodeEncodeError as exc:
            raise RenderError(conv.conversation_id, f"not encodable as UTF-8: {exc}") from exc
        self._count_long_cells(conv, rows)
        return data

    def warnings(self) -> list[str]:
        """One warning when cells exceed what a spreadsheet cell holds."""
        if not self._long_cells:
            return []
        return [
            f"{self._long_cells} CSV cell(s) exceed {SPREADSHEET_CELL_LIMIT:,} characters and "
            f"will be cut by spreadsheets (first: {self._first_long})"
        ]

    def _count_long_cells(self, conv: ExportConversation, rows: list[list[str]]) -> None:
        """Tally cells a spreadsheet would truncate."""
        for row in rows:
            for column, cell in zip(self._columns, row, strict=True):
                if len(cell) > SPREADSHEET_CELL_LIMIT:
                    self._long_cells += 1
                    if self._first_long is None:
                        self._first_long = f"conversation {conv.conversation_id}, {column}"

    def _trailing_values(self, conv: ExportConversation) -> list[Any]:
        """The values of the optional columns, in csv_columns order."""
        options = self.options
        if not options.include_metadata:
            return []
        values: list[Any] = []
        if options.include_quality_scores:
            values += [conv.quality_score, *(getattr(conv, name) for name in JUDGE_FIELDS)]
        values += [conv.persona, conv.emotion, conv.topic, conv.duplicate_of]
        values.append(conv.duplicate_similarity)
        if options.include_timestamps:
            values += [conv.created_at, conv.updated_at]
        if options.include_parent_references:
            values.append(conv.parent_id)
        return values

    def _rows(self, rows: list[list[str]]) -> bytes:
        """The rows encoded as UTF-8 CSV."""
        self._buffer.seek(0)
        self._buffer.truncate()
        self._writer.writerows(rows)
        return self._buffer.getvalue().encode()
