"""A write-only byte stream whose bytes are taken away as they come (Parquet, zip writers)."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer


class Drain(io.RawIOBase):
    """A write-only stream whose bytes are taken away as they come; it still counts offsets."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        """Yes."""
        return True

    def write(self, data: ReadableBuffer) -> int:
        """Keep the bytes until taken."""
        chunk = bytes(data)
        self._parts.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        """Bytes written so far (Parquet records offsets from it)."""
        return self._position

    @property
    def pending(self) -> int:
        """Bytes written and not taken yet."""
        return sum(map(len, self._parts))

    def take(self) -> bytes:
        """The bytes written since the last take."""
        data = b"".join(self._parts)
        self._parts = []
        return data
