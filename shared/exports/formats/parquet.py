"""Parquet: one row per conversation, ``messages: list<struct<role, content>>`` plus metadata.

Columns: ``conversation_id``, ``title``, ``status``, ``tier``, ``messages`` always; with
``include_metadata`` also ``persona``, ``emotion``, ``topic``, ``intent``, ``tone``,
``category`` and ``tags`` (lists of strings), ``is_flagged``, ``model``, then the optional fields
of `fields.OPTIONAL_FIELDS` the other flags switch on (ids as strings, times as UTC
timestamps, ``quality_metrics`` and ``judge_rationale`` as JSON strings, the judge's scores as
doubles, ``approval_history`` as a list of structs).
Rows are written in row groups of `ROW_GROUP_ROWS` conversations (sooner when their text
passes `ROW_GROUP_CHARS`) as they stream, so memory holds one row group, not the file.
"""

from __future__ import annotations

from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from shared.exports.formats.base import (
    ExportConversation,
    ExportOptions,
    ExportSummary,
    Transformer,
    export_turns,
)
from shared.exports.formats.fields import active_fields
from shared.exports.formats.parquet_check import Drain, ParquetValidator
from shared.models.scores import SCORE_COLUMNS

__all__ = ["ParquetTransformer", "ParquetValidator", "schema_for"]

ROW_GROUP_ROWS = 2_000
ROW_GROUP_CHARS = 32 * 1024 * 1024
_TEXT = pa.string()
_TIME = pa.timestamp("us", tz="UTC")
MESSAGES = pa.list_(pa.struct([("role", _TEXT), ("content", _TEXT)]))
_REVIEW = pa.struct(
    [
        ("action", _TEXT),
        ("from_status", _TEXT),
        ("to_status", _TEXT),
        ("reviewer_id", _TEXT),
        ("created_at", _TIME),
        ("notes", _TEXT),
    ]
)
BASE_TYPES: dict[str, pa.DataType] = {
    "conversation_id": _TEXT,
    "title": _TEXT,
    "status": _TEXT,
    "tier": _TEXT,
}
DESCRIPTIVE_TYPES: dict[str, pa.DataType] = {
    "persona": _TEXT,
    "emotion": _TEXT,
    "topic": _TEXT,
    "intent": _TEXT,
    "tone": _TEXT,
    "category": pa.list_(_TEXT),
    "tags": pa.list_(_TEXT),
    "is_flagged": pa.bool_(),
    "model": _TEXT,
}
# The Arrow type of every field in fields.OPTIONAL_FIELDS (a new field needs its type here).
FIELD_TYPES: dict[str, pa.DataType] = {
    "quality_score": pa.float64(),
    **dict.fromkeys(SCORE_COLUMNS, pa.float64()),
    "quality_source": _TEXT,
    "judge_rubric_version": pa.int32(),
    "quality_metrics": _TEXT,
    "judge_rationale": _TEXT,
    "duplicate_of": _TEXT,
    "duplicate_similarity": pa.float64(),
    "created_at": _TIME,
    "updated_at": _TIME,
    "parent_id": _TEXT,
    "parent_type": _TEXT,
    "template_id": _TEXT,
    "scenario_id": _TEXT,
    "edge_case_id": _TEXT,
    "reviewed_at": _TIME,
    "reviewed_by": _TEXT,
    "approval_history": pa.list_(_REVIEW),
}


def schema_for(options: ExportOptions) -> pa.Schema:
    """The file's schema for these options."""
    fields = [*BASE_TYPES.items(), ("messages", MESSAGES)]
    if options.include_metadata:
        fields += DESCRIPTIVE_TYPES.items()
        fields += [(f.name, FIELD_TYPES[f.name]) for f in active_fields(options)]
    return pa.schema(fields)


class ParquetTransformer(Transformer):
    """Streams conversations into Parquet row groups."""

    content_type = "application/vnd.apache.parquet"
    extension = "parquet"

    def __init__(self, options: ExportOptions) -> None:
        super().__init__(options)
        self.schema = schema_for(options)
        self._sink = Drain()
        self._writer = pq.ParquetWriter(
            pa.PythonFile(self._sink, mode="w"), self.schema, compression="zstd"
        )
        self._rows: list[dict[str, Any]] = []
        self._chars = 0

    def header(self) -> bytes:
        """The magic bytes the writer has put out so far."""
        return self._sink.take()

    def render(self, conv: ExportConversation) -> bytes:
        """Buffer the row; a full row group comes out as bytes, else nothing yet."""
        messages = [{"role": t.role, "content": t.content} for t in export_turns(conv)]
        row: dict[str, Any] = {
            "conversation_id": conv.conversation_id,
            "title": conv.title,
            "status": conv.status,
            "tier": conv.tier,
            "messages": messages,
        }
        if self.options.include_metadata:
            row.update(self._metadata(conv))
        self._rows.append(row)
        self._chars += sum(len(m["content"]) for m in messages)
        if len(self._rows) >= ROW_GROUP_ROWS or self._chars >= ROW_GROUP_CHARS:
            self._flush()
        return self._sink.take()

    def footer(self, summary: ExportSummary) -> bytes:
        """The last row group and the file footer."""
        self._flush()
        self._writer.close()
        return self._sink.take()

    def _metadata(self, conv: ExportConversation) -> dict[str, Any]:
        """Descriptive and optional columns of one row."""
        row = {name: getattr(conv, name) for name in DESCRIPTIVE_TYPES}
        for field in active_fields(self.options):
            row[field.name] = field.read(conv, self.options)
        if "quality_metrics" in row:
            row["quality_metrics"] = orjson.dumps(row["quality_metrics"]).decode()
        if row.get("judge_rationale") is not None:
            row["judge_rationale"] = orjson.dumps(row["judge_rationale"]).decode()
        return row

    def _flush(self) -> None:
        """Write the buffered rows as one row group."""
        if self._rows:
            table = pa.Table.from_pylist(self._rows, schema=self.schema)
            self._writer.write_table(table, row_group_size=len(self._rows))
            self._rows = []
            self._chars = 0
