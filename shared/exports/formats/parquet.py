"""Parquet: one row per conversation, ``messages: list<struct<role, content>>`` plus metadata.

Columns: ``conversation_id``, ``title``, ``status``, ``tier``, ``messages`` always; with
``include_metadata`` also ``persona``, ``emotion``, ``topic``, ``intent``, ``tone``,
``category`` and ``tags`` (lists of strings), ``is_flagged``, ``model``, then the optional fields
of `fields.OPTIONAL_FIELDS` the other flags switch on (ids as strings, times as UTC
timestamps, ``quality_metrics`` and ``judge_rationale`` as JSON strings, the judge's scores as
doubles, ``approval_history`` as a list of structs).
Rows are written in row groups of `ROW_GROUP_ROWS` conversations (sooner when their text
passes `ROW_GROUP_BYTES`) as they stream, so memory holds one row group, not the file.

A row group is kept as column pieces (each turn's role letter, the turns' UTF-8 text back to
back, their byte lengths, the message count of each row) and written as Arrow arrays built
from those buffers (`arrow_build`), never as a Python object per message. Without metadata
PostgreSQL reads the pieces itself (`COLUMNS_SQL`, `render_columns`); conversations rendered
in Python (metadata, previews, splits) are cut into the same pieces, so both ways write the
same bytes (tests/exporter/test_database_render.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from shared.exports.formats import arrow_build
from shared.exports.formats.base import (
    NOT_TRAINABLE,
    ExportConversation,
    ExportOptions,
    ExportSummary,
    MessageColumns,
    RenderError,
    Transformer,
    export_turns,
)
from shared.exports.formats.fields import active_fields
from shared.exports.formats.parquet_check import Drain, ParquetValidator
from shared.models.scores import SCORE_COLUMNS

__all__ = ["ParquetTransformer", "ParquetValidator", "schema_for"]

# A row group is held about three times over while it is written (the pieces, the joined text,
# the writer's pages of the column chunk): 1,000 conversations or 8 MiB of text keeps that near
# 25 MB whatever the turns' length.
ROW_GROUP_ROWS = 1_000
ROW_GROUP_BYTES = 8 * 1024 * 1024
_TEXT = pa.string()
_TIME = pa.timestamp("us", tz="UTC")
_MESSAGE = pa.struct([("role", _TEXT), ("content", _TEXT)])
MESSAGES = pa.list_(_MESSAGE)
CONTENT_COLUMN = "messages.list.element.content"
# Roles as one letter each (what COLUMNS_SQL sends: the turns' CHECK constraint allows only
# these three), and the letters as dictionary codes.
ROLE_LETTERS = {"system": "s", "user": "u", "assistant": "a"}
_ROLE_CODES = bytes.maketrans(b"sua", b"\x00\x01\x02")
_ROLE_NAMES = arrow_build.string_array(["system", "user", "assistant"])

# One conversation's column pieces (MessageColumns), the system prompt first as a synthetic
# turn when there is no system turn (base.export_turns); `trainable` is false when a user or
# an assistant turn is missing (RenderError there). A SELECT over the turns of `c` (see
# export_source.column_batch).
COLUMNS_SQL = """
SELECT a.turns + a.synthetic::int AS turn_count, a.trainable,
       CASE WHEN a.synthetic THEN 's' || a.roles ELSE a.roles END AS roles,
       convert_to(CASE WHEN a.synthetic THEN c.system_prompt || a.contents
                       ELSE a.contents END, 'UTF8') AS contents,
       CASE WHEN a.synthetic THEN octet_length(c.system_prompt) || a.lengths
            ELSE a.lengths END AS lengths
  FROM (SELECT count(*) AS turns,
               coalesce(bool_or(t.role = 'user') AND bool_or(t.role = 'assistant'), false)
                   AS trainable,
               coalesce(c.system_prompt, '') <> ''
                   AND NOT coalesce(bool_or(t.role = 'system'), false) AS synthetic,
               string_agg(left(t.role, 1), '' ORDER BY t.turn_number) AS roles,
               string_agg(t.content, '' ORDER BY t.turn_number) AS contents,
               array_agg(octet_length(t.content) ORDER BY t.turn_number) AS lengths
          FROM conversation_turns t
         WHERE t.conversation_id = c.id) AS a
"""
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


def leaf_paths(name: str, type_: pa.DataType) -> list[str]:
    """The Parquet column paths of an Arrow field (``messages.list.element.role``...)."""
    if pa.types.is_list(type_):
        return leaf_paths(f"{name}.list.element", type_.value_type)
    if pa.types.is_struct(type_):
        return [path for child in type_ for path in leaf_paths(f"{name}.{child.name}", child.type)]
    return [name]


def schema_for(options: ExportOptions) -> pa.Schema:
    """The file's schema for these options."""
    fields = [*BASE_TYPES.items(), ("messages", MESSAGES)]
    if options.include_metadata:
        fields += DESCRIPTIVE_TYPES.items()
        fields += [(f.name, FIELD_TYPES[f.name]) for f in active_fields(options)]
    return pa.schema(fields)


class _RowGroup:
    """The column pieces of the rows not written yet."""

    def __init__(self) -> None:
        self.scalars: dict[str, list[str | None]] = {name: [] for name in BASE_TYPES}
        self.roles: list[str] = []
        self.contents: list[bytes] = []
        self.lengths: list[int] = []
        self.counts: list[int] = []
        self.metadata: list[dict[str, Any]] = []
        self.text_bytes = 0


class ParquetTransformer(Transformer):
    """Streams conversations into Parquet row groups."""

    content_type = "application/vnd.apache.parquet"
    extension = "parquet"

    def __init__(self, options: ExportOptions) -> None:
        super().__init__(options)
        self.schema = schema_for(options)
        self._metadata_schema = pa.schema(list(self.schema)[len(BASE_TYPES) + 1 :])
        self._sink = Drain()
        columns = [path for field in self.schema for path in leaf_paths(field.name, field.type)]
        # Turn text is neither dictionary-encoded (every turn differs: the dictionary is built,
        # then dropped page by page) nor given min/max statistics (no reader filters on it):
        # a third of the writer's time at 100,000 conversations, and a smaller file.
        others = [path for path in columns if path != CONTENT_COLUMN]
        per_column: dict[str, Any] = {"use_dictionary": others, "write_statistics": others}
        self._writer = pq.ParquetWriter(
            pa.PythonFile(self._sink, mode="w"), self.schema, compression="zstd", **per_column
        )
        self._group = _RowGroup()

    def header(self) -> bytes:
        """The magic bytes the writer has put out so far."""
        return self._sink.take()

    def render(self, conv: ExportConversation) -> bytes:
        """Buffer the row; a full row group comes out as bytes, else nothing yet."""
        turns = export_turns(conv)
        try:
            encoded = [t.content.encode() for t in turns]
        except UnicodeEncodeError as exc:
            raise RenderError(conv.conversation_id, f"not UTF-8 text: {exc}") from exc
        if self.options.include_metadata:
            self._group.metadata.append(self._metadata(conv))
        letters = "".join([ROLE_LETTERS[t.role] for t in turns])
        scalars = (conv.conversation_id, conv.title, conv.status, conv.tier)
        return self._add(scalars, letters, b"".join(encoded), map(len, encoded))

    def render_columns(self, row: MessageColumns) -> bytes:
        """Buffer a row PostgreSQL read as column pieces (a trainable one, without metadata)."""
        if row.roles is None or row.contents is None or row.lengths is None:
            raise RenderError(row.conversation_id, NOT_TRAINABLE)
        scalars = (row.conversation_id, row.title, row.status, row.tier)
        return self._add(scalars, row.roles, row.contents, row.lengths)

    def footer(self, summary: ExportSummary) -> bytes:
        """The last row group and the file footer."""
        self._flush()
        self._writer.close()
        return self._sink.take()

    def _add(
        self,
        scalars: tuple[str, str | None, str, str],
        letters: str,
        text: bytes,
        lengths: Iterable[int],
    ) -> bytes:
        group = self._group
        for column, value in zip(group.scalars.values(), scalars, strict=True):
            column.append(value)
        group.roles.append(letters)
        group.contents.append(text)
        group.lengths.extend(lengths)
        group.counts.append(len(letters))
        group.text_bytes += len(text)
        if len(group.counts) >= ROW_GROUP_ROWS or group.text_bytes >= ROW_GROUP_BYTES:
            self._flush()
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
        """Write the buffered rows as one row group, then let their buffers go."""
        group = self._group
        if not group.counts:
            return
        self._group = _RowGroup()
        roles = arrow_build.coded_array(
            "".join(group.roles).encode("ascii").translate(_ROLE_CODES), _ROLE_NAMES
        )
        text = b"".join(group.contents)
        group.contents.clear()  # the pieces go before the writer's pages come
        contents = arrow_build.utf8_array(text, group.lengths)
        messages = pa.ListArray.from_arrays(
            arrow_build.offsets_array(group.counts),
            pa.StructArray.from_arrays([roles, contents], fields=list(_MESSAGE)),
            type=MESSAGES,
        )
        arrays = [arrow_build.string_array(column) for column in group.scalars.values()]
        arrays.append(messages)
        if self.options.include_metadata:
            # Typed Python values (times, lists, structs): pyarrow's converter does them.
            metadata = pa.RecordBatch.from_pylist(group.metadata, schema=self._metadata_schema)
            arrays += metadata.columns
        batch = pa.RecordBatch.from_arrays(arrays, schema=self.schema)
        self._writer.write_batch(batch, row_group_size=len(group.counts))
