"""The validator of a written Parquet file (and the sink it is written into, re-exported).

The validator keeps the first and the last bytes only (memory stays flat): at the end it
parses the footer from that tail and checks the magic bytes, the schema the options call for,
the row count and, from the ``role`` column chunks, the number of messages.
"""

from __future__ import annotations

import io
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
        """Read from the known tail; anything before it is not needed for the footer."""
        view = memoryview(buffer).cast("B")
        start = self._position - (self._size - len(self._tail))
        if start < 0:
            raise OSError("read before the footer")
        chunk = self._tail[start : start + len(view)]
        view[: len(chunk)] = chunk
        self._position += len(chunk)
        return len(chunk)


class ParquetValidator(Validator):
    """Magic bytes, footer, schema and counts of a streamed Parquet file."""

    def __init__(self, options: ExportOptions) -> None:
        super().__init__()
        self._options = options
        self._head = b""
        self._tail = bytearray()

    def feed(self, chunk: bytes) -> None:
        """Keep the head and a bounded tail."""
        self._byte_count += len(chunk)
        if len(self._head) < len(MAGIC):
            self._head += chunk[: len(MAGIC) - len(self._head)]
        self._tail += chunk
        if len(self._tail) > 2 * MAX_FOOTER:
            del self._tail[: len(self._tail) - MAX_FOOTER]

    def finish(self) -> ValidationReport:
        """Parse the footer and check it against what the options call for."""
        from shared.exports.formats.parquet import schema_for

        tail = bytes(self._tail)
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
