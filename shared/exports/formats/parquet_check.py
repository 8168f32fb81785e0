"""The validator of a written Parquet file (and the sink it is written into, re-exported).

The validator keeps the first bytes and the last chunks only (at most `MAX_FOOTER` plus the
newest chunk: memory stays flat): at the end it parses the footer from that tail and checks the
magic bytes, the schema the options call for, the row count and, from the ``role`` column
chunks, the number of messages.
"""

from __future__ import annotations

import io
from collections import deque
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from shared.exports.formats.base import ExportOptions
from shared.exports.formats.sink import Drain as Drain
from shared.exports.formats.validate import OutputInvalid, ValidationReport, Validator

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

MAGIC = b"PAR1"
MAX_FOOTER = 16 * 1024 * 1024
_ROLE_COLUMN = "messages.list.element.role"


class _Tail(io.RawIOBase):
    """A file of `size` bytes of which only the last `len(tail)` are known (the footer)."""

    def __init__(self, size: int, tail: bytes) -> None:
        super().__init__()
        self._size = size
        self._tail = tail
        self._position = 0

    def readable(self) -> bool:
        """Yes."""
        return True

    def seekable(self) -> bool:
        """Yes."""
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        """Move within the file."""
        base = {0: 0, 1: self._position, 2: self._size}[whence]
        self._position = base + offset
        return self._position

    def tell(self) -> int:
        """The position."""
        return self._position

    def readinto(self, buffer: WriteableBuffer) -> int:
        """Read from the known tail. pyarrow reads the last 64 KiB at once, footer or not; the
        bytes before the tail (row group pages, never parsed for the footer, whose size
        `finish` checked against the tail) read as zeros."""
        view = memoryview(buffer).cast("B")
        start = self._position - (self._size - len(self._tail))
        unknown = min(max(-start, 0), len(view))
        view[:unknown] = bytes(unknown)
        chunk = self._tail[max(start, 0) : max(start, 0) + len(view) - unknown]
        view[unknown : unknown + len(chunk)] = chunk
        self._position += unknown + len(chunk)
        return unknown + len(chunk)


class ParquetValidator(Validator):
    """Magic bytes, footer, schema and counts of a streamed Parquet file."""

    def __init__(self, options: ExportOptions) -> None:
        super().__init__()
        self._options = options
        self._head = b""
        # The last chunks fed, no more than the largest footer we check plus the newest chunk.
        self._tail: deque[bytes] = deque()
        self._tail_size = 0

    def feed(self, chunk: bytes) -> None:
        """Keep the head and a bounded tail."""
        self._byte_count += len(chunk)
        if len(self._head) < len(MAGIC):
            self._head += chunk[: len(MAGIC) - len(self._head)]
        self._tail.append(chunk)
        self._tail_size += len(chunk)
        while self._tail_size - len(self._tail[0]) >= MAX_FOOTER + 8:
            self._tail_size -= len(self._tail.popleft())

    def finish(self) -> ValidationReport:
        """Parse the footer and check it against what the options call for."""
        from shared.exports.formats.parquet import schema_for

        tail = b"".join(self._tail)
        self._tail.clear()
        if self._head != MAGIC or not tail.endswith(MAGIC) or self._byte_count < 12:
            raise OutputInvalid("not a Parquet file (magic bytes missing)")
        footer_size = int.from_bytes(tail[-8:-4], "little")
        if footer_size + 8 > len(tail):
            raise OutputInvalid(f"Parquet footer of {footer_size} bytes is too large to check")
        try:
            source = pa.PythonFile(_Tail(self._byte_count, tail), mode="r")
            metadata = pq.read_metadata(source)
        except (pa.ArrowException, OSError) as exc:
            raise OutputInvalid(f"unreadable Parquet footer: {exc}") from exc
        expected = schema_for(self._options)
        if not metadata.schema.to_arrow_schema().equals(expected):
            raise OutputInvalid("the Parquet schema differs from the export's columns")
        turns = _message_count(metadata)
        return ValidationReport(metadata.num_rows, turns, self._byte_count)

    def _line(self, line: bytes) -> None:
        """Unused: Parquet has no lines."""

    def _end(self) -> None:
        """Unused: `finish` does the checks."""


def _message_count(metadata: pq.FileMetaData) -> int:
    """Messages in the file: the values of the role column (every list holds at least two)."""
    total = 0
    for index in range(metadata.num_row_groups):
        group = metadata.row_group(index)
        for column in range(group.num_columns):
            chunk = group.column(column)
            if chunk.path_in_schema == _ROLE_COLUMN:
                total += chunk.num_values
    return total
